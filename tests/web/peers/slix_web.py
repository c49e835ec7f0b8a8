#!/usr/bin/python3
"""slixmpp as the other side of a chat with Bluetick Web (tests/web
interop_test.go), in tests/interop/clients/slix.py's conventions (same
config, JSON events on stdout, traffic on stderr; slix.py is imported from
there).

bob (stock slixmpp: xep_0184 answers receipt requests by itself; xep_0333
sends a displayed marker only when asked) logs in and:
  - sends alice "hello from slixmpp" with a receipt request and
    <markable/>, and reports the receipt and displayed marker the app sends;
  - answers each message from alice with "slixmpp got: BODY"; for a body
    containing "read this" it first sends a XEP-0333 displayed marker (a
    person reading it); "bye" ends the run.

Usage: /usr/bin/python3 slix_web.py webpeer 'JSON-CONFIG'
"""

import asyncio
import os
import sys
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "interop", "clients"))

import slix  # noqa: E402
from slix import emit, arg, jid_of, make_client, login, disconnect, bodies_waiter, Waiter  # noqa: E402


async def sc_webpeer():
    peer = jid_of(arg("peer", "alice"))
    c = make_client(arg("user", "bob"), resource="slixmpp")
    got = bodies_waiter(c)
    receipts, markers = Waiter(), Waiter()
    c.add_event_handler("receipt_received", receipts.add)
    c.add_event_handler("marker_displayed", markers.add)
    info = await login(c)
    emit("ready", **info)

    first = c.make_message(mto=peer, mbody="hello from slixmpp", mtype="chat")
    first["id"] = "slix-" + uuid.uuid4().hex[:8]
    first["request_receipt"] = True
    first.enable("markable")
    first.send()
    emit("sent", id=first["id"])

    done = 0
    while True:
        await got.wait(lambda xs: len(xs) > done, arg("wait", 80), "message %d from the app" % (done + 1))
        m = got.items[done]
        done += 1
        body = m["body"]
        emit("received", body=body, id=m["id"], receipt_requested=m.xml.find("{urn:xmpp:receipts}request") is not None,
             markable=m.xml.find("{urn:xmpp:chat-markers:0}markable") is not None,
             origin_id=(m.xml.find("{urn:xmpp:sid:0}origin-id").get("id") if m.xml.find("{urn:xmpp:sid:0}origin-id") is not None else None))
        if body == "bye":
            break
        if "read this" in body:
            c["xep_0333"].send_marker(m["from"], m["id"], "displayed")
        c.send_message(mto=m["from"], mbody="slixmpp got: " + body, mtype="chat")

    for r in receipts.items:
        emit("receipt", id=r["receipt"])
    for d in markers.items:
        emit("displayed", id=d["displayed"]["id"])
    await disconnect(c)


if __name__ == "__main__":
    slix.main({"webpeer": sc_webpeer}, prog="slix_web.py")
