#!/usr/bin/python3
"""slixmpp scenarios for bluetick's interop tests.

Usage: /usr/bin/python3 slix.py SCENARIO 'JSON-CONFIG'

The config holds host, c2s (STARTTLS port), tls (direct TLS port), domain,
users ({name: password}) and scenario arguments under "args". Each scenario
prints facts as JSON lines on stdout ({"event": ..., ...}); the Go test
asserts on them. Every XML byte each client sends and receives is logged to
stderr with the client's name. The whole run is bounded (default 20 s): on
timeout the script prints {"event": "timeout"} and exits 3.
"""

import asyncio
import json
import logging
import ssl
import sys
import time
import traceback
import uuid
from xml.etree import ElementTree as ET

import slixmpp
from slixmpp.exceptions import IqError, IqTimeout

import rawxmpp

CFG = {}


def emit(event, **kw):
    print(json.dumps(dict(event=event, **kw), default=str), flush=True)


def log(*args):
    print("[%.3f]" % time.monotonic(), *args, file=sys.stderr, flush=True)


def arg(name, default=None):
    return (CFG.get("args") or {}).get(name, default)


def jid_of(user, resource=None):
    j = "%s@%s" % (user, CFG["domain"])
    return j + "/" + resource if resource else j


PLUGINS = ["xep_0030", "xep_0199", "xep_0203", "xep_0359", "xep_0184", "xep_0333", "xep_0092"]


def withhold_tls13_binding(c):
    """Debian's slixmpp 1.8.3 takes Python's ssl tls-unique value (OpenSSL's
    Finished message) as its channel binding on TLS 1.3 too, where
    tls-unique is undefined (RFC 8446 §C.5, RFC 9266). Against a server
    offering SCRAM-*-PLUS it then asks for p=tls-unique, which a correct
    server refuses, then sends "y" on the plain SCRAM mechanisms, which a
    server that offered -PLUS must refuse too (RFC 5802 §6), and ends on
    PLAIN. Here the binding is withheld on TLS 1.3, so slixmpp sends "n" (no
    channel binding) and logs in with SCRAM, as a client without the bug
    does. The unpatched behaviour has its own test (01/slixmpp_stock_tls13)."""
    fm = c["feature_mechanisms"]
    orig = fm.sasl_callback

    def creds(required, optional):
        r = orig(required, optional)
        if "channel_binding" in r:
            ssl_obj = c.transport.get_extra_info("ssl_object") if c.transport else None
            if ssl_obj is None or ssl_obj.version() == "TLSv1.3":
                r["channel_binding"] = None
        return r

    fm.sasl_callback = creds


def make_client(user, resource=None, plugins=(), sm=False, name=None, stock_cb=False):
    """A slixmpp ClientXMPP that trusts bluetick's self-signed certificate
    and logs its raw traffic under `name`. Unless stock_cb, its TLS 1.3
    channel binding bug is worked around (withhold_tls13_binding)."""
    name = name or user
    c = slixmpp.ClientXMPP(jid_of(user, resource or "slix-" + uuid.uuid4().hex[:6]), CFG["users"][user])
    c.ssl_context.check_hostname = False
    c.ssl_context.verify_mode = ssl.CERT_NONE
    if not stock_cb:
        withhold_tls13_binding(c)
    c.whitespace_keepalive = False
    for p in PLUGINS + list(plugins):
        c.register_plugin(p)
    if sm:
        c.register_plugin("xep_0198")
    c.name = name
    c.tls_events = []
    c.add_event_handler("tls_success", lambda e: c.tls_events.append("starttls"))

    orig_send_raw = c.send_raw

    def send_raw(data):
        log(name, "SEND", rawxmpp.short(data, 2000))
        return orig_send_raw(data)

    c.send_raw = send_raw
    orig_recv = c.data_received

    def data_received(data):
        log(name, "RECV", rawxmpp.short(data, 2000))
        return orig_recv(data)

    c.data_received = data_received
    return c


async def login(c, direct_tls=False, timeout=10, presence=True, roster=False, retry_auth=False):
    """Connect (STARTTLS on the c2s port, or direct TLS), wait for
    session_start. Returns a dict describing the session. A SASL <failure/>
    ends the login unless retry_auth, which lets slixmpp go on to its next
    mechanism (the failures are in c.auth_failures)."""
    loop = asyncio.get_running_loop()
    fut = loop.create_future()

    def done(value=None, exc=None):
        if not fut.done():
            if exc:
                fut.set_exception(exc)
            else:
                fut.set_result(value)

    c.add_event_handler("session_start", lambda e: done(True), disposable=True)
    c.add_event_handler("session_resumed", lambda e: done("resumed"), disposable=True)
    c.auth_failures, c.tried_mechs = [], []

    def failed(e):  # runs before slixmpp picks its next mechanism
        c.auth_failures.append(e)
        c.tried_mechs.append(c["feature_mechanisms"].mech.name)

    c.add_event_handler("failed_auth", failed)
    if not retry_auth:
        c.add_event_handler("failed_auth", lambda e: done(exc=RuntimeError("%s: SASL authentication failed: %s" % (c.name, e))))
    c.add_event_handler("failed_all_auth", lambda e: done(exc=RuntimeError("%s: no SASL mechanism left to try (offered: %s)" % (c.name, sorted(c["feature_mechanisms"].mech_list)))))
    c.add_event_handler("no_auth", lambda e: done(exc=RuntimeError("%s: no usable SASL mechanism offered" % c.name)))
    c.add_event_handler("connection_failed", lambda e: done(exc=RuntimeError("%s: connection failed: %s" % (c.name, e))))
    c.add_event_handler("stream_error", lambda e: done(exc=RuntimeError("%s: stream error: %s" % (c.name, e))))
    if direct_tls:
        c.connect((CFG["host"], CFG["tls"]), use_ssl=True)
    else:
        c.connect((CFG["host"], CFG["c2s"]), force_starttls=True)
    result = await asyncio.wait_for(fut, timeout)
    info = session_info(c)
    info["resumed"] = result == "resumed"
    if roster and result != "resumed":
        await c.get_roster(timeout=5)
    info["self_presence"] = None
    if presence and result != "resumed":
        # Wait until the server reflects our initial presence back to us
        # (RFC 6121 §4.2.2): from then on we are an available resource and
        # messages to our bare JID are delivered live, not stored offline.
        echo = loop.create_future()

        def on_presence(p):
            if p["from"] == c.boundjid and not echo.done():
                echo.set_result(True)

        c.add_event_handler("presence_available", on_presence)
        c.send_presence()
        try:
            await asyncio.wait_for(echo, 3)
            info["self_presence"] = True
        except asyncio.TimeoutError:
            info["self_presence"] = False
        c.del_event_handler("presence_available", on_presence)
    return info


def session_info(c):
    ssl_obj = c.transport.get_extra_info("ssl_object") if c.transport else None
    mech = c["feature_mechanisms"].mech
    return {
        "client": c.name,
        "jid": str(c.boundjid.full),
        "mechanism": mech.name if mech else None,
        "offered": sorted(c["feature_mechanisms"].mech_list),
        "tls": ssl_obj is not None,
        "tls_version": ssl_obj.version() if ssl_obj else None,
        "starttls": "starttls" in c.tls_events,
        "direct_tls": bool(c.use_ssl),
    }


async def disconnect(*clients):
    for c in clients:
        try:
            await asyncio.wait_for(c.disconnect(wait=2), 3)
        except Exception:
            c.abort()


def msg_facts(msg):
    sid = msg["stanza_id"]
    return {
        "from": str(msg["from"]),
        "to": str(msg["to"]),
        "id": msg["id"],
        "type": msg["type"],
        "body": msg["body"],
        "stanza_id": sid["id"] or None,
        "stanza_id_by": str(sid["by"]) or None,
        "delay": msg["delay"]["stamp"].isoformat() if msg.xml.find("{urn:xmpp:delay}delay") is not None else None,
        "xml": str(msg),
    }


class Waiter:
    """Collects items and lets a coroutine wait for a condition on them."""

    def __init__(self):
        self.items = []
        self._cond = asyncio.Condition()

    def add(self, item):
        self.items.append(item)
        asyncio.ensure_future(self._notify())

    async def _notify(self):
        async with self._cond:
            self._cond.notify_all()

    async def wait(self, pred, timeout, what):
        async def inner():
            async with self._cond:
                await self._cond.wait_for(lambda: pred(self.items))
        try:
            await asyncio.wait_for(inner(), timeout)
        except asyncio.TimeoutError:
            raise RuntimeError("timeout after %.0fs waiting for %s; have %d item(s)" % (timeout, what, len(self.items)))
        return self.items


def bodies_waiter(c):
    w = Waiter()

    def on_message(msg):
        if msg["body"]:
            w.add(msg)

    c.add_event_handler("message", on_message)
    return w


# --- scenarios ----------------------------------------------------------------


async def sc_login():
    """One login: args user, mode (starttls|direct), mech (optional)."""
    user = arg("user", "alice")
    c = make_client(user)
    if arg("mech"):
        c["feature_mechanisms"].use_mech = arg("mech")
    if arg("password"):
        # A wrong password: one attempt, then report the <failure/>.
        c.password = arg("password")
        failures = []
        c.add_event_handler("failed_auth", lambda f: failures.append(f))
        try:
            await login(c, direct_tls=arg("mode") == "direct", presence=False)
            emit("login", **session_info(c))
        except RuntimeError as e:
            f = failures[0] if failures else None
            emit("auth_failed", error=str(e), condition=f["condition"] if f is not None else None,
                 xml=str(f) if f is not None else None)
        c.abort()
        return
    if arg("stock_cb"):
        # Unpatched slixmpp (see withhold_tls13_binding): it retries
        # mechanism after mechanism; report what it went through.
        c = make_client(user, stock_cb=True)
        start = time.monotonic()
        info = await login(c, direct_tls=arg("mode") == "direct", presence=False, retry_auth=True)
        info["seconds"] = time.monotonic() - start
        info["failures"] = [{"mechanism": m, "condition": f["condition"], "text": f["text"]}
                            for m, f in zip(c.tried_mechs, c.auth_failures)]
        emit("login", **info)
        await disconnect(c)
        return
    info = await login(c, direct_tls=arg("mode") == "direct", presence=False)
    emit("login", **info)
    # One round trip proves the session works: ping the server.
    try:
        await c["xep_0199"].send_ping(CFG["domain"], timeout=5)
        emit("ping", ok=True)
    except (IqError, IqTimeout) as e:
        emit("ping", ok=False, error=str(e))
    await disconnect(c)


async def sc_echo():
    """A bot that answers each of the first `count` chat messages with
    'echo: BODY', then exits."""
    user = arg("user", "bob")
    n = arg("count", 1)
    c = make_client(user)
    got = bodies_waiter(c)
    info = await login(c)
    emit("ready", **info)
    for i in range(n):
        await got.wait(lambda xs: len(xs) > i, arg("wait", 15), "message %d to echo" % (i + 1))
        m = got.items[i]
        emit("received", **msg_facts(m))
        c.send_message(mto=m["from"], mbody="echo: " + m["body"], mtype="chat")
        emit("replied", to=str(m["from"]))
    await asyncio.sleep(0.5)
    await disconnect(c)


async def sc_receive():
    """Log in, print ready, print the first N messages with a body."""
    user = arg("user", "bob")
    n = arg("count", 1)
    c = make_client(user)
    got = bodies_waiter(c)
    info = await login(c)
    emit("ready", **info)
    await got.wait(lambda xs: len(xs) >= n, arg("wait", 15), "%d message(s)" % n)
    for m in got.items:
        emit("received", **msg_facts(m))
    await disconnect(c)


async def sc_receipts():
    """alice -> bob with a XEP-0184 request (and XEP-0333 markable); bob's
    client answers the receipt automatically; then bob sends <displayed/>."""
    alice, bob = make_client("alice"), make_client("bob")
    bob_got = bodies_waiter(bob)
    receipts, markers = Waiter(), Waiter()
    alice.add_event_handler("receipt_received", receipts.add)
    alice.add_event_handler("marker_displayed", markers.add)
    a = await login(alice)
    b = await login(bob)
    emit("login", **a)
    emit("login", **b)
    msg = alice.make_message(mto=jid_of("bob"), mbody="hello with receipt", mtype="chat")
    msg["id"] = "rcpt-" + uuid.uuid4().hex[:8]
    msg["request_receipt"] = True
    msg.enable("markable")
    msg.send()
    emit("sent", id=msg["id"], xml=str(msg))
    await bob_got.wait(lambda xs: xs, 8, "bob to receive the message")
    m = bob_got.items[0]
    facts = msg_facts(m)
    facts["receipt_requested"] = m.xml.find("{urn:xmpp:receipts}request") is not None
    facts["markable"] = m.xml.find("{urn:xmpp:chat-markers:0}markable") is not None
    emit("bob_received", **facts)
    await receipts.wait(lambda xs: xs, 8, "alice to get the <received/> receipt")
    r = receipts.items[0]
    emit("receipt", receipt_id=r["receipt"], **msg_facts(r))
    bob["xep_0333"].send_marker(m["from"], m["id"], "displayed")
    await markers.wait(lambda xs: xs, 8, "alice to get the <displayed/> marker")
    d = markers.items[0]
    emit("displayed", marker_id=d["displayed"]["id"], **msg_facts(d))
    await disconnect(alice, bob)


async def sc_offline():
    """alice sends 5 messages while bob is offline, then bob logs in."""
    n = arg("count", 5)
    alice = make_client("alice", sm=True)
    a = await login(alice)
    emit("login", **a)
    acked = Waiter()
    alice.add_event_handler("stanza_acked", acked.add)
    ids = []
    for i in range(1, n + 1):
        m = alice.make_message(mto=jid_of("bob"), mbody="offline %d" % i, mtype="chat")
        m["id"] = "off-%d-%s" % (i, uuid.uuid4().hex[:6])
        m.send()
        ids.append(m["id"])
    emit("sent", ids=ids)
    # Wait until the server has acked them all (XEP-0198), so they are stored.
    # (<r/> is written at once while stanzas go through slixmpp's send
    # queue, so ask again until every message is covered.)
    all_acked = lambda xs: len([x for x in xs if x.name == "message"]) >= n
    for attempt in range(8):
        await asyncio.sleep(0.1)
        alice["xep_0198"].request_ack()
        try:
            await acked.wait(all_acked, 1, "XEP-0198 acks for the messages")
            break
        except RuntimeError:
            pass
    if all_acked(acked.items):
        emit("acked", count=n)
    else:
        emit("not_acked", acked=len([x for x in acked.items if x.name == "message"]), want=n)
    await disconnect(alice)
    bob = make_client("bob")
    got = bodies_waiter(bob)
    b = await login(bob)
    emit("login", **b)
    try:
        await got.wait(lambda xs: len(xs) >= n, 8, "%d offline messages" % n)
    finally:
        await asyncio.sleep(0.5)  # catch any duplicate
        for m in got.items:
            emit("received", **msg_facts(m))
    await disconnect(bob)


async def sc_resume():
    """bob enables XEP-0198 with resumption; his TCP connection is reset
    (RST, no </stream:stream>) right after alice sent m2; alice sends m3
    while he is away; bob reconnects and resumes. Every message must arrive
    exactly once across the two connections."""
    alice = make_client("alice")
    bob = make_client("bob", sm=True)
    conn = {"n": 1}
    got = Waiter()

    def on_msg(msg):
        if msg["body"]:
            f = msg_facts(msg)
            f["connection"] = conn["n"]
            got.add(f)

    bob.add_event_handler("message", on_msg)
    enabled = Waiter()
    bob.add_event_handler("sm_enabled", enabled.add)
    failed = []
    bob.add_event_handler("session_start", lambda e: conn["n"] > 1 and failed.append("new session instead of resumption"))
    a = await login(alice)
    b = await login(bob)
    emit("login", **a)
    emit("login", **b)
    await enabled.wait(lambda xs: xs, 5, "<enabled/>")
    sm = bob["xep_0198"]
    emit("sm_enabled", sm_id=sm.sm_id, resume=bool(sm.sm_id))

    def send(i):
        m = alice.make_message(mto=jid_of("bob"), mbody="resume %d" % i, mtype="chat")
        m["id"] = "res-%d-%s" % (i, uuid.uuid4().hex[:6])
        m.send()
        return m["id"]

    sent = [send(1)]
    await got.wait(lambda xs: len(xs) >= 1, 5, "m1 on the first connection")
    await asyncio.sleep(0.3)
    # Reset the connection the moment m2 leaves alice: m2 is in flight.
    sent.append(send(2))
    await asyncio.sleep(0.02)
    sock = bob.transport.get_extra_info("socket")
    import socket as _s
    import struct
    sock.setsockopt(_s.SOL_SOCKET, _s.SO_LINGER, struct.pack("ii", 1, 0))
    emit("killed", handled=sm.handled, received=len(got.items))
    bob.abort()
    await asyncio.sleep(0.3)
    sent.append(send(3))
    emit("sent", ids=sent)
    await asyncio.sleep(0.5)
    conn["n"] = 2
    info = await login(bob, presence=False)
    emit("reconnected", **info)
    await got.wait(lambda xs: {x["body"] for x in xs} >= {"resume 1", "resume 2", "resume 3"}, 8, "all three messages")
    await asyncio.sleep(1.0)  # a duplicate would arrive now
    for f in got.items:
        emit("received", **f)
    if failed:
        emit("resume_failed", reason=failed[0])
    await disconnect(alice, bob)


async def sc_roster():
    """alice subscribes to bob, bob approves and subscribes back, alice
    approves; both must end with subscription='both' in roster pushes; then
    bob logs in again and alice sees his presence."""
    alice, bob = make_client("alice"), make_client("bob")
    for c in (alice, bob):
        c.auto_authorize = None  # approve by hand below
        c.auto_subscribe = False
        c.roster.auto_authorize = None
        c.roster.auto_subscribe = False
    pushes = {"alice": Waiter(), "bob": Waiter()}
    for c in (alice, bob):
        def on_push(iq, c=c):
            if iq["type"] != "set":
                return  # the answer to our roster get, not a push
            for j, item in iq["roster"]["items"].items():
                f = {"client": c.name, "jid": str(j), "subscription": item["subscription"], "ask": item["ask"] or None, "xml": str(iq)}
                emit("push", **f)
                pushes[c.name].add(f)
        c.add_event_handler("roster_update", on_push)
    subs = {"alice": Waiter(), "bob": Waiter()}
    for c in (alice, bob):
        c.add_event_handler("presence_subscribe", lambda p, c=c: subs[c.name].add(p))
    avail = Waiter()
    alice.add_event_handler("presence_available", lambda p: avail.add(p) if p["from"].bare == jid_of("bob") else None)

    a = await login(alice, roster=True)
    b = await login(bob, roster=True)
    emit("login", **a)
    emit("login", **b)
    # 1. alice adds bob to her roster and asks for his presence.
    await alice.update_roster(jid_of("bob"), name="Bob", timeout=5)
    alice.send_presence(pto=jid_of("bob"), ptype="subscribe")
    # 2. bob gets the request and approves it, then asks back.
    await subs["bob"].wait(lambda xs: xs, 8, "bob to get alice's subscribe")
    emit("subscribe_request", client="bob", **{"from": str(subs["bob"].items[0]["from"])})
    bob.send_presence(pto=jid_of("alice"), ptype="subscribed")
    bob.send_presence(pto=jid_of("alice"), ptype="subscribe")
    # 3. alice approves.
    await subs["alice"].wait(lambda xs: xs, 8, "alice to get bob's subscribe")
    emit("subscribe_request", client="alice", **{"from": str(subs["alice"].items[0]["from"])})
    alice.send_presence(pto=jid_of("bob"), ptype="subscribed")
    both = lambda who, other: (lambda xs: any(x["jid"] == jid_of(other) and x["subscription"] == "both" for x in xs))
    try:
        await pushes["alice"].wait(both("alice", "bob"), 8, "alice's roster push with bob subscription=both")
        await pushes["bob"].wait(both("bob", "alice"), 8, "bob's roster push with alice subscription=both")
    except RuntimeError as e:
        emit("error", error=str(e))
    # Final rosters as the server has them.
    for c in (alice, bob):
        iq = c.Iq()
        iq["type"] = "get"
        iq.enable("roster")  # no 'ver': ask for the whole roster
        iq = await iq.send(timeout=5)
        for j, item in iq["roster"]["items"].items():
            emit("roster", client=c.name, jid=str(j), subscription=item["subscription"], ask=item["ask"] or None)
    # 4. bob goes offline and comes back: alice sees him come online.
    await disconnect(bob)
    await asyncio.sleep(0.3)
    n_before = len(avail.items)
    bob2 = make_client("bob", name="bob2")
    b2 = await login(bob2)
    emit("login", **b2)
    await avail.wait(lambda xs: any(str(p["from"]) == b2["jid"] for p in xs[n_before:]), 8, "alice to see bob's available presence")
    for p in avail.items[n_before:]:
        emit("presence", client="alice", **{"from": str(p["from"]), "type": p["type"], "xml": str(p)})
    await disconnect(alice, bob2)


async def last_query(c, target):
    iq = c.Iq()
    iq["type"] = "get"
    iq["to"] = target
    iq.enable("last_activity")
    try:
        res = await iq.send(timeout=5)
        q = res.xml.find("{jabber:iq:last}query")
        return {"type": "result", "seconds": int(q.get("seconds")) if q is not None and q.get("seconds") is not None else None, "xml": str(res)}
    except IqError as e:
        return {"type": "error", "condition": e.iq["error"]["condition"], "error_type": e.iq["error"]["type"], "xml": str(e.iq)}
    except IqTimeout:
        return {"type": "timeout"}


async def sc_last():
    """bob approves alice's subscription (one way); bob logs out; alice asks
    jabber:iq:last of bob (allowed), carol asks too (forbidden)."""
    alice, bob, carol = make_client("alice", plugins=["xep_0012"]), make_client("bob"), make_client("carol", plugins=["xep_0012"])
    bob.auto_authorize = None
    bob.auto_subscribe = False
    bob.roster.auto_authorize = None
    bob.roster.auto_subscribe = False
    subs, subscribed = Waiter(), Waiter()
    bob.add_event_handler("presence_subscribe", subs.add)
    alice.add_event_handler("presence_subscribed", subscribed.add)
    a = await login(alice, roster=True)
    b = await login(bob, roster=True)
    emit("login", **a)
    emit("login", **b)
    alice.send_presence(pto=jid_of("bob"), ptype="subscribe")
    await subs.wait(lambda xs: xs, 8, "bob to get alice's subscribe")
    bob.send_presence(pto=jid_of("alice"), ptype="subscribed")
    await subscribed.wait(lambda xs: xs, 8, "alice to get bob's subscribed")
    emit("subscribed", client="alice")
    await disconnect(bob)
    await asyncio.sleep(1.2)
    c = await login(carol)
    emit("login", **c)
    emit("last", asker="alice", **(await last_query(alice, jid_of("bob"))))
    emit("last", asker="carol", **(await last_query(carol, jid_of("bob"))))
    await disconnect(alice, carol)


async def sc_malformed():
    """Two slixmpp sessions stay up while raw sockets send malformed XML."""
    alice, bob = make_client("alice"), make_client("bob")
    bob_got, alice_got = bodies_waiter(bob), bodies_waiter(alice)
    a = await login(alice)
    b = await login(bob)
    emit("login", **a)
    emit("login", **b)

    def garbage(after_auth):
        r = rawxmpp.Raw(CFG["host"], CFG["c2s"], CFG["domain"], name="garbage")
        if after_auth:
            r.login("carol", CFG["users"]["carol"], resource="garbage")
        else:
            r.connect()
            r.open_stream()
        r.send_raw("<message to='bob@%s'><body>x</body><<<&&& this is not xml ></message>" % CFG["domain"])
        res = {"after_auth": after_auth, "stream_error": None, "xml": None, "stream_closed": False, "tcp_closed": False}
        try:
            while True:
                el = r.recv(5)
                if el is None:
                    break
                se = rawxmpp.stream_error(el)
                if se:
                    res["stream_error"], res["xml"] = se
        except rawxmpp.StreamClosed:
            res["stream_closed"] = True
            try:
                r.recv(5)
            except rawxmpp.Closed:
                res["tcp_closed"] = True
            except rawxmpp.StreamClosed:
                pass
        except rawxmpp.Closed:
            res["tcp_closed"] = True
        r.sock.close()
        return res

    loop = asyncio.get_running_loop()
    for after_auth in (False, True):
        res = await loop.run_in_executor(None, garbage, after_auth)
        emit("garbage", **res)
    # The good sessions still work, both ways.
    alice.send_message(mto=jid_of("bob"), mbody="still alive?", mtype="chat")
    await bob_got.wait(lambda xs: xs, 8, "bob to get alice's message")
    emit("received", client="bob", **msg_facts(bob_got.items[0]))
    bob.send_message(mto=bob_got.items[0]["from"], mbody="yes", mtype="chat")
    await alice_got.wait(lambda xs: xs, 8, "alice to get bob's reply")
    emit("received", client="alice", **msg_facts(alice_got.items[0]))
    await disconnect(alice, bob)


async def sc_spoof():
    """alice sends with from='mallory@localhost/x' (and from=bob's JID);
    bob must see alice's real full JID."""
    alice, bob = make_client("alice"), make_client("bob")
    got = bodies_waiter(bob)
    a = await login(alice)
    b = await login(bob)
    emit("login", **a)
    emit("login", **b)
    for spoof in ("mallory@%s/x" % CFG["domain"], "%s/other" % jid_of("bob")):
        m = alice.make_message(mto=jid_of("bob"), mbody="spoofed from " + spoof, mtype="chat", mfrom=spoof)
        m.send()
        emit("sent", spoofed_from=spoof, xml=str(m))
    await got.wait(lambda xs: len(xs) >= 2, 8, "bob to get both messages")
    await asyncio.sleep(0.3)
    for m in got.items:
        emit("received", **msg_facts(m))
    await disconnect(alice, bob)


async def sc_misc():
    """XEP-0199 ping, XEP-0030 disco#info, XEP-0092 version of the server."""
    c = make_client("alice")
    a = await login(c)
    emit("login", **a)
    try:
        await c["xep_0199"].send_ping(CFG["domain"], timeout=5)
        emit("ping", ok=True)
    except (IqError, IqTimeout) as e:
        emit("ping", ok=False, error=str(e))
    try:
        info = await c["xep_0030"].get_info(jid=CFG["domain"], timeout=5)
        emit("disco", features=sorted(info["disco_info"]["features"]),
             identities=[list(i) for i in info["disco_info"]["identities"]], xml=str(info))
    except (IqError, IqTimeout) as e:
        emit("disco", error=str(e))
    try:
        v = await c["xep_0092"].get_version(CFG["domain"], timeout=5)
        emit("version", name=v["software_version"]["name"], version=v["software_version"]["version"], xml=str(v))
    except (IqError, IqTimeout) as e:
        emit("version", error=str(e))
    await disconnect(c)


async def sc_carbons():
    """XEP-0280: alice/pc and alice/phone are online, the phone enables
    carbons. bob -> alice/pc gives the phone a received carbon; alice/pc ->
    bob gives it a sent carbon; a <private/> + <no-copy/> message gives it
    none (a normal message after it is the barrier)."""
    pc = make_client("alice", resource="pc", plugins=["xep_0280"], name="alice-pc")
    phone = make_client("alice", resource="phone", plugins=["xep_0280"], name="alice-phone")
    bob = make_client("bob")
    pc_got, bob_got = bodies_waiter(pc), bodies_waiter(bob)
    rcv_cc, sent_cc = Waiter(), Waiter()
    phone.add_event_handler("carbon_received", rcv_cc.add)
    phone.add_event_handler("carbon_sent", sent_cc.add)
    # Every <message/> each alice resource reads, whatever slixmpp makes of
    # it, so a carbon it would not recognise still shows up.
    from slixmpp.xmlstream.handler import Callback
    from slixmpp.xmlstream.matcher import MatchXPath
    seen = {"alice-pc": [], "alice-phone": []}
    for c in (pc, phone):
        c.register_handler(Callback("all messages " + c.name, MatchXPath("{jabber:client}message"),
                                    lambda m, c=c: seen[c.name].append(m)))
    for c in (pc, phone, bob):
        emit("login", **(await login(c)))
    try:
        res = await phone["xep_0280"].enable(timeout=5)
        emit("carbons_enable", client="alice-phone", type=res["type"], xml=str(res))
    except IqError as e:
        emit("carbons_enable", client="alice-phone", type="error", condition=e.iq["error"]["condition"], xml=str(e.iq))
    except IqTimeout:
        emit("carbons_enable", client="alice-phone", type="timeout")
    try:
        info = await phone["xep_0030"].get_info(jid=CFG["domain"], timeout=5)
        emit("disco", features=sorted(info["disco_info"]["features"]), xml=str(info))
    except (IqError, IqTimeout) as e:
        emit("disco", error=str(e))

    def cc_facts(kind, wrapper):
        fwd = wrapper[kind]
        f = msg_facts(fwd)
        f.update({"kind": kind, "wrapper_from": str(wrapper["from"]), "wrapper_to": str(wrapper["to"]),
                  "wrapper_type": wrapper["type"], "wrapper_xml": str(wrapper)})
        return f

    uid = uuid.uuid4().hex[:6]
    # 1. bob -> alice/pc: the pc gets it, the phone a received carbon.
    m = bob.make_message(mto=jid_of("alice", "pc"), mbody="to the pc " + uid, mtype="chat")
    m["id"] = "cc-in-" + uid
    m.send()
    emit("sent", client="bob", id=m["id"], body=m["body"], xml=str(m))
    await pc_got.wait(lambda xs: xs, 8, "alice/pc to get bob's message")
    emit("received", client="alice-pc", **msg_facts(pc_got.items[0]))
    try:
        await rcv_cc.wait(lambda xs: xs, 5, "alice/phone's received carbon")
    except RuntimeError as e:
        emit("missing", what=str(e))
    for w in rcv_cc.items:
        emit("carbon", **cc_facts("carbon_received", w))

    # 2. alice/pc -> bob: bob gets it, the phone a sent carbon.
    m = pc.make_message(mto=jid_of("bob"), mbody="from the pc " + uid, mtype="chat")
    m["id"] = "cc-out-" + uid
    m.send()
    emit("sent", client="alice-pc", id=m["id"], body=m["body"], xml=str(m))
    await bob_got.wait(lambda xs: any(x["id"] == "cc-out-" + uid for x in xs), 8, "bob to get alice/pc's message")
    try:
        await sent_cc.wait(lambda xs: xs, 5, "alice/phone's sent carbon")
    except RuntimeError as e:
        emit("missing", what=str(e))

    # 3. A private message, then a normal one as a barrier.
    m = pc.make_message(mto=jid_of("bob"), mbody="private " + uid, mtype="chat")
    m["id"] = "cc-private-" + uid
    m.enable("carbon_private")
    m.xml.append(ET.Element("{urn:xmpp:hints}no-copy"))
    m.send()
    emit("sent", client="alice-pc", id=m["id"], body=m["body"], private=True, xml=str(m))
    m = pc.make_message(mto=jid_of("bob"), mbody="barrier " + uid, mtype="chat")
    m["id"] = "cc-barrier-" + uid
    m.send()
    emit("sent", client="alice-pc", id=m["id"], body=m["body"], xml=str(m))
    await bob_got.wait(lambda xs: any(x["id"] == "cc-barrier-" + uid for x in xs), 8, "bob to get the barrier message")
    try:
        await sent_cc.wait(lambda xs: any(x["carbon_sent"]["id"] == "cc-barrier-" + uid for x in xs), 5,
                           "alice/phone's sent carbon of the barrier message")
    except RuntimeError as e:
        emit("missing", what=str(e))
    await asyncio.sleep(1.0)  # a late carbon of the private message would be here by now
    for w in sent_cc.items:
        emit("carbon", **cc_facts("carbon_sent", w))
    for x in bob_got.items:
        emit("received", client="bob", **msg_facts(x))
    for name, msgs in seen.items():
        for x in msgs:
            emit("raw_message", client=name, xml=str(x))
    await disconnect(pc, phone, bob)


async def sc_upload():
    """XEP-0363 HTTP File Upload with slixmpp's xep_0363 plugin: discover
    the service, upload a file (slot request + PUT), download it by the GET
    URL, and ask for a slot bigger than the advertised limit."""
    import hashlib
    import os
    import tempfile

    import aiohttp
    from slixmpp.plugins.xep_0363.http_upload import FileTooBig

    c = make_client("alice", plugins=["xep_0128", "xep_0363"])
    a = await login(c)
    emit("login", **a)
    info = await c["xep_0030"].get_info(jid=CFG["domain"], timeout=5)
    forms = {}
    for form in info["disco_info"].iterables:
        values = form["values"]
        if values.get("FORM_TYPE") == ["urn:xmpp:http:upload:0"]:
            forms = {k: v for k, v in values.items() if k != "FORM_TYPE"}
    emit("disco", features=sorted(info["disco_info"]["features"]),
         identities=[list(i) for i in info["disco_info"]["identities"]], form=forms, xml=str(info))

    # slixmpp 1.8.3's get_info_from_domain passes coroutines to
    # asyncio.wait, which Python 3.11 refuses; hand it the disco#info just
    # fetched as its cache, so the plugin's own find_upload_service (store/
    # file identity + feature) and max-file-size parsing still run on what
    # bluetick answered.
    c["xep_0030"].domain_infos[CFG["domain"]] = [info]

    data = os.urandom(arg("size", 300000))
    with tempfile.NamedTemporaryFile(suffix=" photo é.png", delete=False) as f:
        f.write(data)
        path = f.name
    try:
        url = await c["xep_0363"].upload_file(path, content_type="image/png", timeout=10)
    finally:
        os.unlink(path)
    emit("uploaded", url=url, service=str(c["xep_0363"].upload_service),
         max_file_size=c["xep_0363"].max_file_size)
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as resp:
            got = await resp.read()
            emit("downloaded", status=resp.status, size=len(got),
                 sha256=hashlib.sha256(got).hexdigest(), want_sha256=hashlib.sha256(data).hexdigest(),
                 content_type=resp.headers.get("Content-Type"), etag=resp.headers.get("ETag"))

    # The plugin refuses on its own from the advertised max-file-size...
    try:
        await c["xep_0363"].upload_file("huge.bin", size=arg("huge", 200 << 20),
                                        input_file=open(os.devnull, "rb"), timeout=10)
        emit("client_refused", refused=False)
    except FileTooBig as e:
        emit("client_refused", refused=True, error=str(e))
    # ...and the server refuses a slot request for it with the limit.
    try:
        await c["xep_0363"].request_slot(c["xep_0363"].upload_service, "huge.bin", arg("huge", 200 << 20),
                                         "application/octet-stream", timeout=5)
        emit("oversize", refused=False)
    except IqError as e:
        err = e.iq["error"]
        app = e.iq.xml.find(".//{urn:xmpp:http:upload:0}file-too-large")
        mfs = app.find("{urn:xmpp:http:upload:0}max-file-size") if app is not None else None
        emit("oversize", refused=True, condition=err["condition"], type=err["type"], text=err["text"],
             max_file_size=mfs.text if mfs is not None else None, xml=str(e.iq))
    await disconnect(c)


EXTDISCO = "urn:xmpp:extdisco:2"


async def extdisco_get(c, payload):
    """Sends an IQ get with the raw payload to the server; returns
    ("result", element) or ("error", condition)."""
    iq = c.make_iq_get(ito=CFG["domain"])
    iq.append(ET.fromstring(payload))
    try:
        res = await iq.send(timeout=5)
    except IqError as e:
        return "error", e.iq["error"]["condition"]
    return "result", res.xml


def service_facts(el):
    return [dict(s.attrib) for s in el.iter("{%s}service" % EXTDISCO)]


async def sc_extdisco():
    """XEP-0215: the server's disco#info advertises urn:xmpp:extdisco:2;
    <services/> (all, then type='turn') lists STUN and TURN with
    credentials; <credentials/> for the TURN host; a bad request is
    refused. Every service seen is printed for the Go test, which then
    relays data through TURN with coturn's client."""
    c = make_client("alice", plugins=["xep_0004", "xep_0128"])
    a = await login(c)
    emit("login", **a)
    info = await c["xep_0030"].get_info(jid=CFG["domain"], timeout=5)
    emit("disco", features=sorted(info["disco_info"]["features"]), xml=str(info))
    kind, el = await extdisco_get(c, "<services xmlns='%s'/>" % EXTDISCO)
    emit("services", kind=kind, services=service_facts(el) if kind == "result" else [], error=el if kind == "error" else None)
    kind, el = await extdisco_get(c, "<services xmlns='%s' type='turn'/>" % EXTDISCO)
    emit("services_turn", kind=kind, services=service_facts(el) if kind == "result" else [], error=el if kind == "error" else None)
    host = arg("turn_host")
    kind, el = await extdisco_get(c, "<credentials xmlns='%s'><service host='%s' type='turn'/></credentials>" % (EXTDISCO, host))
    emit("credentials", kind=kind, services=service_facts(el) if kind == "result" else [], error=el if kind == "error" else None)
    kind, el = await extdisco_get(c, "<credentials xmlns='%s'><service type='turn'/></credentials>" % EXTDISCO)
    emit("credentials_bad", kind=kind, error=el if kind == "error" else None)
    await disconnect(c)


async def sc_contact():
    """XEP-0157: the contact-addresses form in the server's disco#info, read
    through slixmpp's XEP-0128 / XEP-0004 support."""
    c = make_client("alice", plugins=["xep_0004", "xep_0128"])
    a = await login(c)
    emit("login", **a)
    info = await c["xep_0030"].get_info(jid=CFG["domain"], timeout=5)
    forms = {}
    for form in info["disco_info"].iterables:
        if form.name != "x":
            continue
        values = form.get_values()
        ft = values.get("FORM_TYPE")
        if isinstance(ft, list):
            ft = ft[0] if ft else None
        forms[ft] = {k: (v if isinstance(v, list) else [v]) for k, v in values.items() if k != "FORM_TYPE"}
    emit("forms", forms=forms, xml=str(info))
    await disconnect(c)


PEP_PLUGINS = ["xep_0004", "xep_0060", "xep_0163", "xep_0115", "xep_0084", "xep_0172", "xep_0054", "xep_0049", "xep_0223"]
NS_PS_ERR = "{http://jabber.org/protocol/pubsub#errors}"
DEVICELIST = "eu.siacs.conversations.axolotl.devicelist"
AXOLOTL = "eu.siacs.conversations.axolotl"


def iq_error(e):
    """The stanza and pubsub#errors conditions of an IqError."""
    err = e.iq.xml.find("{jabber:client}error")
    app = None
    if err is not None:
        for child in err:
            if child.tag.startswith(NS_PS_ERR):
                app = child.tag[len(NS_PS_ERR):]
    return {"condition": e.iq["error"]["condition"], "app": app, "xml": str(e.iq)}


def options_form(c, **fields):
    form = c["xep_0004"].stanza.Form()
    form["type"] = "submit"
    form.add_field(var="FORM_TYPE", ftype="hidden", value="http://jabber.org/protocol/pubsub#publish-options")
    for k, v in fields.items():
        form.add_field(var="pubsub#" + k, value=v)
    return form


async def try_iq(name, coro):
    """Runs one request, emitting its outcome as a `result` event."""
    try:
        iq = await coro
        emit("result", name=name, ok=True, xml=str(iq))
        return iq
    except IqError as e:
        emit("result", name=name, ok=False, **iq_error(e))
    return None


async def sc_pep():
    """alice and bob share presence; alice publishes an avatar, a nick, an
    OMEMO device list and bundle (open access via publish-options), bob
    (with +notify caps) is notified and retrieves them; carol, a stranger,
    is refused the presence-access nick; alice's bookmarks stay private;
    vcard-temp and legacy private XML round-trip."""
    alice, bob, carol = (make_client(u, plugins=PEP_PLUGINS) for u in ("alice", "bob", "carol"))
    for c in (alice, bob):
        c.auto_authorize = True
        c.auto_subscribe = True
    bob_events = Waiter()

    def on_publish(msg):
        items = msg["pubsub_event"]["items"]
        for it in items["substanzas"]:
            emit("notification", client="bob", node=items["node"], id=it["id"], **{"from": str(msg["from"]), "type": msg["type"], "xml": str(msg)})
            bob_events.add((items["node"], it["id"]))
    bob.add_event_handler("pubsub_publish", on_publish)
    for c in (alice, bob):
        c["xep_0163"].add_interest([DEVICELIST, "urn:xmpp:avatar:metadata", "http://jabber.org/protocol/nick"])

    emit("login", **(await login(alice, roster=True)))
    emit("login", **(await login(bob, roster=True)))
    emit("login", **(await login(carol)))

    # Mutual subscription (bob and alice approve automatically).
    both = Waiter()
    alice.add_event_handler("roster_update", lambda iq: [both.add(1) for j, it in iq["roster"]["items"].items() if str(j) == jid_of("bob") and it["subscription"] == "both"])
    alice.send_presence(pto=jid_of("bob"), ptype="subscribe")
    await both.wait(lambda xs: xs, 8, "alice and bob to share presence both ways")
    emit("subscribed")
    # Make sure bob's current caps (with the +notify features) are what the
    # server has, then give it a moment to learn them.
    await bob["xep_0115"].update_caps(broadcast=True)
    await asyncio.sleep(1.0)

    # Disco of alice's account.
    info = await bob["xep_0030"].get_info(jid=jid_of("alice"))
    emit("disco", identities=[list(i) for i in info["disco_info"]["identities"]], features=sorted(info["disco_info"]["features"]))

    # Publishes.
    png = b"\x89PNG\r\n\x1a\nbluetick"
    avatar_id = alice["xep_0084"].generate_id(png)
    await try_iq("publish_avatar_data", alice["xep_0084"].publish_avatar(png))
    await try_iq("publish_avatar_metadata", alice["xep_0084"].publish_avatar_metadata(items=[{"id": avatar_id, "type": "image/png", "bytes": len(png)}]))
    await try_iq("publish_nick", alice["xep_0172"].publish_nick("Alice"))
    devlist = ET.Element("{%s}list" % AXOLOTL)
    ET.SubElement(devlist, "{%s}device" % AXOLOTL, id="1234")
    await try_iq("publish_devicelist", alice["xep_0060"].publish(None, DEVICELIST, id="current", payload=devlist, options=options_form(alice, access_model="open")))
    bundle = ET.Element("{%s}bundle" % AXOLOTL)
    ET.SubElement(bundle, "{%s}signedPreKeyPublic" % AXOLOTL, signedPreKeyId="1").text = "BASE64KEY"
    ET.SubElement(bundle, "{%s}identityKey" % AXOLOTL).text = "BASE64IDENTITY"
    await try_iq("publish_bundle", alice["xep_0060"].publish(None, AXOLOTL + ".bundles:1234", id="current", payload=bundle, options=options_form(alice, access_model="open")))
    # A conflicting precondition is refused.
    await try_iq("publish_devicelist_conflict", alice["xep_0060"].publish(None, DEVICELIST, id="current", payload=devlist, options=options_form(alice, access_model="whitelist")))

    try:
        await bob_events.wait(lambda xs: {n for n, _ in xs} >= {DEVICELIST, "urn:xmpp:avatar:metadata", "http://jabber.org/protocol/nick"}, 8, "bob's notifications")
    except RuntimeError as e:
        emit("missing", what=str(e))

    # Bob retrieves.
    iq = await try_iq("bob_devicelist", bob["xep_0060"].get_items(jid_of("alice"), DEVICELIST))
    iq = await try_iq("bob_bundle", bob["xep_0060"].get_item(jid_of("alice"), AXOLOTL + ".bundles:1234", "current"))
    iq = await try_iq("bob_avatar", bob["xep_0084"].retrieve_avatar(jid_of("alice"), avatar_id))
    if iq is not None:
        emit("avatar", ok=iq["pubsub"]["items"]["item"]["avatar_data"]["value"] == png)
    # Carol: open nodes yes, the presence-access nick no.
    await try_iq("carol_devicelist", carol["xep_0060"].get_items(jid_of("alice"), DEVICELIST))
    await try_iq("carol_nick", carol["xep_0060"].get_items(jid_of("alice"), "http://jabber.org/protocol/nick"))

    # Bookmarks (XEP-0402) are a private PEP node.
    conf = ET.Element("{urn:xmpp:bookmarks:1}conference", name="Room", autojoin="true")
    ET.SubElement(conf, "{urn:xmpp:bookmarks:1}nick").text = "alice"
    await try_iq("publish_bookmark", alice["xep_0060"].publish(None, "urn:xmpp:bookmarks:1", id="room@conference.localhost", payload=conf,
                 options=options_form(alice, persist_items="true", max_items="max", send_last_published_item="never", access_model="whitelist")))
    await try_iq("alice_bookmarks", alice["xep_0060"].get_items(None, "urn:xmpp:bookmarks:1"))
    await try_iq("bob_bookmarks", bob["xep_0060"].get_items(jid_of("alice"), "urn:xmpp:bookmarks:1"))
    # XEP-0223 through slixmpp's own profile.
    class Settings(slixmpp.xmlstream.ElementBase):
        name, namespace, plugin_attrib, interfaces = "settings", "urn:example:settings", "settings", {"theme"}
    secret = Settings()
    secret["theme"] = "dark"
    await try_iq("store_private_pep", alice["xep_0223"].store(secret, node="urn:example:settings", id="current"))
    await try_iq("bob_private_pep", bob["xep_0060"].get_items(jid_of("alice"), "urn:example:settings"))

    # Legacy private XML (XEP-0049).
    iq = alice.make_iq_set()
    q = ET.SubElement(iq.xml, "{jabber:iq:private}query")
    st = ET.SubElement(q, "{storage:bookmarks}storage")
    ET.SubElement(st, "{storage:bookmarks}conference", jid="room@conference.localhost", name="Room")
    await try_iq("private_set", iq.send(timeout=5))
    iq = alice.make_iq_get()
    q = ET.SubElement(iq.xml, "{jabber:iq:private}query")
    ET.SubElement(q, "{storage:bookmarks}storage")
    await try_iq("private_get", iq.send(timeout=5))

    # vcard-temp.
    vc = alice["xep_0054"].make_vcard()
    vc["FN"] = "Alice Liddell"
    vc["NICKNAME"] = "alice"
    await try_iq("vcard_set", alice["xep_0054"].publish_vcard(vc))
    iq = await try_iq("vcard_get", bob["xep_0054"].get_vcard(jid_of("alice"), local=False, timeout=5))
    if iq is not None:
        emit("vcard", fn=iq["vcard_temp"]["FN"])

    # A new resource of bob gets the last items at login (XEP-0163 §4.3.5).
    bob2 = make_client("bob", plugins=PEP_PLUGINS, name="bob2")
    bob2["xep_0163"].add_interest([DEVICELIST, "urn:xmpp:avatar:metadata", "http://jabber.org/protocol/nick"])
    await bob2["xep_0115"].update_caps(broadcast=False)
    last = Waiter()

    def on_last(msg):
        items = msg["pubsub_event"]["items"]
        emit("last_item", client="bob2", node=items["node"], **{"from": str(msg["from"])})
        last.add(items["node"])
    bob2.add_event_handler("pubsub_publish", on_last)
    emit("login", **(await login(bob2)))
    try:
        await last.wait(lambda xs: set(xs) >= {DEVICELIST, "urn:xmpp:avatar:metadata", "http://jabber.org/protocol/nick"}, 8, "bob2's last items")
    except RuntimeError as e:
        emit("missing", what=str(e))
    await disconnect(alice, bob, bob2, carol)


# --- groups (XEP-0045 rooms, issue 5) -----------------------------------------

MUC_PLUGINS = ("xep_0004", "xep_0045", "xep_0059", "xep_0313")
NS_MUC_USER = "{http://jabber.org/protocol/muc#user}"
NS_INVITE = "{urn:bluetick:muc:invite:0}"


def muc_codes(pres):
    x = pres.xml.find(NS_MUC_USER + "x")
    return sorted(s.get("code") for s in x.findall(NS_MUC_USER + "status")) if x is not None else []


def muc_item(pres):
    x = pres.xml.find(NS_MUC_USER + "x")
    it = x.find(NS_MUC_USER + "item") if x is not None else None
    return dict(it.attrib) if it is not None else {}


async def try_join(c, room, nick, **kw):
    """Join and report the self-presence or the error condition."""
    from slixmpp.exceptions import PresenceError
    try:
        pres, subject, occupants, history = await c["xep_0045"].join_muc_wait(room, nick, timeout=5, **kw)
        return {"ok": True, "codes": muc_codes(pres), "item": muc_item(pres), "history": len(history)}
    except PresenceError as e:
        return {"ok": False, "condition": e.presence["error"]["condition"], "xml": str(e.presence)}


async def muc_try_iq(coro):
    try:
        r = await coro
        return {"ok": True, "result": r}
    except IqError as e:
        return {"ok": False, "condition": e.iq["error"]["condition"], "xml": str(e.iq)}


async def sc_groups():
    """A WhatsApp-style group end to end: alice creates it (instant room),
    adds bob, carol and dave; messages fan out in order to bob and carol;
    dave, offline meanwhile, catches up through the room archive (MAM on
    the room JID, paged); eve joins with an invite link; carol is kicked
    then banned; non-members and plain members are refused with the
    XEP-0045 errors."""
    room = "team@groups." + CFG["domain"]
    alice, bob, carol = (make_client(u, plugins=MUC_PLUGINS) for u in ("alice", "bob", "carol"))
    for c in (alice, bob, carol):
        emit("login", **await login(c))

    # Create: the first join gets 201, then an instant room (empty submit).
    j = await try_join(alice, room, "Alice")
    emit("create", **j)
    form = alice["xep_0004"].make_form(ftype="submit")
    await alice["xep_0045"].set_room_config(room, form, timeout=5)
    emit("configured")
    for u in ("bob", "carol", "dave"):
        await alice["xep_0045"].set_affiliation(room, "member", jid=jid_of(u), timeout=5)
    members = await alice["xep_0045"].get_affiliation_list(room, "member", timeout=5)
    emit("members", jids=sorted(str(m) for m in members))

    got = {"bob": Waiter(), "carol": Waiter()}
    for name, c in (("bob", bob), ("carol", carol)):
        c.add_event_handler("groupchat_message", lambda m, w=got[name]: m["body"] and w.add(m))
        emit("join", client=name, **await try_join(c, room, name.capitalize(), maxstanzas=0))

    # Fan-out: 10 messages from alice, bob's 3 interleaved.
    sent = []
    for i in range(10):
        alice.send_message(mto=room, mbody="a%d" % i, mtype="groupchat")
        sent.append("a%d" % i)
        if i % 3 == 1:
            await asyncio.sleep(0.05)  # let alice's message be routed first
            bob.send_message(mto=room, mbody="b%d" % i, mtype="groupchat")
            sent.append("b%d" % i)
            await asyncio.sleep(0.05)
    for name in ("bob", "carol"):
        await got[name].wait(lambda xs: len(xs) >= len(sent), 8, "%s to get %d messages" % (name, len(sent)))
        emit("fanout", client=name, bodies=[m["body"] for m in got[name].items],
             stanza_ids=[m["stanza_id"]["id"] for m in got[name].items],
             by=[str(m["stanza_id"]["by"]) for m in got[name].items],
             froms=[str(m["from"]) for m in got[name].items])
    emit("sent_order", bodies=sent)

    # dave was offline: he catches up from the room archive, 4 per page.
    dave = make_client("dave", plugins=MUC_PLUGINS)
    emit("login", **await login(dave))
    caught = []
    async for m in dave["xep_0313"].iterate(jid=slixmpp.JID(room), rsm={"max": 4}):
        inner = m["mam_result"]["forwarded"]["stanza"]
        caught.append({"body": inner["body"], "id": m["mam_result"]["id"], "from": str(inner["from"])})
    emit("archive", client="dave", messages=caught)

    # Invite link: an admin-made token; eve joins with it as the password.
    eve = make_client("eve", plugins=MUC_PLUGINS)
    emit("login", **await login(eve))
    emit("eve_without_link", **await try_join(eve, room, "Eve"))
    iq = alice.make_iq_set(ito=room)
    iq.append(ET.Element(NS_INVITE + "create"))
    r = await iq.send(timeout=5)
    inv = r.xml.find(NS_INVITE + "invite")
    emit("invite_link", token=inv.get("token"), uri=inv.get("uri"))
    emit("eve_with_link", **await try_join(eve, room, "Eve", password=inv.get("token")))

    # Kick, then ban, carol.
    removed = Waiter()
    carol.add_event_handler("muc::%s::presence" % room,
                            lambda p: p["type"] == "unavailable" and p["from"].resource == "Carol" and removed.add(p))
    await alice["xep_0045"].set_role(room, "Carol", "none", reason="kick test", timeout=5)
    await removed.wait(lambda xs: len(xs) >= 1, 5, "carol's kick presence")
    emit("kicked", codes=muc_codes(removed.items[0]), item=muc_item(removed.items[0]))
    emit("carol_rejoin_after_kick", **await try_join(carol, room, "Carol"))
    await alice["xep_0045"].set_affiliation(room, "outcast", jid=jid_of("carol"), reason="ban test", timeout=5)
    await removed.wait(lambda xs: len(xs) >= 2, 5, "carol's ban presence")
    emit("banned", codes=muc_codes(removed.items[1]), item=muc_item(removed.items[1]))
    emit("carol_rejoin_after_ban", **await try_join(carol, room, "Carol2"))

    # Authorization failures.
    mallory = make_client("mallory", plugins=MUC_PLUGINS)
    emit("login", **await login(mallory))
    emit("mallory_join", **await try_join(mallory, room, "Mallory"))
    r = await muc_try_iq(mallory["xep_0313"].retrieve(jid=slixmpp.JID(room), timeout=5))
    emit("mallory_archive", ok=r["ok"], condition=r.get("condition"))
    r = await muc_try_iq(mallory["xep_0045"].get_affiliation_list(room, "member", timeout=5))
    emit("mallory_members", ok=r["ok"], condition=r.get("condition"))
    r = await muc_try_iq(bob["xep_0045"].set_affiliation(room, "member", jid=jid_of("mallory"), timeout=5))
    emit("member_adds", ok=r["ok"], condition=r.get("condition"))
    await alice["xep_0045"].set_affiliation(room, "admin", jid=jid_of("bob"), timeout=5)
    r = await muc_try_iq(bob["xep_0045"].set_affiliation(room, "none", jid=jid_of("alice"), timeout=5))
    emit("admin_removes_owner", ok=r["ok"], condition=r.get("condition"))
    msg = mallory.make_message(mto=room, mbody="let me in", mtype="groupchat")
    errs = Waiter()
    mallory.add_event_handler("message_error", errs.add)
    msg.send()
    await errs.wait(lambda xs: xs, 5, "mallory's message bounce")
    emit("mallory_post", condition=errs.items[0]["error"]["condition"])
    await disconnect(alice, bob, carol, dave, eve, mallory)


NS_PUSH = "urn:xmpp:push:0"
NS_DATA = "jabber:x:data"


def form_values(form):
    """var -> first value of a data form, read from its XML."""
    out = {}
    for f in form.xml.findall("{%s}field" % NS_DATA):
        v = f.find("{%s}value" % NS_DATA)
        out[f.get("var")] = v.text if v is not None else None
    return out


async def push_iq(c, name, node=None, secret=None):
    """Send XEP-0357 <enable/> or <disable/> (this slixmpp has no
    xep_0357 plugin, so the payload is built by hand)."""
    iq = c.make_iq_set()
    el = ET.Element("{%s}%s" % (NS_PUSH, name), {"jid": "push." + CFG["domain"]})
    if node:
        el.set("node", node)
    if secret:
        x = ET.SubElement(el, "{%s}x" % NS_DATA, {"type": "submit"})
        for var, val in (("FORM_TYPE", "http://jabber.org/protocol/pubsub#publish-options"), ("secret", secret)):
            f = ET.SubElement(x, "{%s}field" % NS_DATA, {"var": var})
            ET.SubElement(f, "{%s}value" % NS_DATA).text = val
    iq.append(el)
    try:
        await iq.send(timeout=5)
        return None
    except IqError as e:
        return e.iq["error"]["condition"] or "error"


async def sc_push():
    """XEP-0357 with the built-in gateway: bob registers a webhook device
    with the ad-hoc command (XEP-0050, two stages), enables push and goes
    offline; alice sends him a message (a push must reach the webhook);
    bob comes back, disables push and leaves; alice sends another (no
    push). Also: enable with a foreign app server is refused."""
    gw = "push." + CFG["domain"]
    bob = make_client("bob", plugins=["xep_0004", "xep_0050"])
    b = await login(bob)
    emit("login", **b)
    info = await bob["xep_0030"].get_info(jid=jid_of("bob"), timeout=5)
    emit("account_disco", features=sorted(info["disco_info"]["features"]))
    items = await bob["xep_0030"].get_items(jid=CFG["domain"], timeout=5)
    emit("server_items", jids=[str(i[0]) for i in items["disco_items"]["items"]])
    cmds = await bob["xep_0030"].get_items(jid=gw, node="http://jabber.org/protocol/commands", timeout=5)
    emit("commands", nodes=[i[1] for i in cmds["disco_items"]["items"]])
    # Stage 1: execute without a form, get the form.
    r1 = await bob["xep_0050"].send_command(gw, "register-push-webhook", timeout=5)
    form = r1["command"]["form"]
    emit("command_form", status=r1["command"]["status"], fields=sorted(form_values(form).keys()))
    # Stage 2: complete with the submitted form.
    sub = bob["xep_0004"].make_form(ftype="submit")
    sub.add_field(var="url", value=arg("url"))
    sub.add_field(var="device-id", value="interop-phone")
    r2 = await bob["xep_0050"].send_command(gw, "register-push-webhook", action="complete",
                                             sessionid=r1["command"]["sessionid"], payload=sub, timeout=5)
    res = form_values(r2["command"]["form"])
    emit("registered", status=r2["command"]["status"], node=res.get("node"), has_secret=bool(res.get("secret")), jid=str(res.get("jid")))
    iq = bob.make_iq_set()
    iq.append(ET.Element("{%s}enable" % NS_PUSH, {"jid": "push.example.net", "node": "n"}))
    try:
        await iq.send(timeout=5)
        emit("enable_foreign", error=None)
    except IqError as e:
        emit("enable_foreign", error=e.iq["error"]["condition"], text=e.iq["error"]["text"])
    err = await push_iq(bob, "enable", node=res.get("node"), secret=res.get("secret"))
    emit("enabled", error=err)
    await disconnect(bob)
    await asyncio.sleep(0.3)

    alice = make_client("alice")
    a = await login(alice)
    emit("login", **a)
    alice.send_message(mto=jid_of("bob"), mbody=arg("body1"), mtype="chat")
    emit("sent", n=1)
    await asyncio.sleep(arg("settle", 2))

    bob2 = make_client("bob")
    got = bodies_waiter(bob2)
    await login(bob2)
    await got.wait(lambda xs: len(xs) >= 1, 5, "the offline message")
    err = await push_iq(bob2, "disable")
    emit("disabled", error=err)
    await disconnect(bob2)
    await asyncio.sleep(0.3)
    alice.send_message(mto=jid_of("bob"), mbody=arg("body2"), mtype="chat")
    emit("sent", n=2)
    await asyncio.sleep(arg("settle", 2))
    await disconnect(alice)


async def register_and_enable(c, url, device_id):
    """Register a webhook device in one stage (form submitted with the
    first execute, as Conversations does) and enable push with it."""
    sub = c["xep_0004"].make_form(ftype="submit")
    sub.add_field(var="url", value=url)
    sub.add_field(var="device-id", value=device_id)
    r = await c["xep_0050"].send_command("push." + CFG["domain"], "register-push-webhook", payload=sub, timeout=5)
    res = form_values(r["command"]["form"])
    return await push_iq(c, "enable", node=res.get("node"), secret=res.get("secret"))


async def hook_count():
    import urllib.request
    loop = asyncio.get_running_loop()
    data = await loop.run_in_executor(None, lambda: urllib.request.urlopen(arg("count_url"), timeout=5).read())
    return int(data)


async def sc_push_sleep():
    """bob stays connected with stream management and enables push. A
    message while he is inactive (XEP-0352) pushes; one while he is active
    does not; after his connection is reset (session hibernated, XEP-0198)
    a message pushes again. The webhook's count is read after each step."""
    bob = make_client("bob", plugins=["xep_0004", "xep_0050", "xep_0352"], sm=True)
    enabled = Waiter()
    bob.add_event_handler("sm_enabled", enabled.add)
    got = bodies_waiter(bob)
    b = await login(bob)
    emit("login", **b)
    await enabled.wait(lambda xs: xs, 5, "<enabled/>")
    emit("enabled", error=await register_and_enable(bob, arg("url"), "sleepy-phone"))
    alice = make_client("alice")
    emit("login", **(await login(alice)))
    settle = arg("settle", 1.5)

    async def step(name, body, n_received):
        alice.send_message(mto=jid_of("bob"), mbody=body, mtype="chat")
        if n_received:
            await got.wait(lambda xs: len(xs) >= n_received, 5, body)
        await asyncio.sleep(settle)
        emit("step", name=name, hits=await hook_count())

    bob["xep_0352"].send_inactive()
    await asyncio.sleep(0.3)
    await step("inactive", "while inactive", 1)
    bob["xep_0352"].send_active()
    await asyncio.sleep(0.3)
    await step("active", "while active", 2)
    sock = bob.transport.get_extra_info("socket")
    import socket as _s
    import struct
    sock.setsockopt(_s.SOL_SOCKET, _s.SO_LINGER, struct.pack("ii", 1, 0))
    bob.abort()
    await asyncio.sleep(0.5)
    await step("hibernated", "while hibernated", 0)
    await disconnect(alice)


NS_ADMIN = "http://jabber.org/protocol/admin"


def form_all(form):
    """var -> all values of a data form, read from its XML."""
    return {f.get("var"): [v.text or "" for v in f.findall("{%s}value" % NS_DATA)]
            for f in form.xml.findall("{%s}field" % NS_DATA)}


async def admin_cmd(c, name, fields=None, two_stage=True):
    """Run the XEP-0133 command `name` on the server as Gajim does: execute
    (the form comes back), then complete with the submitted fields. With
    two_stage False, or no fields, a single execute. Returns (status, note,
    {var: [values]} of the result form) or raises IqError."""
    node = NS_ADMIN + "#" + name
    xep50 = c["xep_0050"]
    sid = None
    if fields is not None and two_stage:
        r1 = await xep50.send_command(CFG["domain"], node, timeout=5)
        if r1["command"]["status"] != "executing":
            raise RuntimeError("%s: first stage %s" % (name, r1["command"]["status"]))
        sid = r1["command"]["sessionid"]
    payload = None
    if fields is not None:
        payload = c["xep_0004"].make_form(ftype="submit")
        payload.add_field(var="FORM_TYPE", ftype="hidden", value=NS_ADMIN)
        for var, val in fields.items():
            payload.add_field(var=var, value=val)
    kw = {"action": "complete", "sessionid": sid} if sid else {}
    r = await xep50.send_command(CFG["domain"], node, payload=payload, timeout=5, **kw)
    cmd = r["command"]
    note = cmd.xml.find("{http://jabber.org/protocol/commands}note")
    x = cmd.xml.find("{%s}x" % NS_DATA)
    return cmd["status"], (note.text if note is not None else None), (form_all(cmd["form"]) if x is not None else {})


async def admin_try(c, name, fields=None, two_stage=True):
    try:
        status, note, vals = await admin_cmd(c, name, fields, two_stage)
        return {"status": status, "note": note, "values": vals, "error": None}
    except IqError as e:
        return {"error": e.iq["error"]["condition"], "text": e.iq["error"]["text"]}


async def sc_admin():
    """XEP-0133 from slixmpp's xep_0050/xep_0133 plugins: alice (an admin
    in the config) lists the admin commands and runs them; bob (not one)
    sees none and is refused; carol, online, gets the announcement; a user
    alice adds logs in with its password and gets the message of the day;
    end-user-session disconnects bob; errors for bad input."""
    plugins = ["xep_0004", "xep_0050", "xep_0133"]
    alice = make_client("alice", plugins=plugins)
    bob = make_client("bob", plugins=plugins)
    carol = make_client("carol")
    carol_got = bodies_waiter(carol)
    for c in (alice, bob, carol):
        emit("login", **(await login(c)))
    bob_ended = Waiter()
    bob.add_event_handler("stream_error", lambda e: bob_ended.add(e["condition"]))
    bob.add_event_handler("disconnected", lambda e: bob_ended.add("disconnected"))

    items = await alice["xep_0133"].get_commands(timeout=5)
    emit("admin_commands", nodes=[i[1] for i in items["disco_items"]["items"]])
    items = await bob["xep_0133"].get_commands(timeout=5)
    emit("bob_commands", nodes=[i[1] for i in items["disco_items"]["items"]])
    emit("bob_online_num", **(await admin_try(bob, "get-online-users-num")))
    emit("bob_add_user", **(await admin_try(bob, "add-user", {"accountjid": jid_of("mallory"), "password": "x", "password-verify": "x"}, two_stage=False)))

    emit("online_num", **(await admin_try(alice, "get-online-users-num")))
    emit("online_list", **(await admin_try(alice, "get-online-users-list", {"max_items": "100"})))
    emit("registered_num", **(await admin_try(alice, "get-registered-users-num")))
    emit("user_stats", **(await admin_try(alice, "user-stats", {"accountjid": jid_of("bob")})))
    emit("add_foreign", **(await admin_try(alice, "add-user", {"accountjid": "dave@example.net", "password": "p", "password-verify": "p"})))
    emit("add_missing", **(await admin_try(alice, "add-user", {"accountjid": jid_of("dave")})))
    emit("delete_unknown", **(await admin_try(alice, "delete-user", {"accountjids": jid_of("nobody")})))

    emit("announce", **(await admin_try(alice, "announce", {"subject": "Notice", "announcement": arg("announcement")})))
    msgs = await carol_got.wait(lambda xs: any(m["body"] == arg("announcement") for m in xs), 5, "the announcement")
    m = [m for m in msgs if m["body"] == arg("announcement")][0]
    emit("carol_announcement", sender=str(m["from"]), subject=m["subject"])

    emit("set_motd", **(await admin_try(alice, "set-motd", {"subject": "Welcome", "announcement": arg("motd")})))
    emit("add_user", **(await admin_try(alice, "add-user", {"accountjid": jid_of("dave"), "password": "dave-pw-1", "password-verify": "dave-pw-1"})))
    CFG["users"]["dave"] = "dave-pw-1"
    dave = make_client("dave")
    dave_got = bodies_waiter(dave)
    emit("dave_login", **(await login(dave)))
    await dave_got.wait(lambda xs: any(m["body"] == arg("motd") for m in xs), 5, "the message of the day")
    emit("dave_motd", got=True)
    await disconnect(dave)

    emit("passwd", **(await admin_try(alice, "change-user-password", {"accountjid": jid_of("dave"), "password": "dave-pw-2"})))
    old = make_client("dave", name="dave-old")
    try:
        await login(old, presence=False, timeout=5)
        emit("dave_old_password", refused=False)
    except RuntimeError as e:
        emit("dave_old_password", refused=True, error=str(e))
    await disconnect(old)
    CFG["users"]["dave"] = "dave-pw-2"
    new = make_client("dave", name="dave-new")
    emit("dave_new_password", **(await login(new)))
    await disconnect(new)

    emit("disable", **(await admin_try(alice, "disable-user", {"accountjids": jid_of("dave")})))
    off = make_client("dave", name="dave-disabled")
    try:
        await login(off, presence=False, timeout=5)
        emit("dave_disabled_login", refused=False)
    except RuntimeError as e:
        emit("dave_disabled_login", refused=True, error=str(e))
    await disconnect(off)
    emit("reenable", **(await admin_try(alice, "reenable-user", {"accountjids": jid_of("dave")})))
    on = make_client("dave", name="dave-reenabled")
    emit("dave_reenabled_login", **(await login(on)))
    await disconnect(on)

    emit("delete_motd", **(await admin_try(alice, "delete-motd")))
    emit("delete_user", **(await admin_try(alice, "delete-user", {"accountjids": jid_of("dave")})))
    emit("registered_after", **(await admin_try(alice, "get-registered-users-num")))

    emit("end_session", **(await admin_try(alice, "end-user-session", {"accountjids": jid_of("bob")})))
    ended = await bob_ended.wait(lambda xs: xs, 5, "bob's session to end")
    emit("bob_ended", how=ended)
    await disconnect(alice, carol)


SCENARIOS = {name[3:]: fn for name, fn in globals().items() if name.startswith("sc_")}


def main(scenarios=None, prog="slix.py"):
    """Runs the scenario named by argv[1] with the JSON config of argv[2]:
    JSON events on stdout, "done", "timeout" or "error" last. The other
    slix_*.py files call it with their own scenarios."""
    global CFG
    scenarios = scenarios or SCENARIOS
    if len(sys.argv) != 3 or sys.argv[1] not in scenarios:
        print("usage: %s {%s} JSON" % (prog, "|".join(sorted(scenarios))), file=sys.stderr)
        sys.exit(2)
    CFG = json.loads(sys.argv[2])
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    total = CFG.get("timeout", 20)

    async def run():
        await asyncio.wait_for(scenarios[sys.argv[1]](), total)

    code = 0
    try:
        asyncio.run(run())
        emit("done")
    except asyncio.TimeoutError:
        emit("timeout", after=total)
        code = 3
    except Exception as e:
        traceback.print_exc()
        emit("error", error="%s: %s" % (type(e).__name__, e))
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    # Do not wait for slixmpp's lingering tasks.
    import os
    os._exit(code)


if __name__ == "__main__":
    main()
