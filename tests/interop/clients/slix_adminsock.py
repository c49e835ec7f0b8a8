#!/usr/bin/python3
"""slixmpp scenario for the admin socket's commands (`bluetick announce`,
`room destroy`, `user kick`), in slix.py's conventions (same config, JSON
events on stdout, traffic on stderr). The Go test runs the commands while
the clients are connected; the clients report what reached them.

alice (XEP-0198 with resumption, as phones use it) creates the group
team@groups.DOMAIN, adds bob, and both join; then "ready". The script then
waits, in order, for the announcement on both clients ("announced"), for
the destroy presence on bob ("destroyed"), and for alice's stream error
and disconnection ("kicked").

Usage: /usr/bin/python3 slix_adminsock.py adminsock 'JSON-CONFIG'
"""

import asyncio

import slix
from slix import emit, arg, jid_of, make_client, login, disconnect, try_join, Waiter, MUC_PLUGINS, NS_MUC_USER


async def sc_adminsock():
    room = "team@groups." + slix.CFG["domain"]
    alice = make_client("alice", resource="phone", plugins=MUC_PLUGINS, sm=True)
    bob = make_client("bob", resource="pc", plugins=MUC_PLUGINS)
    emit("login", **await login(alice))
    emit("login", **await login(bob))
    emit("create", **await try_join(alice, room, "Alice"))
    await alice["xep_0045"].set_room_config(room, alice["xep_0004"].make_form(ftype="submit"), timeout=5)
    await alice["xep_0045"].set_affiliation(room, "member", jid=jid_of("bob"), timeout=5)
    emit("join", **await try_join(bob, room, "Bob"))

    notes = {"alice": Waiter(), "bob": Waiter()}
    for name, c in (("alice", alice), ("bob", bob)):
        c.add_event_handler("message", lambda m, w=notes[name]: str(m["from"]) == slix.CFG["domain"] and w.add(m))
    gone = Waiter()
    bob.add_event_handler("muc::%s::presence" % room,
                          lambda p: p["type"] == "unavailable" and p.xml.find(NS_MUC_USER + "x/" + NS_MUC_USER + "destroy") is not None and gone.add(p))
    errors, down = Waiter(), Waiter()
    alice.add_event_handler("stream_error", errors.add)
    alice.add_event_handler("disconnected", down.add)
    emit("ready")

    for name in ("alice", "bob"):
        await notes[name].wait(lambda xs: xs, 15, "the announcement on " + name)
    emit("announced", **{name: {"subject": w.items[0]["subject"], "body": w.items[0]["body"]} for name, w in notes.items()})

    await gone.wait(lambda xs: xs, 15, "bob's destroy presence")
    d = gone.items[0].xml.find(NS_MUC_USER + "x/" + NS_MUC_USER + "destroy")
    r = d.find(NS_MUC_USER + "reason")
    emit("destroyed", sender=str(gone.items[0]["from"]), reason=r.text if r is not None else None)

    await errors.wait(lambda xs: xs, 15, "alice's stream error")
    await down.wait(lambda xs: xs, 10, "alice's disconnection")
    e = errors.items[0]
    emit("kicked", condition=e["condition"], text=e["text"])
    await disconnect(bob)


if __name__ == "__main__":
    slix.main({"adminsock": sc_adminsock}, "slix_adminsock.py")
