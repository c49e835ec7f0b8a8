#!/usr/bin/python3
"""slixmpp scenarios for message archive (XEP-0313) and blocking
(XEP-0191), in slix.py's conventions (same config, JSON events on
stdout, traffic on stderr). A separate file so the archive and blocking
scenarios do not collide with others added to slix.py.

Usage: /usr/bin/python3 slix_mam.py SCENARIO 'JSON-CONFIG'
"""

import asyncio
from datetime import datetime, timezone

from slixmpp.exceptions import IqError, IqTimeout

import slix
from slix import emit, arg, jid_of, make_client, login, disconnect, bodies_waiter

NS_MAM = "urn:xmpp:mam:2"


def result_facts(msg):
    r = msg["mam_result"]
    fwd = r["forwarded"]
    inner = fwd["stanza"]
    return {
        "id": r["id"],
        "queryid": r["queryid"],
        "from": str(msg["from"]),
        "body": inner["body"],
        "inner_from": str(inner["from"]),
        "inner_to": str(inner["to"]),
        "stamp": fwd["delay"]["stamp"].astimezone(timezone.utc).isoformat() if fwd["delay"]["stamp"] else None,
    }


def fin_facts(iq):
    fin = iq.xml.find("{%s}fin" % NS_MAM)
    rsm = iq["mam_fin"]["rsm"]
    return {
        "complete": fin is not None and fin.get("complete") == "true",
        "first": rsm["first"] or None,
        "last": rsm["last"] or None,
    }


def parse_time(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00")) if s else None


async def page_through(c, label, with_jid=None, start=None, end=None, max_=50):
    """Forward paging with RSM max/after until the server says complete;
    one event per page and per result."""
    after = None
    pages = 0
    while True:
        rsm = {"max": max_}
        if after:
            rsm["after"] = after
        iq = await c["xep_0313"].retrieve(jid=c.boundjid.bare, with_jid=with_jid, start=start, end=end,
                                          rsm=rsm, timeout=10)
        results = [result_facts(m) for m in iq["mam"]["results"]]
        fin = fin_facts(iq)
        emit("page", label=label, n=len(results), **fin)
        for r in results:
            emit("result", label=label, page=pages, **r)
        pages += 1
        if fin["complete"] or not results or pages > 100:
            break
        after = fin["last"]


async def sc_mam_paging():
    """alice sends args.live messages to bob live (bob online), then pages
    through her whole archive (max=50), the last page (RSM <before/>)
    backwards, then with a 'with' filter and a start/end window."""
    alice = make_client("alice", plugins=["xep_0313", "xep_0059", "xep_0297"])
    bob = make_client("bob")
    got = bodies_waiter(bob)
    emit("login", **(await login(alice)))
    emit("login", **(await login(bob)))
    info = await alice["xep_0030"].get_info(jid=alice.boundjid.bare, timeout=5)
    emit("disco", features=sorted(info["disco_info"]["features"]))
    n = arg("live", 20)
    for i in range(n):
        alice.send_message(mto=jid_of("bob"), mbody="live %03d" % i, mtype="chat")
    await got.wait(lambda xs: len(xs) >= n, 10, "bob to get the live messages")
    emit("bob_stanza_ids", ids=[m["stanza_id"]["id"] for m in got.items], by=[str(m["stanza_id"]["by"]) for m in got.items])
    await page_through(alice, "all")
    # Backwards from the end with slixmpp's RSM iterator (<before/>).
    back = []
    async for m in alice["xep_0313"].iterate(jid=alice.boundjid.bare, reverse=True, rsm={"max": 50}, total=arg("back", 120)):
        back.append(result_facts(m)["id"])
    emit("backward", ids=back)
    await page_through(alice, "with", with_jid=arg("with"))
    await page_through(alice, "window", start=parse_time(arg("start")), end=parse_time(arg("end")))
    # An unknown id in <after/> is item-not-found.
    try:
        await alice["xep_0313"].retrieve(jid=alice.boundjid.bare, rsm={"max": 5, "after": "no-such-id"}, timeout=5)
        emit("unknown_after", type="result")
    except IqError as e:
        emit("unknown_after", type="error", condition=e.iq["error"]["condition"])
    await disconnect(alice, bob)


def error_facts(stanza):
    err = stanza.xml.find("{jabber:client}error")
    blocked = err is not None and err.find("{urn:xmpp:blocking:errors}blocked") is not None
    return {"type": stanza["type"], "condition": stanza["error"]["condition"], "blocked": blocked, "xml": str(stanza)}


async def sc_blocking():
    """alice blocks bob (XEP-0191); each sends the other a message (both
    must come back as errors: service-unavailable to bob, not-acceptable +
    <blocked/> to alice); alice unblocks bob; messages flow again."""
    alice = make_client("alice", plugins=["xep_0191"])
    bob = make_client("bob")
    alice_got, bob_got = bodies_waiter(alice), bodies_waiter(bob)
    errors = {"alice": [], "bob": []}
    alice.add_event_handler("message_error", lambda m: errors["alice"].append(m))
    bob.add_event_handler("message_error", lambda m: errors["bob"].append(m))
    pushes = []
    alice.add_event_handler("blocked", lambda iq: pushes.append(("block", [str(j) for j in iq["block"]["items"]])))
    alice.add_event_handler("unblocked", lambda iq: pushes.append(("unblock", [str(j) for j in iq["unblock"]["items"]])))
    emit("login", **(await login(alice)))
    emit("login", **(await login(bob)))
    info = await alice["xep_0030"].get_info(jid=slix.CFG["domain"], timeout=5)
    emit("disco", features=sorted(info["disco_info"]["features"]))
    r = await alice["xep_0191"].get_blocked(timeout=5)
    emit("blocklist", when="initial", items=sorted(str(j) for j in r["blocklist"]["items"]))
    await alice["xep_0191"].block(jid_of("bob"), timeout=5)
    r = await alice["xep_0191"].get_blocked(timeout=5)
    emit("blocklist", when="blocked", items=sorted(str(j) for j in r["blocklist"]["items"]))

    bob.send_message(mto=jid_of("alice"), mbody="bob while blocked", mtype="chat")
    alice.send_message(mto=jid_of("bob"), mbody="alice while blocking", mtype="chat")
    deadline = asyncio.get_running_loop().time() + 5
    while (not errors["alice"] or not errors["bob"]) and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # anything wrongly delivered would be here by now
    for who in ("alice", "bob"):
        for e in errors[who]:
            emit("bounce", client=who, **error_facts(e))
    # Bounces carry the body too; only real deliveries count.
    emit("while_blocked", alice_got=[m["body"] for m in alice_got.items if m["type"] != "error"],
         bob_got=[m["body"] for m in bob_got.items if m["type"] != "error"])

    await alice["xep_0191"].unblock(jid_of("bob"), timeout=5)
    r = await alice["xep_0191"].get_blocked(timeout=5)
    emit("blocklist", when="unblocked", items=sorted(str(j) for j in r["blocklist"]["items"]))
    bob.send_message(mto=jid_of("alice"), mbody="bob after unblock", mtype="chat")
    alice.send_message(mto=jid_of("bob"), mbody="alice after unblock", mtype="chat")
    await alice_got.wait(lambda xs: any(m["body"] == "bob after unblock" for m in xs), 8, "alice to get bob's message")
    await bob_got.wait(lambda xs: any(m["body"] == "alice after unblock" for m in xs), 8, "bob to get alice's message")
    emit("after_unblock", alice_got=[m["body"] for m in alice_got.items], bob_got=[m["body"] for m in bob_got.items])
    emit("pushes", pushes=pushes)
    await disconnect(alice, bob)


SCENARIOS = {name[3:]: fn for name, fn in globals().items() if name.startswith("sc_")}



if __name__ == "__main__":
    slix.main(SCENARIOS, "slix_mam.py")
