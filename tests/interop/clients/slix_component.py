#!/usr/bin/python3
"""slixmpp as an XEP-0114 external component (slixmpp.ComponentXMPP)
against bluetick, in slix.py's conventions (same config, JSON events on
stdout, traffic on stderr).

Scenario `echo`: the component connects to args.port as args.domain with
args.secret and echoes every message back; a slixmpp user (alice) sends
one message to echo@<domain> and waits for the echo. Scenario `badsecret`:
the component connects with a wrong secret and reports what happened.

Usage: /usr/bin/python3 slix_component.py SCENARIO 'JSON-CONFIG'
"""

import asyncio

from slixmpp import ComponentXMPP

import slix
from slix import emit, arg, make_client, login, disconnect, bodies_waiter


def make_component(secret):
    comp = ComponentXMPP(arg("domain"), secret, "127.0.0.1", arg("port"))
    comp.connected_ev = asyncio.Event()
    comp.failed = []
    comp.add_event_handler("session_start", lambda _: comp.connected_ev.set())
    comp.add_event_handler("stream_error", lambda e: comp.failed.append(str(e["condition"])))
    comp.add_event_handler("disconnected", lambda _: comp.failed.append("disconnected"))
    return comp


async def sc_echo():
    comp = make_component(arg("secret"))

    def echo(msg):
        emit("component_got", **{"from": str(msg["from"]), "to": str(msg["to"]), "body": msg["body"]})
        msg.reply("echo: " + msg["body"]).send()
    comp.add_event_handler("message", echo)
    comp.connect()
    await asyncio.wait_for(comp.connected_ev.wait(), 10)
    emit("component_ready", domain=arg("domain"))

    alice = make_client("alice")
    got = bodies_waiter(alice)
    emit("login", **(await login(alice)))
    to = "echo@" + arg("domain")
    alice.send_message(mto=to, mbody="hello component", mtype="chat")
    items = await got.wait(lambda xs: len(xs) >= 1, 10, "the echo")
    m = items[0]
    emit("user_got", **{"from": str(m["from"]), "body": m["body"]})
    await disconnect(alice)
    comp.disconnect()


async def sc_badsecret():
    comp = make_component("not the secret at all")
    comp.connect()
    for _ in range(50):
        if comp.failed or comp.connected_ev.is_set():
            break
        await asyncio.sleep(0.1)
    emit("badsecret", connected=comp.connected_ev.is_set(), failed=comp.failed)
    comp.disconnect()


SCENARIOS = {name[3:]: fn for name, fn in globals().items() if name.startswith("sc_")}



if __name__ == "__main__":
    slix.main(SCENARIOS, "slix_component.py")
