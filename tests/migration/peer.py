#!/usr/bin/python3
"""slixmpp scenarios for the migration test (tests/migration).

Usage: /usr/bin/python3 peer.py SCENARIO 'JSON-CONFIG'

seed  (on Prosody or ejabberd): alice puts bob (group Friends, name Bobby)
      and carol@elsewhere.example in her roster, asks bob for his presence
      subscription, sets her vCard (vcard-temp) and a private XML element,
      blocks spammer@evil.example if "block" (XEP-0191),
      and sends bob, who never logs in, a chat message: it waits offline.
login: alice logs in with "mech" and out.
check (on Bluetick, after the import): alice and bob log in with their
      original passwords and the mechanism given in "mech"; alice reads her
      roster, her vcard-temp, her vCard4 (XEP-0292 PEP node), her
      private XML and her blocklist; bob receives alice's pending subscription request and,
      unless "offline" is false, the offline message.

The config holds host, port, domain, users ({name: password}), mech, tls
(true: STARTTLS required, any certificate). Facts are printed as JSON lines
on stdout; the Go test asserts on them. Bounded by "timeout" seconds (20).
"""

import asyncio
import json
import ssl
import sys

import slixmpp
from slixmpp.xmlstream import ET

CFG = {}
NS_PRIVATE_TEST = "urn:example:migration-test"
OFFLINE_BODY = "hello bob, from the old server"


def emit(event, **kw):
    print(json.dumps(dict(event=event, **kw), default=str), flush=True)


def client(user):
    kw = {}
    if CFG.get("mech"):
        kw["sasl_mech"] = CFG["mech"]
    c = slixmpp.ClientXMPP("%s@%s/migr" % (user, CFG["domain"]), CFG["users"][user], **kw)
    for p in ("xep_0030", "xep_0054", "xep_0049", "xep_0191", "xep_0203", "xep_0199"):
        c.register_plugin(p)
    if CFG.get("tls"):
        c.ssl_context.check_hostname = False
        c.ssl_context.verify_mode = ssl.CERT_NONE
        # Debian's slixmpp 1.8.3 takes tls-unique as its channel binding on
        # TLS 1.3, where it is undefined, and then sends the GS2 flag "y",
        # which a server offering -PLUS must refuse (RFC 5802 §6). Without
        # the binding it sends "n", as a correct client does
        # (tests/interop/clients/slix.py explains it at length).
        fm = c["feature_mechanisms"]
        orig = fm.sasl_callback

        def creds(required, optional):
            r = orig(required, optional)
            r.pop("channel_binding", None)
            return r
        fm.sasl_callback = creds
    c.enable_starttls = bool(CFG.get("tls"))
    c.enable_direct_tls = False
    c.enable_plaintext = not CFG.get("tls")
    c.mech_used = None

    def on_auth(_):
        c.mech_used = c["feature_mechanisms"].mech.name if c["feature_mechanisms"].mech else None
    c.add_event_handler("auth_success", on_auth)
    return c


async def connect(c):
    ok = asyncio.get_running_loop().create_future()
    c.add_event_handler("session_start", lambda _: ok.done() or ok.set_result(True))
    c.add_event_handler("failed_auth", lambda _: ok.done() or ok.set_result(False))
    c.connect((CFG["host"], CFG["port"]))
    if not await ok:
        emit("auth_failed", user=str(c.boundjid.user))
        raise SystemExit(4)
    return c


async def seed():
    alice = await connect(client("alice"))
    dom = CFG["domain"]
    await alice.update_roster("bob@" + dom, name="Bobby", groups=["Friends"])
    await alice.update_roster("carol@elsewhere.example", name="Carol", groups=["Work", "Friends"])
    alice.send_presence_subscription(pto="bob@" + dom)
    vc = alice["xep_0054"].make_vcard()
    vc["FN"] = "Alice Liddell"
    vc["NICKNAME"] = "alice"
    await alice["xep_0054"].publish_vcard(vc)
    el = ET.fromstring("<secret xmlns='%s'>rabbit hole</secret>" % NS_PRIVATE_TEST)
    await alice["xep_0049"].store(el)
    if CFG.get("block"):
        await alice["xep_0191"].block(["spammer@evil.example"])
    alice.send_message(mto="bob@" + dom, mbody=OFFLINE_BODY, mtype="chat")
    # A ping round trip: everything above has been handled in order.
    await alice["xep_0199"].ping(jid=dom, timeout=10)
    emit("seeded", mech=alice.mech_used)
    alice.disconnect()


async def check():
    alice = await connect(client("alice"))
    emit("login", user="alice", mech=alice.mech_used)
    iq = alice.make_iq_get(queryxmlns="jabber:iq:roster")
    r = await iq.send()
    for it in r.xml.iter("{jabber:iq:roster}item"):
        emit("roster", jid=it.get("jid"), name=it.get("name"), subscription=it.get("subscription"),
             ask=it.get("ask"), groups=sorted(g.text for g in it.iter("{jabber:iq:roster}group")))
    iq = alice.make_iq_get(queryxmlns="vcard-temp", ito=None)
    iq.xml.remove(iq.xml.find("{vcard-temp}query"))
    iq.xml.append(ET.fromstring("<vCard xmlns='vcard-temp'/>"))
    r = await iq.send()
    fn = r.xml.find("{vcard-temp}vCard/{vcard-temp}FN")
    emit("vcard", fn=fn.text if fn is not None else None)
    iq = alice.make_iq_get(ito=alice.boundjid.bare)
    iq.xml.append(ET.fromstring("<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:vcard4'/></pubsub>"))
    try:
        r = await iq.send()
        for fn in r.xml.iter("{urn:ietf:params:xml:ns:vcard-4.0}fn"):
            t = fn.find("{urn:ietf:params:xml:ns:vcard-4.0}text")
            emit("vcard4", fn=t.text if t is not None else None)
    except Exception as e:  # noqa: absent node
        emit("vcard4_absent", error=str(e)[:200])
    iq = alice.make_iq_get(queryxmlns="jabber:iq:private")
    iq.xml.find("{jabber:iq:private}query").append(ET.fromstring("<secret xmlns='%s'/>" % NS_PRIVATE_TEST))
    r = await iq.send()
    sec = r.xml.find("{jabber:iq:private}query/{%s}secret" % NS_PRIVATE_TEST)
    emit("private", text=sec.text if sec is not None else None)
    iq = await alice["xep_0191"].get_blocked()
    emit("blocklist", jids=sorted(str(j) for j in iq["blocklist"]["items"]))
    alice.disconnect()

    bob = client("bob")
    got = asyncio.get_running_loop().create_future()

    def on_msg(m):
        if m["body"] and not got.done():
            got.set_result(m)
    sub = asyncio.get_running_loop().create_future()
    bob.add_event_handler("message", on_msg)
    bob.add_event_handler("presence_subscribe", lambda p: sub.done() or sub.set_result(p))
    await connect(bob)
    emit("login", user="bob", mech=bob.mech_used)
    bob.send_presence()
    p = await sub
    if CFG.get("offline", True):
        m = await got
        emit("offline", body=m["body"], frm=str(m["from"]), delayed=bool(m["delay"]["stamp"]))
    emit("subscribe_request", frm=str(p["from"]))
    bob.disconnect()


async def login():
    c = await connect(client("alice"))
    emit("login", user="alice", mech=c.mech_used)
    c.disconnect()


def main():
    global CFG
    CFG = json.loads(sys.argv[2])
    scen = {"seed": seed, "check": check, "login": login}[sys.argv[1]]

    async def run():
        try:
            await asyncio.wait_for(scen(), CFG.get("timeout", 20))
        except asyncio.TimeoutError:
            emit("timeout")
            return 3
        except SystemExit as e:
            return e.code
        await asyncio.sleep(0.2)
        return 0
    sys.exit(asyncio.run(run()))


if __name__ == "__main__":
    main()
