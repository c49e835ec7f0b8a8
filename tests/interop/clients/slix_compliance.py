#!/usr/bin/python3
"""slixmpp scenario for the server-side conversions of docs/compliance.md,
in slix.py's conventions (same config, JSON events on stdout, traffic on
stderr): XEP-0398 avatar conversion (PEP avatar -> vcard-temp PHOTO,
vCard PHOTO -> PEP avatar, the XEP-0153 hash the server puts into
presence) and XEP-0402 #compat bookmarks (XEP-0048 private XML <-> PEP).
alice and bob share presence (the Go test seeds both rosters).

Usage: /usr/bin/python3 slix_compliance.py SCENARIO 'JSON-CONFIG'
"""

import asyncio
import base64
import hashlib
from xml.etree import ElementTree as ET

from slixmpp.plugins.xep_0048 import Bookmarks

import slix
from slix import emit, jid_of, make_client, login, disconnect, Waiter, try_iq, options_form, PEP_PLUGINS

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")
GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
META = "urn:xmpp:avatar:metadata"
NS_UPDATE = "vcard-temp:x:update"


def sha1(b):
    return hashlib.sha1(b).hexdigest()


async def sc_avatar_bookmarks():
    plugins = PEP_PLUGINS + ["xep_0048"]
    alice = make_client("alice", resource="pc", plugins=plugins)
    bob = make_client("bob", resource="phone", plugins=plugins)
    bob["xep_0163"].add_interest([META])
    metas = Waiter()

    def on_publish(msg):
        items = msg["pubsub_event"]["items"]
        if items["node"] != META:
            return
        for it in items["substanzas"]:
            info = it.xml.find("{%s}metadata/{%s}info" % (META, META))
            metas.add({"id": it["id"], "info": dict(info.attrib) if info is not None else None, "from": str(msg["from"])})
    bob.add_event_handler("pubsub_publish", on_publish)
    photos = Waiter()

    def on_presence(p):
        if str(p["from"]) == jid_of("alice", "pc") and p["type"] not in ("unavailable", "error"):
            x = p.xml.find("{%s}x" % NS_UPDATE)
            ph = x.find("{%s}photo" % NS_UPDATE) if x is not None else None
            photos.add({"status": p["status"], "photo": None if ph is None else (ph.text or "")})
    bob.add_event_handler("presence", on_presence)

    emit("login", **(await login(alice)))
    emit("login", **(await login(bob)))
    await bob["xep_0115"].update_caps(broadcast=True)
    await asyncio.sleep(1.0)  # the server asks bob's caps and learns his +notify
    info = await alice["xep_0030"].get_info(jid=jid_of("alice"), timeout=5)
    emit("disco", features=sorted(info["disco_info"]["features"]))

    # XEP-0398 PEP -> vCard: alice publishes a PEP avatar, bob reads her vCard.
    await try_iq("publish_avatar_data", alice["xep_0084"].publish_avatar(PNG))
    await try_iq("publish_avatar_metadata", alice["xep_0084"].publish_avatar_metadata(items=[{"id": sha1(PNG), "type": "image/png", "bytes": len(PNG)}]))
    iq = await try_iq("bob_vcard", bob["xep_0054"].get_vcard(jid_of("alice"), local=False, cached=False, timeout=5))
    if iq is not None:
        photo = iq["vcard_temp"]["PHOTO"]
        emit("vcard_from_pep", type=photo["TYPE"], same=photo["BINVAL"] == PNG)

    # The server puts the hash into alice's presence (XEP-0398 §4).
    alice.send_presence(pstatus="with avatar")
    await photos.wait(lambda xs: any(x["status"] == "with avatar" for x in xs), 5, "alice's presence at bob")
    emit("presence_photo", **[x for x in photos.items if x["status"] == "with avatar"][-1], want=sha1(PNG))

    # XEP-0398 vCard -> PEP: alice sets a vCard with another photo; bob is
    # notified of the new metadata and fetches the data through XEP-0084.
    vcard = alice["xep_0054"].make_vcard()
    vcard["FN"] = "Alice"
    vcard["PHOTO"]["TYPE"] = "image/gif"
    vcard["PHOTO"]["BINVAL"] = GIF
    await try_iq("publish_vcard", alice["xep_0054"].publish_vcard(vcard, timeout=5))
    await metas.wait(lambda xs: any(m["id"] == sha1(GIF) for m in xs), 5, "bob's notification of the vCard photo")
    emit("pep_from_vcard", **[m for m in metas.items if m["id"] == sha1(GIF)][-1], want=sha1(GIF))
    iq = await try_iq("bob_avatar_data", bob["xep_0084"].retrieve_avatar(jid_of("alice"), sha1(GIF), timeout=5))
    if iq is not None:
        emit("avatar_data", same=iq["pubsub"]["items"]["item"]["avatar_data"]["value"] == GIF)

    # XEP-0402 #compat: a legacy client stores bookmarks in private XML...
    storage = Bookmarks()
    storage.add_conference("legacy@conference.localhost", "al", name="Legacy", autojoin=True)
    await try_iq("legacy_store", alice["xep_0048"].set_bookmarks(storage, method="xep_0049", timeout=5))
    iq = await try_iq("pep_bookmarks", alice["xep_0060"].get_items(None, "urn:xmpp:bookmarks:1", timeout=5))
    if iq is not None:
        emit("pep_items", ids=[it["id"] for it in iq["pubsub"]["items"]["substanzas"]])
    # ...a modern one adds one over PEP, and the legacy client sees both.
    conf = ET.Element("{urn:xmpp:bookmarks:1}conference", name="Modern", autojoin="true")
    ET.SubElement(conf, "{urn:xmpp:bookmarks:1}nick").text = "alice"
    await try_iq("publish_bookmark", alice["xep_0060"].publish(None, "urn:xmpp:bookmarks:1", id="modern@conference.localhost", payload=conf,
                 options=options_form(alice, persist_items="true", max_items="max", send_last_published_item="never", access_model="whitelist")))
    iq = await try_iq("legacy_get", alice["xep_0048"].get_bookmarks(method="xep_0049", timeout=5))
    if iq is not None:
        confs = iq.xml.findall(".//{storage:bookmarks}conference")
        emit("legacy_items", jids=sorted(c.get("jid") for c in confs))
    await disconnect(alice, bob)


SCENARIOS = {name[3:]: fn for name, fn in globals().items() if name.startswith("sc_")}



if __name__ == "__main__":
    slix.main(SCENARIOS, "slix_compliance.py")
