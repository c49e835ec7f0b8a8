// The page side of bench/omemo.mjs, bundled by it with esbuild: our
// device is the app's real OMEMO engine (src/omemo/engine.js and its
// IndexedDB store); the group's 512 devices are simulated here with the
// same Signal library, each with its own identity, signed prekey and
// prekeys in a store of its own in memory (MemoryStore: bench only, the
// app has one device per tab and one IndexedDB store).
//
// Every step is a function on window.bench the Node side calls with
// page.evaluate, and returns its timings (performance.now(), ms).
import {
  KeyHelper, SessionBuilder, SessionCipher, SignalProtocolAddress,
} from "@privacyresearch/libsignal-protocol-typescript";
import * as engine from "../src/omemo/engine.js";

const OUR_JID = "alice@localhost";
const ab = (u) => u.buffer.slice(u.byteOffset, u.byteOffset + u.byteLength);
const now = () => performance.now();

// MemoryStore: the libsignal StorageType of a simulated remote device.
class MemoryStore {
  constructor(identity, registrationId) {
    this.identity = identity;
    this.registrationId = registrationId;
    this.prekeys = new Map();
    this.signed = new Map();
    this.sessions = new Map();
    this.identities = new Map();
  }
  getIdentityKeyPair = async () => this.identity;
  getLocalRegistrationId = async () => this.registrationId;
  isTrustedIdentity = async () => true;
  saveIdentity = async (addr, key) => {
    const had = this.identities.has(addr);
    this.identities.set(addr, key);
    return had;
  };
  loadPreKey = async (id) => this.prekeys.get(Number(id));
  storePreKey = async (id, kp) => void this.prekeys.set(Number(id), kp);
  removePreKey = async (id) => void this.prekeys.delete(Number(id));
  loadSignedPreKey = async (id) => this.signed.get(Number(id));
  storeSignedPreKey = async (id, kp) => void this.signed.set(Number(id), kp);
  removeSignedPreKey = async (id) => void this.signed.delete(Number(id));
  loadSession = async (addr) => this.sessions.get(addr);
  storeSession = async (addr, rec) => void this.sessions.set(addr, rec);
  removeSession = async (addr) => void this.sessions.delete(addr);
}

// A remote device: its keys, its store and the bundle it would publish
// (in the engine's bundle shape, base64 as on the wire).
async function makeDevice(jid, id, prekeys) {
  const identity = await KeyHelper.generateIdentityKeyPair();
  const store = new MemoryStore(identity, KeyHelper.generateRegistrationId());
  const spk = await KeyHelper.generateSignedPreKey(identity, 1);
  await store.storeSignedPreKey(1, spk.keyPair);
  const pks = [];
  for (let k = 1; k <= prekeys; k++) {
    const p = await KeyHelper.generatePreKey(k);
    await store.storePreKey(k, p.keyPair);
    pks.push({ id: k, key: engine.b64(p.keyPair.pubKey) });
  }
  return {
    jid, id, store,
    bundle: {
      identityKey: engine.b64(identity.pubKey),
      signedPreKey: { id: 1, key: engine.b64(spk.keyPair.pubKey), signature: engine.b64(spk.signature) },
      preKeys: pks,
    },
  };
}

// The remote side's own session from our bundle (what its client does
// before it sends us its first message).
async function remoteSessionTo(dev, b) {
  const pk = b.preKeys[crypto.getRandomValues(new Uint32Array(1))[0] % b.preKeys.length];
  await new SessionBuilder(dev.store, new SignalProtocolAddress(OUR_JID, ours)).processPreKey({
    registrationId: 0,
    identityKey: ab(engine.unb64(b.identityKey)),
    signedPreKey: { keyId: Number(b.signedPreKey.id), publicKey: ab(engine.unb64(b.signedPreKey.key)), signature: ab(engine.unb64(b.signedPreKey.signature)) },
    preKey: { keyId: Number(pk.id), publicKey: ab(engine.unb64(pk.key)) },
  });
}

// A message from a remote device to us, as the <encrypted/> parts:
// {sid, data (base64), prekey, iv, payload}.
async function remoteSend(dev, text) {
  const s = await engine.seal(text);
  const r = await new SessionCipher(dev.store, new SignalProtocolAddress(OUR_JID, ours)).encrypt(ab(s.key));
  return { prekey: r.type === 3, data: btoa(r.body), iv: s.iv, payload: s.payload };
}

// The remote device opens the key we sent it and the payload.
async function remoteOpen(dev, k, msg) {
  const cipher = new SessionCipher(dev.store, new SignalProtocolAddress(OUR_JID, ours));
  const bin = atob(k.data);
  const key = k.prekey ? await cipher.decryptPreKeyWhisperMessage(bin, "binary") : await cipher.decryptWhisperMessage(bin, "binary");
  return engine.open(new Uint8Array(key), msg.iv, msg.payload);
}

let ours = 0;
let group = []; // the 512 devices
const text = "Meeting moved to 3 pm — bring the slides. " + "x".repeat(60);

async function init() {
  const t0 = now();
  ours = await engine.init(OUR_JID);
  return { ms: now() - t0, id: ours };
}

async function makeGroup(members, devices, prekeys) {
  const t0 = now();
  group = [];
  for (let m = 0; m < members; m++) {
    for (let d = 0; d < devices; d++) {
      group.push(await makeDevice(`member${String(m).padStart(3, "0")}@localhost`, 1000 + m * devices + d, prekeys));
    }
  }
  return { ms: now() - t0, devices: group.length };
}

// Session setup for every device of the group from its bundle, as
// omemo.js encryptFor does it (hasSession, then startSession, all in
// parallel). fresh: end the existing sessions first (not timed).
async function setup(fresh) {
  if (fresh) await Promise.all(group.map((g) => engine.endSession(g.jid, g.id)));
  const t0 = now();
  let made = 0;
  await Promise.all(group.map(async (g) => {
    if (await engine.hasSession(g.jid, g.id)) return;
    await engine.startSession(g.jid, g.id, g.bundle);
    made++;
  }));
  return { ms: now() - t0, made };
}

// One message for the whole group, as omemo.js encryptFor does it after
// the device lists are known: a trust read per device (getDevice), the
// sessions checked, the text sealed, the key encrypted for every device
// in parallel, the <encrypted/> element's text put together.
// {ms, encrypt (the part from seal on), prekeys (how many PreKey messages), bytes}
let last = null;
async function send() {
  const t0 = now();
  const targets = [];
  for (const g of group) {
    const d = await engine.getDevice(`${g.jid}.${g.id}`);
    if (d?.trust === "untrusted") continue;
    targets.push(g);
  }
  await Promise.all(targets.map(async (t) => {
    if (!(await engine.hasSession(t.jid, t.id))) throw new Error(`no session with ${t.jid}.${t.id}`);
  }));
  const t1 = now();
  const s = await engine.seal(text);
  const keys = await Promise.all(targets.map((t) => engine.encryptFor(t.jid, t.id, s.key)));
  let xmlText = `<encrypted xmlns="eu.siacs.conversations.axolotl"><header sid="${ours}">`;
  keys.forEach((k, i) => (xmlText += `<key rid="${targets[i].id}"${k.prekey ? ' prekey="true"' : ""}>${k.data}</key>`));
  xmlText += `<iv>${engine.b64(s.iv)}</iv></header><payload>${engine.b64(s.payload)}</payload></encrypted>`;
  const t2 = now();
  last = { keys, iv: s.iv, payload: s.payload };
  return { ms: t2 - t0, encrypt: t2 - t1, prekeys: keys.filter((k) => k.prekey).length, keys: keys.length, bytes: xmlText.length };
}

// Every device of the group opens the last message (a check that what was
// measured is right, not timed): the text must come out.
// Also: every session record in IndexedDB is the one in the store's
// cache (the batched writes arrived, the last one last).
async function checkAll() {
  let ok = 0;
  for (let i = 0; i < group.length; i++) {
    if ((await remoteOpen(group[i], last.keys[i], last)) === text) ok++;
  }
  const d = await engine.db();
  let stored = 0;
  for (const g of group) {
    const addr = `${g.jid}.${g.id}`;
    const rec = await d.get("sessions", addr);
    if (rec !== undefined && rec === (await engine.signalStore.loadSession(addr))) stored++;
  }
  return { ok, stored };
}

// Decrypting one message on this device, the way omemo.js open() does it:
// decryptFrom, noteDevice, open, the sender's trust read.
async function receive(dev, m) {
  const t0 = now();
  const key = await engine.decryptFrom(dev.jid, dev.id, m.data, m.prekey);
  await engine.noteDevice(dev.jid, dev.id);
  const got = await engine.open(key, m.iv, m.payload);
  await engine.getDevice(`${dev.jid}.${dev.id}`);
  const ms = now() - t0;
  if (got !== text) throw new Error("decrypted text differs");
  return ms;
}

// A PreKey message: n new devices (not in the group) each start a session
// from our bundle (read again each time: each message uses up one of our
// prekeys) and send us their first message.
async function receivePreKey(n) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const dev = await makeDevice(`newcomer${i}@localhost`, 9000 + i, 1);
    await remoteSessionTo(dev, await engine.bundle());
    const m = await remoteSend(dev, text);
    if (!m.prekey) throw new Error("a first message that is no PreKey message");
    out.push(await receive(dev, m));
  }
  return out;
}

// Normal messages (SignalMessage): every device of the group, having
// opened our message, answers; we decrypt each answer. After this our
// sessions with them are confirmed, and our next message to them is no
// longer a PreKey message.
async function receiveReplies() {
  const out = [];
  for (const dev of group) {
    const m = await remoteSend(dev, text);
    if (m.prekey) throw new Error("a reply that is a PreKey message");
    out.push(await receive(dev, m));
  }
  return out;
}

window.bench = { init, makeGroup, setup, send, checkAll, receivePreKey, receiveReplies };
window.benchReady = true;
