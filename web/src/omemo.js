// End-to-end encryption: OMEMO (XEP-0384 version 0.3, namespace
// eu.siacs.conversations.axolotl, as Conversations, Gajim, Dino, Monal and
// profanity speak it), on by default (docs/e2e.md).
//
// What is here is the XMPP side and the policy; the keys, sessions and
// crypto are omemo/engine.js, loaded with import() when the session
// starts so that the Signal library is not part of the first load.
//   - publish: this device's id in the account's device list (PEP node
//     ...axolotl.devicelist) and its bundle (...axolotl.bundles:ID), both
//     open to anyone (a group member who is no contact must read them);
//   - learn: contacts' device lists from PEP notifications (+notify in
//     our caps) or fetched when a chat needs them;
//   - send (seal hook): the body encrypted for every device of the peer
//     (or of every group member) and every other device of our own, except
//     those distrusted; the clear body is replaced by a fallback text, and
//     what would leak the content (OOB links, file metadata, thumbnails)
//     is removed;
//   - receive (unseal hook): decrypted in place before the rest of the app
//     reads the stanza; what cannot be decrypted is shown as such, with a
//     way to rebuild the session and ask the sender's device to send again.
import { xml } from "@xmpp/client";
import * as core from "./core.js";
import * as store from "./db.js";
import { e2e } from "./e2e.js";
import * as groups from "./groups.js";
import { copyOf } from "./carbons.js";

export const NS = "eu.siacs.conversations.axolotl";
const LIST = NS + ".devicelist";
const BUNDLES = NS + ".bundles:";
const PUBSUB = "http://jabber.org/protocol/pubsub";
const EVENT = "http://jabber.org/protocol/pubsub#event";
const DATA = "jabber:x:data";
const RESEND = "urn:bluetick:omemo:resend:0"; // "send that message again" (Bluetick Web only)
const FALLBACK = "I sent you an OMEMO encrypted message but your client doesn't seem to support that.";
// Elements that carry content beside the body; OMEMO 0.3 encrypts only the body.
const LEAKS = [["x", "jabber:x:oob"], ["file-sharing", "urn:xmpp:sfs:0"], ["reference", "urn:xmpp:reference:0"], ["thumbnail", "urn:xmpp:thumbs:1"]];
const LIST_TTL = 10 * 60 * 1000; // a device list fetched on demand is asked again after this

const { state } = core;
const bare = (j) => String(j).split("/")[0].toLowerCase();

let engine = null;
const E = () => (engine ??= import("./omemo/engine.js"));

// What the UI shows (ui/omemo.js).
export const ui = {
  deviceId: 0, // this device, once made
  fingerprint: "",
  ready: false, // published; messages can be encrypted
  error: "", // why encryption is not available
  lists: new Map(), // bare JID -> [device ids] (in memory; persisted in the engine's store)
  version: 0, // counts changes of devices and trust (the UI reloads them)
};

// ---- the device lists -------------------------------------------------------------

const fetched = new Map(); // jid -> time of the last fetch

function parseList(items) {
  const list = items?.getChildren("item").at(-1)?.getChild("list", NS);
  return list ? [...new Set(list.getChildren("device").map((d) => Number(d.attrs.id)).filter((n) => n > 0 && n < 2 ** 31))] : [];
}

async function iq(c, type, to, child, timeout = 15000) {
  return c.iqCaller.request(xml("iq", to ? { type, to } : { type }, child), timeout);
}

const notFound = (e) => e?.condition === "item-not-found" || e?.name === "StanzaError" && /item-not-found/.test(e?.condition ?? "");

// deviceList returns the known devices of jid, fetched when not known or
// stale. An account with no list has no OMEMO: [].
async function deviceList(c, jid, fresh = false) {
  if (!fresh && ui.lists.has(jid) && Date.now() - (fetched.get(jid) || 0) < LIST_TTL) return ui.lists.get(jid);
  let ids = [];
  try {
    const res = await iq(c, "get", jid === state.account.jid ? undefined : jid, xml("pubsub", { xmlns: PUBSUB }, xml("items", { node: LIST })));
    ids = parseList(res.getChild("pubsub", PUBSUB)?.getChild("items"));
  } catch (e) {
    if (!notFound(e)) throw e;
  }
  await setList(jid, ids);
  return ids;
}

async function setList(jid, ids) {
  const eng = await E();
  const old = ui.lists.get(jid) ?? (await eng.getList(jid))?.ids ?? null;
  ui.lists.set(jid, ids);
  fetched.set(jid, Date.now());
  if (old && old.length === ids.length && old.every((x, i) => x === ids[i])) return;
  await eng.putList({ jid, ids, ts: Date.now() });
  // Devices that left the list are kept (their fingerprints stay in the
  // UI as "removed") but no longer encrypted for.
  for (const d of await eng.devicesOf(jid)) {
    const active = ids.includes(d.id);
    if (d.active !== active) await eng.putDevice({ ...d, active });
  }
  for (const id of ids) {
    if (jid === state.account.jid && id === ui.deviceId) continue;
    const d = await eng.getDevice(`${jid}.${id}`);
    // A device never seen before: new. Under blind trust it is used at
    // once; if this contact has a verified device, it is not, and the
    // chat says so until the user decides (verify or trust).
    if (!d) await eng.putDevice({ addr: `${jid}.${id}`, jid, id, key: null, trust: (await hasVerified(jid)) ? "untrusted" : "blind", active: true, seen: Date.now() });
  }
  ui.version++;
  core.changed();
}

async function hasVerified(jid) {
  return (await (await E()).devicesOf(jid)).some((d) => d.trust === "verified");
}

function publishOptions() {
  return xml("publish-options", {},
    xml("x", { xmlns: DATA, type: "submit" },
      xml("field", { var: "FORM_TYPE", type: "hidden" }, xml("value", {}, PUBSUB + "#publish-options")),
      xml("field", { var: "pubsub#access_model" }, xml("value", {}, "open"))));
}

async function publishList(c, ids) {
  await iq(c, "set", undefined, xml("pubsub", { xmlns: PUBSUB },
    xml("publish", { node: LIST }, xml("item", { id: "current" }, xml("list", { xmlns: NS }, ...ids.map((id) => xml("device", { id: String(id) }))))),
    publishOptions()));
  await setList(state.account.jid, ids);
}

async function publishBundle(c) {
  const eng = await E();
  const b = await eng.bundle();
  await iq(c, "set", undefined, xml("pubsub", { xmlns: PUBSUB },
    xml("publish", { node: BUNDLES + ui.deviceId }, xml("item", { id: "current" },
      xml("bundle", { xmlns: NS },
        xml("signedPreKeyPublic", { signedPreKeyId: String(b.signedPreKey.id) }, b.signedPreKey.key),
        xml("signedPreKeySignature", {}, b.signedPreKey.signature),
        xml("identityKey", {}, b.identityKey),
        xml("prekeys", {}, ...b.preKeys.map((p) => xml("preKeyPublic", { preKeyId: String(p.id) }, p.key)))))),
    publishOptions()));
  await eng.forgetUsedPreKeys();
}

async function fetchBundle(c, jid, id) {
  const res = await iq(c, "get", jid === state.account.jid ? undefined : jid,
    xml("pubsub", { xmlns: PUBSUB }, xml("items", { node: BUNDLES + id, max_items: "1" })));
  const b = res.getChild("pubsub", PUBSUB)?.getChild("items")?.getChildren("item").at(-1)?.getChild("bundle", NS);
  const spk = b?.getChild("signedPreKeyPublic");
  if (!b || !spk) throw new Error(`device ${id} of ${jid} has no bundle`);
  return {
    identityKey: b.getChildText("identityKey"),
    signedPreKey: { id: spk.attrs.signedPreKeyId, key: spk.text(), signature: b.getChildText("signedPreKeySignature") },
    preKeys: (b.getChild("prekeys")?.getChildren("preKeyPublic") ?? []).map((p) => ({ id: p.attrs.preKeyId, key: p.text() })),
  };
}

// ---- this device: made and published when a session starts ----------------------

let republish = null; // a timer: the bundle again after prekeys were used

// deviceId makes (or reads) this device's keys, once: received messages
// wait for it too (an archive read at sign-in can come before start()).
let device = null;
function deviceId() {
  device ??= E().then(async (eng) => {
    const id = await eng.init(state.account.jid);
    ui.fingerprint = await eng.ownFingerprint();
    ui.deviceId = id;
    return id;
  }).catch((e) => {
    device = null;
    throw e;
  });
  return device;
}

async function start(c) {
  try {
    await deviceId();
    const mine = await deviceList(c, state.account.jid, true);
    await (await E()).rotateSignedPreKey();
    await publishBundle(c);
    if (!mine.includes(ui.deviceId)) await publishList(c, [...mine, ui.deviceId]);
    ui.ready = true;
    ui.error = "";
    learnOpen();
    core.changed();
    core.flush(); // messages that waited for the keys
  } catch (e) {
    // Messages wait (🕐) meanwhile; tried again shortly, and on every new session.
    ui.error = `Encryption is not available yet: ${e?.text ?? e?.message ?? e}`;
    console.warn("omemo:", e);
    core.changed();
    setTimeout(() => c === core.connection() && !ui.ready && start(c), 15000);
  }
}

function bundleSoon(c) {
  clearTimeout(republish);
  republish = setTimeout(async () => {
    try {
      if (await (await E()).refill()) await publishBundle(c);
    } catch (e) {
      console.info("omemo bundle:", e?.message ?? e);
    }
  }, 2000);
}

core.hooks.online.push((c) => {
  kinds.clear();
  start(c);
});

core.hooks.client.push((c) => {
  c.on("stanza", (st) => {
    if (c !== core.client_() || !st.is("message")) return;
    const items = st.getChild("event", EVENT)?.getChild("items");
    if (items?.attrs.node !== LIST) return;
    onList(c, bare(st.attrs.from || state.account.jid), parseList(items)).catch((e) => console.info("omemo list:", e?.message ?? e));
  });
});

async function onList(c, jid, ids) {
  await setList(jid, ids);
  // Our own list published by another device without us: put us back.
  if (jid === state.account.jid && ui.ready && !ids.includes(ui.deviceId)) await publishList(c, [...ids, ui.deviceId]);
}

// ---- which chats are encrypted ---------------------------------------------------

// wants says whether messages to chat are encrypted: a 1:1 chat whose
// peer has OMEMO devices, or a group that is members-only and
// non-anonymous (the WhatsApp kind; the app makes them so), unless the
// user turned encryption off for that chat.
function wants(chat) {
  const row = state.chats.get(chat);
  if (row?.plain) return false;
  if (row?.group) return groupKind(chat);
  return (ui.lists.get(chat)?.length ?? 0) > 0;
}
// groupKind: a room of the groups service is the WhatsApp kind when its
// disco#info says members-only and non-anonymous (asked once a session).
const kinds = new Map(); // room -> true | false
const groupKind = (jid) => kinds.get(jid) !== false;
async function roomKind(c, jid) {
  if (kinds.has(jid)) return kinds.get(jid);
  const res = await iq(c, "get", jid, xml("query", { xmlns: "http://jabber.org/protocol/disco#info" }));
  const f = new Set(res.getChild("query")?.getChildren("feature").map((x) => x.attrs.var) ?? []);
  const ok = f.has("muc_membersonly") && f.has("muc_nonanonymous");
  kinds.set(jid, ok);
  return ok;
}
e2e.active = (chat) => ui.ready && wants(chat);

// recipients: the peer, or every member of a group, and ourselves.
async function recipients(c, chat) {
  if (!state.chats.get(chat)?.group) return [chat, state.account.jid];
  // The member list is read again for each message: who is in the group
  // decides who can read it (removed members must not).
  const r = groups.live.get(chat);
  let members = (await groups.loadMembers(chat).catch(() => null))?.map((m) => m.jid);
  members ??= r?.members?.map((m) => m.jid) ?? [];
  for (const o of r?.occupants?.values() ?? []) if (o.jid) members.push(o.jid);
  return [...new Set([...members.filter(Boolean), state.account.jid])];
}

// ---- sending -------------------------------------------------------------------

// encryptFor makes the <encrypted/> element of text for every trusted
// device of jids (sessions built from bundles where there are none yet).
// It returns the element, the devices it is for (to) and what was left out (devices without a bundle,
// distrusted ones).
export async function encryptFor(c, jids, text) {
  const eng = await E();
  const targets = [];
  const skipped = [];
  for (const jid of jids) {
    const ids = await deviceList(c, jid);
    for (const id of ids) {
      if (jid === state.account.jid && id === ui.deviceId) continue;
      const d = await eng.getDevice(`${jid}.${id}`);
      if (d?.trust === "untrusted") {
        skipped.push({ jid, id, why: "not trusted" });
        continue;
      }
      targets.push({ jid, id });
    }
  }
  // Sessions: built in parallel, a device whose bundle is missing or bad is left out.
  await Promise.all(targets.map(async (t) => {
    if (await eng.hasSession(t.jid, t.id)) return;
    try {
      await eng.startSession(t.jid, t.id, await fetchBundle(c, t.jid, t.id));
    } catch (e) {
      t.bad = e?.message ?? String(e);
    }
  }));
  const ok = targets.filter((t) => !t.bad);
  for (const t of targets) if (t.bad) skipped.push({ jid: t.jid, id: t.id, why: t.bad });
  const s = await eng.seal(text);
  const keys = await Promise.all(ok.map(async (t) => {
    const k = await eng.encryptFor(t.jid, t.id, s.key);
    return xml("key", k.prekey ? { rid: String(t.id), prekey: "true" } : { rid: String(t.id) }, k.data);
  }));
  const el = xml("encrypted", { xmlns: NS },
    xml("header", { sid: String(ui.deviceId) }, ...keys, xml("iv", {}, eng.b64(s.iv))),
    ...(s.payload ? [xml("payload", {}, eng.b64(s.payload))] : []));
  return { el, to: ok, skipped };
}

core.hooks.seal.push(async (m, st) => {
  const body = st.getChild("body");
  const row = state.chats.get(m.chat);
  // A retraction's body is only a fallback text; nothing to hide.
  if (!body || row?.plain || st.getChild("retract", "urn:xmpp:message-retract:1")) return st;
  const c = core.connection();
  if (!c) return null;
  if (!ui.ready) return null; // waits for the keys (start() flushes again)
  const group = Boolean(row?.group);
  // A peer without OMEMO (no device list, asked again now) gets the
  // message in the clear, as Conversations does; the chat's lock says so.
  if (group ? !(await roomKind(c, m.chat)) : (await deviceList(c, m.chat)).length === 0 && (await deviceList(c, m.chat, true)).length === 0) return st;
  const peers = await recipients(c, m.chat);
  const { el, to, skipped } = await encryptFor(c, peers, body.text());
  if (!group && !to.some((t) => t.jid === m.chat)) {
    throw new Error(`none of ${m.chat}'s devices can be encrypted for (${skipped.map((s) => s.why).join("; ")})`);
  }
  body.children = [FALLBACK];
  st.children = st.children.filter((k) => typeof k === "string" || !LEAKS.some(([n, ns]) => k.name === n && k.attrs.xmlns === ns));
  st.children.unshift(el);
  st.append(xml("encryption", { xmlns: "urn:xmpp:eme:0", namespace: NS, name: "OMEMO" }));
  st.append(xml("store", { xmlns: "urn:xmpp:hints" }));
  if (!m.action) {
    const sm = await store.getMessage(m.key);
    if (sm && !sm.e2e) {
      sm.e2e = { ok: true, devices: to.length, skipped: skipped.length };
      await store.putMessage(sm);
      core.showUpdated(sm);
      core.changed();
    }
  }
  return st;
});

// ---- receiving -------------------------------------------------------------------

let chain = Promise.resolve(); // decryption runs one stanza at a time (ratchets)
e2e.settled = () => chain;

// The message element that may be encrypted: the stanza itself, the one
// inside an archive result, or our own carbon copy's.
function inner(st) {
  const fwd = st.getChild("result", "urn:xmpp:mam:2")?.getChild("forwarded", "urn:xmpp:forward:0");
  return fwd?.getChild("message") ?? copyOf(st)?.msg ?? st;
}

core.hooks.unseal.push(async (c, st) => {
  if (!st.is("message")) return false;
  const msg = inner(st);
  const enc = msg.getChild("encrypted", NS);
  if (!enc) return false;
  const job = chain.then(() => open(c, msg, enc)).catch((e) => console.warn("omemo:", e));
  chain = job;
  // An archive page's messages are read after its end (they wait for
  // settled()); a live message or a carbon copy once decrypted.
  if (st.getChild("result", "urn:xmpp:mam:2")) return false;
  const consumed = await job;
  return msg === st && consumed === true;
});

// sender is the bare JID of the account that sent msg: the real JID of a
// group member (non-anonymous rooms), else the from address.
function sender(msg) {
  const from = msg.attrs.from || "";
  if (msg.attrs.type !== "groupchat") return bare(from) || state.account.jid;
  const real = msg.getChild("x", "http://jabber.org/protocol/muc#user")?.getChild("item")?.attrs.jid;
  if (real) return bare(real);
  const nick = from.slice(from.indexOf("/") + 1);
  const o = groups.live.get(bare(from))?.occupants.get(nick);
  if (o?.jid) return o.jid;
  const chat = state.chats.get(bare(from));
  if (nick === chat?.nick) return state.account.jid;
  return "";
}

function setBody(msg, text) {
  let b = msg.getChild("body");
  if (!b) msg.append((b = xml("body")));
  b.children = [text];
}

// open decrypts msg in place; true when it was only keys (consumed).
async function open(c, msg, enc) {
  const eng = await E();
  const header = enc.getChild("header");
  const sid = Number(header?.attrs.sid);
  let jid = sender(msg);
  if (!jid && sid) jid = (await eng.findDevice(sid))?.jid ?? "";
  const info = { jid, device: sid };
  const me = await deviceId().catch(() => 0);
  if (jid === state.account.jid && sid === me) {
    // Our own message, back from a group: never encrypted for this device.
    msg.e2e = { ok: true, ...info, own: true };
    return false;
  }
  const fail = (why) => {
    msg.e2e = { ok: false, why, ...info };
    setBody(msg, "🔒 This message could not be decrypted");
    return false;
  };
  if (!me) return fail("this device has no keys yet");
  const key = header?.getChildren("key").find((k) => Number(k.attrs.rid) === me);
  if (!key) return fail("it was not encrypted for this device");
  if (!jid || !sid) return fail("the sender is unknown");
  const prekey = ["true", "1"].includes(key.attrs.prekey);
  let material;
  try {
    material = await eng.decryptFrom(jid, sid, key.text(), prekey);
  } catch (e) {
    console.info("omemo: refused a message from", jid, sid, e?.message ?? e);
    return fail(/counter was repeated|Duplicate|not filled|Message key not found/i.test(e?.message ?? "") ? "it was already received (a replay)" : "it could not be verified (a broken session, or a forged message)");
  }
  await eng.noteDevice(jid, sid);
  if (prekey) bundleSoon(c);
  const payload = enc.getChildText("payload");
  if (payload === null) {
    // Keys only: a new session, maybe with a request to send one again.
    const again = msg.getChild("resend", RESEND)?.attrs.id;
    if (again) resend(c, jid, sid, bare(msg.attrs.from || ""), again).catch((e) => console.info("omemo resend:", e?.message ?? e));
    return true;
  }
  let text;
  try {
    text = await eng.open(material, eng.unb64(header.getChildText("iv")), eng.unb64(payload));
  } catch {
    return fail("its content does not match its key (a forged message)");
  }
  setBody(msg, text);
  const d = await eng.getDevice(`${jid}.${sid}`);
  msg.e2e = { ok: true, ...info, trust: d?.trust || "blind" };
  return await repaired(msg);
}

// repaired replaces a message shown as unreadable by its copy sent again
// (after a session rebuild); true when it did.
async function repaired(msg) {
  const id = msg.getChild("origin-id", "urn:xmpp:sid:0")?.attrs.id || msg.attrs.id;
  const chat = bare(msg.attrs.from || "");
  if (!id || msg.attrs.type === "groupchat") return false;
  const m = await store.getMessage(store.msgKey(chat, "in", id));
  if (!m || m.e2e?.ok !== false) return false;
  const body = msg.getChildText("body");
  const fixed = { ...m, body, e2e: msg.e2e };
  await store.putMessage(fixed);
  core.showUpdated(fixed);
  core.changed();
  return true;
}

// ---- recovery --------------------------------------------------------------------

// repair rebuilds the session with the device that sent m (which could
// not be decrypted) and asks it to send m again: a key-transport message
// on a new session (XEP-0384 §4.6), with the message's id.
export async function repair(m) {
  const c = core.connection();
  if (!c) throw new Error("You are offline.");
  const eng = await E();
  const { jid, device } = m.e2e ?? {};
  if (!jid || !device) throw new Error("The sender's device is unknown.");
  await eng.endSession(jid, device);
  await eng.startSession(jid, device, await fetchBundle(c, jid, device));
  const s = await eng.seal("");
  const k = await eng.encryptFor(jid, device, s.key);
  const to = m.chat.includes("@" + groups.service()) ? jid : m.chat;
  await c.send(xml("message", { to, type: "chat", id: crypto.randomUUID() },
    xml("encrypted", { xmlns: NS }, xml("header", { sid: String(ui.deviceId) },
      xml("key", k.prekey ? { rid: String(device), prekey: "true" } : { rid: String(device) }, k.data),
      xml("iv", {}, eng.b64(s.iv)))),
    xml("resend", { xmlns: RESEND, id: m.id }),
    xml("store", { xmlns: "urn:xmpp:hints" })));
}

// resend answers a repair: the message is encrypted again, for that one
// device, on the new session.
async function resend(c, jid, device, chat, id) {
  const m = await store.getMessage(store.msgKey(chat, "out", id));
  // Only what this device encrypted itself (seal counted its devices): not
  // a copy of another device's message, whose text it may not have.
  if (!m || m.dir !== "out" || m.retracted || chat !== jid || m.e2e?.devices === undefined) return;
  const eng = await E();
  if ((await eng.getDevice(`${jid}.${device}`))?.trust === "untrusted") return; // a device the user has not accepted
  const s = await eng.seal(m.body);
  const k = await eng.encryptFor(jid, device, s.key);
  await c.send(xml("message", { to: chat, type: "chat", id: m.id },
    xml("encrypted", { xmlns: NS },
      xml("header", { sid: String(ui.deviceId) },
        xml("key", k.prekey ? { rid: String(device), prekey: "true" } : { rid: String(device) }, k.data),
        xml("iv", {}, eng.b64(s.iv))),
      xml("payload", {}, eng.b64(s.payload))),
    xml("body", {}, FALLBACK),
    xml("origin-id", { xmlns: "urn:xmpp:sid:0", id: m.id }),
    xml("encryption", { xmlns: "urn:xmpp:eme:0", namespace: NS, name: "OMEMO" }),
    xml("store", { xmlns: "urn:xmpp:hints" })));
}

// ---- devices and trust (the UI's) -----------------------------------------------

// devices lists what is known of jid's devices, with fingerprints (the
// bundle is fetched for those never met, to show their keys).
export async function devices(jid) {
  const eng = await E();
  const c = core.connection();
  if (c) await deviceList(c, jid, true).catch(() => {});
  const out = [];
  for (const d of await eng.devicesOf(jid)) {
    let key = d.key;
    if (!key && c && d.active) {
      try {
        const b = await fetchBundle(c, jid, d.id);
        key = eng.unb64(b.identityKey).buffer;
        await eng.putDevice({ ...(await eng.getDevice(d.addr)), key });
      } catch {
        // no bundle: shown without a fingerprint
      }
    }
    out.push({ ...d, key, fingerprint: key ? eng.fingerprint(key) : "" });
  }
  return out.sort((a, b) => b.active - a.active || a.id - b.id);
}

export async function setTrust(jid, id, trust) {
  const eng = await E();
  await eng.setTrust(jid, id, trust);
  ui.version++;
  core.changed();
  core.flush();
}

// removeDevice takes one of our other devices out of our device list (it
// gets no more messages) and deletes its bundle.
export async function removeDevice(id) {
  const c = core.connection();
  if (!c) throw new Error("You are offline.");
  if (id === ui.deviceId) throw new Error("This is the device you are using.");
  const ids = (await deviceList(c, state.account.jid, true)).filter((x) => x !== id);
  await publishList(c, ids);
  await iq(c, "set", undefined, xml("pubsub", { xmlns: PUBSUB + "#owner" }, xml("delete", { node: BUNDLES + id }))).catch(() => {});
}

// warnings: devices of a contact with a verified device that are new and
// not verified (the chat shows a warning until the user decides).
export async function warnings(jid) {
  const eng = await E();
  const all = await eng.devicesOf(jid);
  if (!all.some((d) => d.trust === "verified")) return [];
  return all.filter((d) => d.active && d.trust === "untrusted");
}

// setPlain turns encryption off (or back on) for one chat.
export async function setPlain(chat, plain) {
  const row = state.chats.get(chat);
  if (!row) return;
  const next = { ...row, plain };
  state.chats.set(chat, next);
  await store.putChat(next);
  core.changed();
}

// Every chat opened asks for the peer's devices again (for the lock, and
// so that a device added since is encrypted for).
let lastOpen = null;
function learnOpen() {
  const jid = state.open;
  const c = core.connection();
  if (!jid || !c || !ui.ready || state.chats.get(jid)?.group) return;
  deviceList(c, jid, true).catch(() => {});
}
core.subscribe(() => {
  if (state.open === lastOpen) return;
  lastOpen = state.open;
  learnOpen();
});
