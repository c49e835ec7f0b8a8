#!/usr/bin/python3
"""Raw-socket scenarios (see rawxmpp.py) for what client libraries will not
do: an oversize stanza, stream features before/after TLS, and a XEP-0198
resumption with exact counters.

Usage: /usr/bin/python3 raw.py SCENARIO 'JSON-CONFIG'; prints JSON lines.
"""

import json
import select
import signal
import ssl
import sys
import time
import traceback
import uuid

import rawxmpp
from rawxmpp import NS_SASL, NS_SM, NS_STREAM, NS_TLS, Raw, local, ns, stream_error, tostr

CFG = {}


def emit(event, **kw):
    print(json.dumps(dict(event=event, **kw), default=str), flush=True)


def arg(name, default=None):
    return (CFG.get("args") or {}).get(name, default)


def new(name, direct_tls=False):
    return Raw(CFG["host"], CFG["tls"] if direct_tls else CFG["c2s"], CFG["domain"], direct_tls=direct_tls, name=name)


def sc_features():
    """Stream features before and after STARTTLS on the c2s port, and on the
    direct-TLS port."""
    r = new("features")
    r.connect()
    f = r.open_stream()
    emit("features", stage="plain", starttls=r.has_feature("starttls", NS_TLS),
         starttls_required=f.find("{%s}starttls/{%s}required" % (NS_TLS, NS_TLS)) is not None,
         mechanisms=r.mechanisms(), xml=tostr(f))
    f = r.starttls()
    emit("features", stage="starttls", starttls=r.has_feature("starttls", NS_TLS),
         mechanisms=r.mechanisms(), xml=tostr(f))
    r.close()
    d = new("features-tls", direct_tls=True)
    d.connect()
    f = d.open_stream()
    emit("features", stage="direct_tls", alpn=d.sock.selected_alpn_protocol(), starttls=d.has_feature("starttls", NS_TLS),
         mechanisms=d.mechanisms(), xml=tostr(f))
    d.close()


def sc_oversize():
    """alice sends a 300 KiB message body; the server must answer with a
    <policy-violation/> stream error and close the stream."""
    size = arg("kib", 300) * 1024
    r = new("alice")
    jid = r.login("alice", CFG["users"]["alice"], resource="big")
    emit("login", jid=jid, mechanism=r.mechanism, tls=r.tls)
    head = "<message to='bob@%s' type='chat' id='big1'><body>" % CFG["domain"]
    tail = "</body></message>"
    payload = (head + "a" * size + tail).encode()
    emit("sending", bytes=len(payload))
    send_err = []
    rawxmpp.log("alice", "SEND", rawxmpp.short(payload, 300))
    res = {"stream_error": None, "xml": None, "stream_closed": False, "tcp_closed": False, "others": []}
    # One thread only (an SSL object must not be read and written at once):
    # write 16 KiB at a time and, between writes, read whatever the server
    # has sent, so its stream error is seen as soon as it is written.
    view = memoryview(payload)
    sent = 0
    try:
        while sent < len(view):
            r.sock.settimeout(5)
            r.sock.sendall(view[sent:sent + 16384])
            sent += 16384
            readable, _, _ = select.select([r.sock], [], [], 0)
            if readable or (isinstance(r.sock, ssl.SSLSocket) and r.sock.pending()):
                break  # the server answered mid-stanza: stop and read it
    except OSError as e:
        send_err.append(repr(e))
    res["bytes_sent"] = min(sent, len(view))
    try:
        while True:
            el = r.recv(8)
            if el is None:
                break
            se = stream_error(el)
            if se:
                res["stream_error"], res["xml"] = se
            else:
                res["others"].append(tostr(el)[:300])
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
    res["send_error"] = send_err[0] if send_err else None
    emit("result", **res)


def sm_count(el):
    """Whether el counts for XEP-0198's h: message, presence, iq."""
    return local(el.tag) in ("message", "presence", "iq") and ns(el.tag) == "jabber:client"


def sc_resume():
    """Raw XEP-0198 resumption with exact counters.

    bob enables SM with resume, sends initial presence (1 stanza), reads m1
    and acks it; alice sends m2; bob reads m2 but does NOT ack it; his TCP
    connection is reset; alice sends m3; bob reconnects with
    <resume previd h=handled/>: the server must answer <resumed h='1'/>
    (bob's one presence) and re-send m3 only (m1 and m2 were counted in h)."""
    alice = new("alice")
    alice.login("alice", CFG["users"]["alice"], resource="raw")
    bob = new("bob")
    bob_jid = bob.login("bob", CFG["users"]["bob"], resource="raw")
    emit("login", jid=bob_jid, mechanism=bob.mechanism, tls=bob.tls)
    bob.send_raw("<enable xmlns='%s' resume='true'/>" % NS_SM)
    en, _ = bob.wait_for(lambda e: ns(e.tag) == NS_SM, 5)
    if en is None or local(en.tag) != "enabled":
        emit("enable_failed", xml=tostr(en) if en is not None else None)
        return
    smid = en.get("id")
    emit("enabled", id=smid, resume=en.get("resume"), max=en.get("max"), xml=tostr(en))
    h = 0
    seen = []  # (connection, body, stanza-id)

    def pump(conn, until, timeout):
        """Read for up to timeout, counting stanzas and answering <r/>,
        until until() is true."""
        nonlocal h
        deadline = time.monotonic() + timeout
        while not until() and time.monotonic() < deadline:
            el = bob.recv(max(0.05, deadline - time.monotonic()))
            if el is None:
                continue
            if sm_count(el):
                h += 1
                if local(el.tag) == "message":
                    body = el.findtext("{jabber:client}body")
                    sid = el.find("{urn:xmpp:sid:0}stanza-id")
                    if body:
                        seen.append({"connection": conn, "body": body, "stanza_id": sid.get("id") if sid is not None else None, "xml": tostr(el)})
            elif ns(el.tag) == NS_SM and local(el.tag) == "r":
                if conn_acks[0]:
                    bob.send_raw("<a xmlns='%s' h='%d'/>" % (NS_SM, h))
            elif ns(el.tag) == NS_SM:
                emit("sm_nonza", connection=conn, xml=tostr(el))

    conn_acks = [True]
    bob.send_raw("<presence/>")

    def alice_send(i):
        mid = "raw-res-%d-%s" % (i, uuid.uuid4().hex[:6])
        alice.send_raw("<message to='bob@%s' type='chat' id='%s'><body>m%d</body></message>" % (CFG["domain"], mid, i))
        return mid

    alice_send(1)
    pump(1, lambda: any(s["body"] == "m1" for s in seen), 5)
    bob.send_raw("<a xmlns='%s' h='%d'/>" % (NS_SM, h))
    conn_acks[0] = False  # from now on bob does not ack
    alice_send(2)
    pump(1, lambda: any(s["body"] == "m2" for s in seen), 5)
    emit("before_kill", h=h, seen=[s["body"] for s in seen])
    bob.abort()
    time.sleep(0.5)
    alice_send(3)
    time.sleep(0.3)
    bob = new("bob2")
    bob.connect()
    bob.open_stream()
    bob.starttls()
    bob.scram("bob", CFG["users"]["bob"], "SCRAM-SHA-256" if "SCRAM-SHA-256" in bob.mechanisms() else "SCRAM-SHA-1")
    emit("resume_features", sm=bob.has_feature("sm", NS_SM), xml=tostr(bob.features))
    bob.send_raw("<resume xmlns='%s' previd='%s' h='%d'/>" % (NS_SM, smid, h))
    el, skipped = bob.wait_for(lambda e: ns(e.tag) == NS_SM and local(e.tag) in ("resumed", "failed"), 5)
    emit("resume_answer", name=local(el.tag) if el is not None else None, h=el.get("h") if el is not None else None,
         previd=el.get("previd") if el is not None else None, xml=tostr(el) if el is not None else None)
    if el is None or local(el.tag) != "resumed":
        return
    conn_acks[0] = True
    pump(2, lambda: False, 2.0)
    for s in seen:
        emit("received", **s)
    bob.send_raw("<a xmlns='%s' h='%d'/>" % (NS_SM, h))
    bob.close()
    alice.close()


SCENARIOS = {name[3:]: fn for name, fn in globals().items() if name.startswith("sc_")}


def main():
    global CFG
    if len(sys.argv) != 3 or sys.argv[1] not in SCENARIOS:
        print("usage: raw.py {%s} JSON" % "|".join(sorted(SCENARIOS)), file=sys.stderr)
        sys.exit(2)
    CFG = json.loads(sys.argv[2])
    total = CFG.get("timeout", 20)

    def on_alarm(signum, frame):
        emit("timeout", after=total)
        sys.stdout.flush()
        import os
        os._exit(3)

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(total)
    try:
        SCENARIOS[sys.argv[1]]()
        emit("done")
    except Exception as e:
        traceback.print_exc()
        emit("error", error="%s: %s" % (type(e).__name__, e))
        sys.exit(1)


if __name__ == "__main__":
    main()
