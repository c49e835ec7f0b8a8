#!/usr/bin/python3
"""slixmpp scenario for Client State Indication (XEP-0352), in slix.py's
conventions (same config, JSON events on stdout, traffic on stderr). A
separate file so it does not collide with scenarios added to slix.py.

alice and bob share presence (the Go test puts both in each other's
roster). bob says <inactive/>; alice changes her presence and sends chat
states; bob must get none of it while inactive. Round 1 ends with
<active/>: bob gets alice's latest presence and chat state only
(coalesced). Round 2 ends with a real message, which arrives at once,
right after the presence that was held (flushed in order).

Usage: /usr/bin/python3 slix_csi.py csi 'JSON-CONFIG'
"""

import asyncio
import time


import slix
from slix import emit, arg, jid_of, make_client, login, disconnect

NS_CHATSTATES = "http://jabber.org/protocol/chatstates"


async def sync(c):
    """A ping round trip: everything c sent before is handled by the
    server (one stream is processed in order)."""
    await c["xep_0199"].send_ping(slix.CFG["domain"], timeout=5)


def chatstate(msg):
    for child in msg.xml:
        if child.tag.startswith("{%s}" % NS_CHATSTATES):
            return child.tag.split("}", 1)[1]
    return None


async def sc_csi():
    alice = make_client("alice", resource="pc", plugins=["xep_0085"])
    bob = make_client("bob", resource="phone", plugins=["xep_0352", "xep_0085"])
    seen = []  # what bob got from alice: (kind, value, monotonic time)
    alice_jid = jid_of("alice", "pc")

    def on_presence(p):
        if str(p["from"]) == alice_jid and p["type"] not in ("error", "subscribe", "subscribed", "unsubscribe", "unsubscribed", "probe"):
            seen.append(("presence", p["status"] or p["type"], time.monotonic()))

    def on_message(m):
        if str(m["from"]) != alice_jid:
            return
        if m["body"]:
            seen.append(("message", m["body"], time.monotonic()))

    def on_chatstate(m):
        # xep_0085 raises "chatstate" for these, not "message".
        if str(m["from"]) == alice_jid and not m["body"] and chatstate(m):
            seen.append(("chatstate", chatstate(m), time.monotonic()))

    bob.add_event_handler("presence", on_presence)
    bob.add_event_handler("message", on_message)
    bob.add_event_handler("chatstate", on_chatstate)
    emit("login", **(await login(bob)))
    emit("csi", enabled=bool(bob["xep_0352"].enabled), features=sorted(bob.features))
    emit("login", **(await login(alice)))
    await asyncio.sleep(0.3)  # alice's initial presence reaches bob
    hold = arg("hold", 1.5)

    def since(i):
        return [{"kind": k, "value": v} for k, v, _ in seen[i:]]

    async def wait_for(pred, timeout):
        deadline = time.monotonic() + timeout
        while not pred() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return pred()

    async def inactive_round(n, statuses, states):
        bob["xep_0352"].send_inactive()
        await sync(bob)
        mark = len(seen)
        for i, st in enumerate(statuses):
            alice.send_presence(pshow=["away", "dnd", "xa"][i % 3], pstatus=st)
        for s in states:
            m = alice.make_message(mto=jid_of("bob"), mtype="chat")
            m["chat_state"] = s
            m.send()
        await sync(alice)
        await asyncio.sleep(hold)  # bounded wait: nothing may arrive
        emit("while_inactive", round=n, got=since(mark), waited=hold)
        return len(seen)

    # Round 1: <active/> flushes the latest presence and chat state.
    mark = await inactive_round(1, ["r1 status 1", "r1 status 2", "r1 status 3"], ["composing", "paused"])
    bob["xep_0352"].send_active()
    await wait_for(lambda: any(v == "r1 status 3" for _, v, _ in seen[mark:]), 5)
    await asyncio.sleep(0.5)  # anything else flushed would be here by now
    emit("after_active", got=since(mark))

    # Round 2: a real message flushes at once.
    mark = await inactive_round(2, ["r2 status 1", "r2 status 2"], ["composing"])
    sent = time.monotonic()
    alice.send_message(mto=jid_of("bob"), mbody="wake up", mtype="chat")
    ok = await wait_for(lambda: any(k == "message" for k, _, _ in seen[mark:]), 5)
    latency = next((t - sent for k, _, t in seen[mark:] if k == "message"), None)
    await asyncio.sleep(0.3)
    emit("after_message", got=since(mark), delivered=ok, latency=latency)
    bob["xep_0352"].send_active()
    await disconnect(alice, bob)


SCENARIOS = {name[3:]: fn for name, fn in globals().items() if name.startswith("sc_")}



if __name__ == "__main__":
    slix.main(SCENARIOS, "slix_csi.py")
