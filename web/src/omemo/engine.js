// The OMEMO device itself: its Signal-protocol keys, sessions and the
// message crypto of XEP-0384 version 0.3 (eu.siacs.conversations.axolotl,
// the OMEMO that Conversations, Gajim, Dino, Monal and profanity speak).
// Loaded lazily by omemo.js (import()), so the ~1 MB of the Signal
// library is not part of the app's first load.
//
// Crypto of one message (XEP-0384 0.3 §4.4, as those clients do it):
//   a fresh 16-byte AES key and 12-byte IV; AES-128-GCM over the body;
//   the payload is the ciphertext without its 16-byte tag; key||tag (32
//   bytes) is what each recipient device gets, encrypted with its Signal
//   session (a PreKeySignalMessage while the session is new, then a
//   SignalMessage: the double ratchet, a new key per message).
// The Signal layer is @privacyresearch/libsignal-protocol-typescript; no
// ratchet is written here.
import {
  KeyHelper, SessionBuilder, SessionCipher, SignalProtocolAddress,
} from "@privacyresearch/libsignal-protocol-typescript";
import { signalStore, kvGet, kvSet, db, getDevice, putDevice, expire } from "./store.js";
export * from "./store.js";

export const PREKEYS = 100; // published at a time (as Conversations)

// ---- encodings ---------------------------------------------------------------------

export const b64 = (buf) => {
  const u = new Uint8Array(buf);
  let s = "";
  for (let i = 0; i < u.length; i += 0x8000) s += String.fromCharCode(...u.subarray(i, i + 0x8000));
  return btoa(s);
};
export const unb64 = (s) => Uint8Array.from(atob(String(s).replace(/\s+/g, "")), (c) => c.charCodeAt(0));
const binToBytes = (s) => Uint8Array.from(s, (c) => c.charCodeAt(0));
const bytesToBin = (u) => {
  let s = "";
  for (let i = 0; i < u.length; i += 0x8000) s += String.fromCharCode(...u.subarray(i, i + 0x8000));
  return s;
};
const ab = (u) => u.buffer.slice(u.byteOffset, u.byteOffset + u.byteLength);

// fingerprint is an identity key as Conversations shows it: the 32-byte
// Curve25519 key (without libsignal's 0x05 type byte) in hex.
export function fingerprint(key) {
  const u = new Uint8Array(key);
  const k = u.length === 33 ? u.subarray(1) : u;
  return [...k].map((b) => b.toString(16).padStart(2, "0")).join("");
}

// ---- this device -------------------------------------------------------------------

// init makes this device's identity on its first run (for the account
// jid) and returns its id. A store made for another account is wiped.
export async function init(jid) {
  const owner = await kvGet("jid");
  if (owner && owner !== jid) {
    const { wipe } = await import("./store.js");
    await wipe();
  }
  let id = await kvGet("deviceId");
  if (id) return id;
  const identity = await KeyHelper.generateIdentityKeyPair();
  // A random device id in 1..2^31-1, as XEP-0384 asks.
  id = (crypto.getRandomValues(new Uint32Array(1))[0] & 0x7fffffff) || 1;
  await kvSet("identity", identity);
  await kvSet("registrationId", KeyHelper.generateRegistrationId());
  await newSignedPreKey(identity, 1);
  await kvSet("nextPreKeyId", 1);
  await refill();
  await kvSet("jid", jid);
  await kvSet("deviceId", id); // last: a half-made identity is made again
  return id;
}

// newSignedPreKey makes the signed prekey keyId and publishes it from now
// on ({pubKey, privKey, signature, ts: made, replaced: when a newer one
// took its place}).
async function newSignedPreKey(identity, keyId) {
  const spk = await KeyHelper.generateSignedPreKey(identity, keyId);
  await signalStore.storeSignedPreKey(keyId, { ...spk.keyPair, signature: spk.signature, ts: Date.now() });
  await kvSet("signedPreKeyId", keyId);
}

// SIGNED_EVERY: how long a signed prekey is published before it is
// replaced (XEP-0384's business rules: between a week and a month). The
// replaced one is kept for another SIGNED_EVERY: sessions started on it
// by messages still on their way must open.
export const SIGNED_EVERY = 7 * 24 * 3600 * 1000;

// rotateSignedPreKey replaces the signed prekey once it is SIGNED_EVERY
// old and deletes those replaced over SIGNED_EVERY ago. Called at every
// sign-in, before the bundle is published and the catch-up read.
export async function rotateSignedPreKey(now = Date.now()) {
  const id = await kvGet("signedPreKeyId");
  const cur = await (await db()).get("signed", id);
  if (cur && now - cur.ts < SIGNED_EVERY) return;
  const next = id >= 0xffffff ? 1 : id + 1;
  await newSignedPreKey(await kvGet("identity"), next);
  await expire("signed", "replaced", SIGNED_EVERY, now, next);
}

// refill tops the one-time prekeys up to PREKEYS; true when it made some
// (the bundle must then be published again).
export async function refill() {
  const d = await db();
  const have = await d.count("prekeys");
  if (have >= PREKEYS) return false;
  let next = (await kvGet("nextPreKeyId")) || 1;
  const made = await Promise.all(Array.from({ length: PREKEYS - have }, (_, i) => KeyHelper.generatePreKey(next + i)));
  const tx = d.transaction("prekeys", "readwrite");
  for (const p of made) tx.store.put(p.keyPair, p.keyId);
  await tx.done;
  next += made.length;
  await kvSet("nextPreKeyId", next > 0xffffff ? 1 : next);
  return true;
}

// bundle is what this device publishes: identity key, signed prekey with
// its signature, and the one-time prekeys (all base64).
export async function bundle() {
  const d = await db();
  const identity = await kvGet("identity");
  const spkId = await kvGet("signedPreKeyId");
  const spk = await d.get("signed", spkId);
  const ids = await d.getAllKeys("prekeys");
  const keys = await d.getAll("prekeys");
  return {
    identityKey: b64(identity.pubKey),
    signedPreKey: { id: spkId, key: b64(spk.pubKey), signature: b64(spk.signature) },
    preKeys: ids.map((id, i) => ({ id, key: b64(keys[i].pubKey) })),
  };
}

export const ownFingerprint = async () => fingerprint((await kvGet("identity")).pubKey);

// ---- sessions ----------------------------------------------------------------------

const address = (jid, id) => new SignalProtocolAddress(jid, Number(id));

export async function hasSession(jid, id) {
  return Boolean(await signalStore.loadSession(`${jid}.${id}`));
}

// startSession builds a session with a device from its published bundle
// ({identityKey, signedPreKey: {id, key, signature}, preKeys: [{id, key}]}),
// with one of its prekeys picked at random (as XEP-0384 asks). The
// signature is checked by the library.
export async function startSession(jid, id, b) {
  if (!b.preKeys.length) throw new Error("the device published no prekeys");
  const pk = b.preKeys[crypto.getRandomValues(new Uint32Array(1))[0] % b.preKeys.length];
  await new SessionBuilder(signalStore, address(jid, id)).processPreKey({
    registrationId: 0,
    identityKey: ab(unb64(b.identityKey)),
    signedPreKey: { keyId: Number(b.signedPreKey.id), publicKey: ab(unb64(b.signedPreKey.key)), signature: ab(unb64(b.signedPreKey.signature)) },
    preKey: { keyId: Number(pk.id), publicKey: ab(unb64(pk.key)) },
  });
}

export async function endSession(jid, id) {
  await signalStore.removeSession(`${jid}.${id}`);
}

// ---- messages ----------------------------------------------------------------------

// seal encrypts text (a string; "" for a key-transport message) and
// returns {iv, payload, key}: payload and key (the AES key and the tag,
// to be encrypted for each device) as bytes; payload is null for a key
// transport.
export async function seal(text) {
  const key = crypto.getRandomValues(new Uint8Array(16));
  const iv = crypto.getRandomValues(new Uint8Array(12));
  if (text === "") return { iv, payload: null, key: new Uint8Array([...key, ...new Uint8Array(16)]) };
  const k = await crypto.subtle.importKey("raw", key, "AES-GCM", false, ["encrypt"]);
  const ct = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv, tagLength: 128 }, k, new TextEncoder().encode(text)));
  const tag = ct.subarray(ct.length - 16);
  return { iv, payload: ct.subarray(0, ct.length - 16), key: new Uint8Array([...key, ...tag]) };
}

// encryptFor encrypts the message key for one device: {prekey, data}.
export async function encryptFor(jid, id, key) {
  const r = await new SessionCipher(signalStore, address(jid, id)).encrypt(ab(key));
  return { prekey: r.type === 3, data: btoa(r.body) };
}

// decryptFrom opens the message key a device sent us; it throws on a
// forged message (bad MAC), a replay (a counter already used) or no
// session. {key, prekey: the prekey consumed, identity: the sender's key}.
export async function decryptFrom(jid, id, data, prekey) {
  const cipher = new SessionCipher(signalStore, address(jid, id));
  const bin = bytesToBin(unb64(data));
  const out = prekey ? await cipher.decryptPreKeyWhisperMessage(bin, "binary") : await cipher.decryptWhisperMessage(bin, "binary");
  return new Uint8Array(out);
}

// open decrypts a payload with the 32 bytes (key||tag) of its key
// element; 16 bytes is the old form, with the tag after the payload.
export async function open(key, iv, payload) {
  let k = key;
  let ct = payload;
  if (key.length >= 32) {
    k = key.subarray(0, 16);
    ct = new Uint8Array([...payload, ...key.subarray(16, 32)]);
  } else if (key.length !== 16) {
    throw new Error("bad key length " + key.length);
  }
  const ck = await crypto.subtle.importKey("raw", k, "AES-GCM", false, ["decrypt"]);
  const pt = await crypto.subtle.decrypt({ name: "AES-GCM", iv, tagLength: 128 }, ck, ct);
  return new TextDecoder("utf-8", { fatal: true }).decode(pt);
}

// ---- what is known of other devices ---------------------------------------------

export async function setTrust(jid, id, trust) {
  const d = await getDevice(`${jid}.${id}`);
  if (d) await putDevice({ ...d, trust, changed: false });
}

export async function noteDevice(jid, id) {
  const addr = `${jid}.${id}`;
  const d = await getDevice(addr);
  if (d) return d;
  const nd = { addr, jid, id: Number(id), key: null, trust: "blind", active: true, seen: Date.now() };
  await putDevice(nd);
  return nd;
}

// findDevice: a device known by its id alone (a group message whose
// sender's address the room did not say).
export async function findDevice(id) {
  return (await (await db()).getAll("devices")).find((d) => d.id === Number(id)) ?? null;
}
