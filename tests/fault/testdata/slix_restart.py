#!/usr/bin/python3
"""slixmpp clients for bluetick's restart fault tests.

Usage: /usr/bin/python3 slix_restart.py 'JSON'

Runs several slixmpp clients in one event loop. Every client logs in with
STARTTLS (self-signed certificate accepted) and XEP-0198 stream management
with resumption (slixmpp's xep_0198 plugin: it asks for an ack every 5
stanzas and answers each <r/> with the number of stanzas it handled), and
sends initial presence once stream management is enabled. When all of
them are in, it prints {"event": "ready"}.

JSON: {"mode": "send" | "recv", "addr": "127.0.0.1:PORT", "password": ...,
       "clients": [...], "timeout": SECONDS, ...}

mode "send": clients are [{"jid": "s01@localhost/slix",
  "to": ["r01@localhost", ...]}]. Each sends "n" chat messages, message k to
  to[k % len(to)], with id "<sender>:<recipient>:<seq>" (seq counts per
  recipient, %04d), sleeping "gap" seconds between messages. Every time the
  server's <a/> acknowledges messages (slixmpp's 'stanza_acked' event, one
  per stanza) it prints {"event": "acked", "n": total acked so far}. It
  stops when every client has all its messages acked and then has been
  disconnected (the test stops the server) or "timeout" passed, or when
  every client was disconnected.

mode "recv": clients are [{"jid": "r01@localhost/slix", "expect": [ids]}].
  They collect chat messages until every client got all its "expect" ids
  (if "expect" is given for all), or no message arrived for "quiet"
  seconds (if quiet > 0), or every client was disconnected, or "timeout"
  passed.

It then prints one JSON line and exits:
{"event": "result", "clients": [{"jid", "sent": [ids], "acked": [ids],
 "bounced": [ids], "messages": [{"id", "sid", "delayed"}...],
 "connected": bool}], "error": str}
Everything the clients send and receive goes to stderr.
"""

import asyncio
import json
import logging
import os
import ssl
import sys
import time

import slixmpp
from slixmpp.stanza import Message

CFG = json.loads(sys.argv[1])


def log(*args):
    print("[%.3f]" % time.monotonic(), *args, file=sys.stderr, flush=True)


def emit(obj):
    print(json.dumps(obj), flush=True)


def user(jid):
    return jid.split("@", 1)[0]


class Client:
    def __init__(self, spec, counter):
        self.spec = spec
        self.jid = spec["jid"]
        self.sent = []
        self.acked = []
        self.bounced = []
        self.messages = []
        self.connected = False
        self.last = time.monotonic()
        self.counter = counter
        self.ready = asyncio.get_running_loop().create_future()

        c = slixmpp.ClientXMPP(self.jid, CFG["password"])
        c.ssl_context.check_hostname = False
        c.ssl_context.verify_mode = ssl.CERT_NONE
        c.whitespace_keepalive = False
        c.register_plugin("xep_0198")
        self.c = c

        name = user(self.jid)
        orig_send_raw = c.send_raw

        def send_raw(data):
            log(name, "SEND", data[:200])
            return orig_send_raw(data)

        c.send_raw = send_raw

        c.add_event_handler("session_start", self.on_session_start)
        c.add_event_handler("sm_enabled", self.on_sm_enabled)
        c.add_event_handler("disconnected", self.on_disconnected)
        c.add_event_handler("message", self.on_message)
        c.add_event_handler("stanza_acked", self.on_acked)
        c.add_event_handler("failed_all_auth", self.on_failed_auth)

    def connect(self):
        host, port = CFG["addr"].rsplit(":", 1)
        self.c.connect((host, int(port)), force_starttls=True)

    def on_session_start(self, _):
        self.connected = True

    def on_sm_enabled(self, _):
        self.c.send_presence()
        if not self.ready.done():
            self.ready.set_result(True)

    def on_failed_auth(self, _):
        if not self.ready.done():
            self.ready.set_exception(RuntimeError("%s: auth failed" % self.jid))

    def on_disconnected(self, reason):
        self.connected = False
        log(user(self.jid), "DISCONNECTED", reason)

    def on_acked(self, stanza):
        # One event per stanza the server's <a h=.../> covers, in order.
        if isinstance(stanza, Message) and stanza["body"]:
            self.acked.append(stanza["id"])
            self.counter["acked"] += 1
            emit({"event": "acked", "n": self.counter["acked"]})

    def on_message(self, m):
        if m["type"] == "error":
            self.bounced.append(m["id"])
            return
        if not m["body"]:
            return
        sid = m.xml.find("{urn:xmpp:sid:0}stanza-id")
        self.messages.append({
            "id": m["id"],
            "sid": sid.get("id") if sid is not None else "",
            "delayed": m.xml.find("{urn:xmpp:delay}delay") is not None,
        })
        self.last = time.monotonic()

    async def send_all(self):
        to = self.spec["to"]
        seq = {}
        me = user(self.jid)
        for k in range(CFG["n"]):
            if not self.connected:
                return
            rcpt = to[k % len(to)]
            n = seq.get(rcpt, 0)
            seq[rcpt] = n + 1
            mid = "%s:%s:%04d" % (me, user(rcpt), n)
            msg = self.c.make_message(mto=rcpt, mbody=mid, mtype="chat")
            msg["id"] = mid
            msg.send()
            self.sent.append(mid)
            if CFG.get("gap", 0) > 0:
                await asyncio.sleep(CFG["gap"])
        # Ask for the ack of the tail (slixmpp asks every 5 stanzas only).
        if self.connected:
            self.c["xep_0198"].request_ack()

    def result(self):
        return {
            "jid": self.jid, "sent": self.sent, "acked": self.acked,
            "bounced": self.bounced, "messages": self.messages,
            "connected": self.connected,
        }


async def run(clients):
    counter = {"acked": 0}
    for spec in CFG["clients"]:
        clients.append(Client(spec, counter))
    for c in clients:
        c.connect()
    await asyncio.wait_for(asyncio.gather(*(c.ready for c in clients)), 10)
    for c in clients:
        c.last = time.monotonic()
    emit({"event": "ready"})

    deadline = time.monotonic() + CFG["timeout"]
    if CFG["mode"] == "send":
        senders = [asyncio.ensure_future(c.send_all()) for c in clients]
        while time.monotonic() < deadline:
            if not any(c.connected for c in clients):
                break
            await asyncio.sleep(0.02)
        for s in senders:
            s.cancel()
        return

    expect = [set(c.spec["expect"]) if "expect" in c.spec else None for c in clients]
    quiet = CFG.get("quiet", 0)
    while time.monotonic() < deadline:
        if not any(c.connected for c in clients):
            break
        if all(e is not None for e in expect) and all(
                e <= {m["id"] for m in c.messages} for c, e in zip(clients, expect)):
            break
        if quiet > 0 and time.monotonic() - max(c.last for c in clients) > quiet:
            break
        await asyncio.sleep(0.05)


def main():
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    result = {"event": "result", "clients": [], "error": ""}
    clients = []
    try:
        asyncio.run(asyncio.wait_for(run(clients), CFG["timeout"] + 15))
    except Exception as e:  # reported to the Go test
        result["error"] = "%s: %s" % (type(e).__name__, e)
    for c in clients:
        log(user(c.jid), "sent=%d acked=%d received=%d handled=%d" % (
            len(c.sent), len(c.acked), len(c.messages), c.c["xep_0198"].handled))
    result["clients"] = [c.result() for c in clients]
    print(json.dumps(result), flush=True)
    sys.stderr.flush()
    os._exit(0)  # do not wait for slixmpp's lingering tasks


if __name__ == "__main__":
    main()
