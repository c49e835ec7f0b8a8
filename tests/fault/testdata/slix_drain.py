#!/usr/bin/python3
"""slixmpp client for bluetick's drain fault test.

Usage: /usr/bin/python3 slix_drain.py 'JSON'

JSON: {"addr": "127.0.0.1:PORT", "jid": "user@domain/res", "password": ...,
       "expect": N, "quiet": SECONDS, "timeout": SECONDS}

Logs in with STARTTLS (self-signed certificate accepted), XEP-0198 stream
management with resumption (slixmpp's xep_0198 plugin answers each <r/>
with the number of stanzas it has handled so far, in stream order, and
sends no unsolicited <a/>), sends initial presence once stream management
is enabled (as clients that enable SM right after bind do; slixmpp's
session_start alone comes before <enabled/>), and collects messages
until it has `expect` of them, none arrived for `quiet` seconds, or
`timeout` passed. It then prints one JSON line:
{"event": "result", "messages": [{"id", "sid", "delayed"}...],
 "connected": bool, "error": str}
and exits. Everything the client sends and receives goes to stderr.
"""

import asyncio
import json
import logging
import os
import ssl
import sys
import time

import slixmpp

CFG = json.loads(sys.argv[1])


def log(*args):
    print("[%.3f]" % time.monotonic(), *args, file=sys.stderr, flush=True)


async def run():
    host, port = CFG["addr"].rsplit(":", 1)
    c = slixmpp.ClientXMPP(CFG["jid"], CFG["password"])
    c.ssl_context.check_hostname = False
    c.ssl_context.verify_mode = ssl.CERT_NONE
    c.whitespace_keepalive = False
    c.register_plugin("xep_0198")

    orig_send_raw = c.send_raw

    def send_raw(data):
        log("SEND", data[:300])
        return orig_send_raw(data)

    c.send_raw = send_raw

    state = {"connected": False, "started": False, "last": time.monotonic()}
    msgs = []
    loop = asyncio.get_running_loop()
    started = loop.create_future()

    def on_session_start(_):
        state["connected"] = True

    def on_sm_enabled(_):
        c.send_presence()
        if not started.done():
            started.set_result(True)

    def on_disconnected(_):
        state["connected"] = False
        log("DISCONNECTED")

    def on_message(m):
        if not m["body"]:
            return
        sid = m.xml.find("{urn:xmpp:sid:0}stanza-id")
        msgs.append({
            "id": m["id"],
            "sid": sid.get("id") if sid is not None else "",
            "delayed": m.xml.find("{urn:xmpp:delay}delay") is not None,
        })
        state["last"] = time.monotonic()

    c.add_event_handler("session_start", on_session_start)
    c.add_event_handler("sm_enabled", on_sm_enabled)
    c.add_event_handler("disconnected", on_disconnected)
    c.add_event_handler("message", on_message)
    c.add_event_handler("failed_all_auth", lambda e: started.done() or started.set_exception(RuntimeError("auth failed")))
    c.connect((host, int(port)), force_starttls=True)
    await asyncio.wait_for(started, 10)
    state["last"] = time.monotonic()

    deadline = time.monotonic() + CFG["timeout"]
    while len(msgs) < CFG["expect"] and time.monotonic() < deadline:
        if time.monotonic() - state["last"] > CFG["quiet"]:
            break
        await asyncio.sleep(0.05)
    log("collected %d messages, handled=%d" % (len(msgs), c["xep_0198"].handled))
    return msgs, state["connected"]


def main():
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    result = {"event": "result", "messages": [], "connected": False, "error": ""}
    try:
        msgs, connected = asyncio.run(asyncio.wait_for(run(), CFG["timeout"] + 15))
        result["messages"], result["connected"] = msgs, connected
    except Exception as e:  # reported to the Go test
        result["error"] = "%s: %s" % (type(e).__name__, e)
    print(json.dumps(result), flush=True)
    sys.stderr.flush()
    os._exit(0)  # do not wait for slixmpp's lingering tasks


if __name__ == "__main__":
    main()
