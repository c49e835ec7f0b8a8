// The OMEMO device's keys, sessions and what it knows of other devices,
// in an IndexedDB database of its own ("bluetick-omemo"), so that the
// app's store (db.js) and this one can change their versions apart.
// It implements the StorageType of @privacyresearch/libsignal-protocol-
// typescript. Trust is not decided here: isTrustedIdentity accepts every
// key (blind trust before verification), and omemo.js decides which
// devices a message is encrypted for (docs/e2e.md, "Trust").
//
// What a message to a big group reads on every device is cached in memory
// over the store (a message to 256 members with two devices each encrypts
// for 512 devices, and an IndexedDB request each time was most of its
// cost, bench/omemo.mjs): the session records, the "kv" values (our
// identity and registration id, read by every encrypt) and the device
// records (every encrypt saves the peer's identity, which reads its
// record). Every write still goes to IndexedDB, and is done before the
// call that made it returns; session writes are batched: the records
// stored while one transaction commits are written by the next one, in
// order. The caches assume one tab uses the store at a time, as the
// session cache always did.
import { openDB, deleteDB } from "idb";

export const NAME = "bluetick-omemo";
let dbp = null;

export function db() {
  dbp ??= openDB(NAME, 2, {
    upgrade(d, old) {
      if (old < 1) {
        d.createObjectStore("kv"); // identity, registrationId, deviceId, jid, nextPreKeyId, signedPreKeyId
        d.createObjectStore("prekeys"); // keyId -> {pubKey, privKey}: published, not used yet
        d.createObjectStore("signed"); // keyId -> {pubKey, privKey, signature, ts, replaced}
        d.createObjectStore("sessions"); // "jid.device" -> libsignal session record (a string)
        // Every device seen: {addr: "jid.device", jid, id, key (identity, 33 bytes),
        // trust: "blind" | "verified" | "untrusted", active (in its device list), seen (ms)}.
        const dev = d.createObjectStore("devices", { keyPath: "addr" });
        dev.createIndex("byJid", "jid");
        d.createObjectStore("lists", { keyPath: "jid" }); // device lists: {jid, ids, ts}
      }
      // keyId -> {pubKey, privKey, gone}: prekeys used once, kept for the
      // other senders who took them from the same bundle (see removePreKey).
      if (old < 2) d.createObjectStore("usedPrekeys");
    },
    blocking() {
      dbp?.then((d) => d.close());
      dbp = null;
    },
  });
  return dbp;
}

// wipe deletes the whole database (sign-out with "delete from this device").
export async function wipe() {
  await writing.catch(() => {}); // session writes already queued, before the database goes
  await dbp?.then((d) => d.close());
  dbp = null;
  sessions.clear();
  kv.clear();
  devices.clear();
  await deleteDB(NAME);
}

// A value read from IndexedDB goes into a cache only if no write got
// there first (a read that started before a write may end after it).
const kv = new Map(); // key -> value (a cache over "kv")
export async function kvGet(k) {
  if (kv.has(k)) return kv.get(k);
  const v = await (await db()).get("kv", k);
  if (!kv.has(k)) kv.set(k, v);
  return kv.get(k);
}
export async function kvSet(k, v) {
  kv.set(k, v);
  await (await db()).put("kv", v, k);
}

const addrOf = (s) => {
  const i = s.lastIndexOf(".");
  return { jid: s.slice(0, i), id: Number(s.slice(i + 1)) };
};

// Device records are never changed in place (callers put a copy).
const devices = new Map(); // addr -> record or undefined (a cache over "devices")
export async function getDevice(addr) {
  if (devices.has(addr)) return devices.get(addr);
  const d = await (await db()).get("devices", addr);
  if (!devices.has(addr)) devices.set(addr, d);
  return devices.get(addr);
}
export async function putDevice(d) {
  devices.set(d.addr, d);
  await (await db()).put("devices", d);
}
export const devicesOf = async (jid) => (await db()).getAllFromIndex("devices", "byJid", jid);
export const getList = async (jid) => (await db()).get("lists", jid);
export const putList = async (l) => (await db()).put("lists", l);

const sessions = new Map(); // addr -> record string, or undefined once removed (a cache over "sessions")

// Session writes, batched: records queued while a transaction is in
// flight are written together by the next one (the last record of an
// address wins; undefined deletes it). A write's promise settles when
// the transaction that holds it is done.
let gathering = null; // {recs: Map, done: Promise}: the next transaction's
let writing = Promise.resolve(); // the last transaction queued
function writeSession(addr, record) {
  if (!gathering) {
    const b = { recs: new Map() };
    b.done = writing.catch(() => {}).then(async () => {
      if (gathering === b) gathering = null;
      const tx = (await db()).transaction("sessions", "readwrite");
      for (const [a, r] of b.recs) r === undefined ? tx.store.delete(a) : tx.store.put(r, a);
      await tx.done;
    });
    writing = b.done;
    gathering = b;
  }
  gathering.recs.set(addr, record);
  return gathering.done;
}

const same = (a, b) => {
  if (!a || !b || a.byteLength !== b.byteLength) return false;
  const x = new Uint8Array(a);
  const y = new Uint8Array(b);
  return x.every((v, i) => v === y[i]);
};

export const signalStore = {
  getIdentityKeyPair: () => kvGet("identity"),
  getLocalRegistrationId: () => kvGet("registrationId"),
  isTrustedIdentity: async () => true,
  // saveIdentity records a device's identity key. A device that comes
  // back with another key is no longer verified: the UI warns.
  async saveIdentity(encoded, key) {
    const { jid, id } = addrOf(encoded);
    const d = await getDevice(encoded);
    if (d && same(d.key, key)) return false;
    await putDevice({
      addr: encoded, jid, id, key, seen: Date.now(), active: d?.active ?? true,
      trust: d?.trust === "verified" ? "untrusted" : d?.trust || "blind",
      changed: Boolean(d?.key),
    });
    return Boolean(d?.key);
  },
  async loadPreKey(id) {
    const d = await db();
    return (await d.get("prekeys", Number(id))) ?? (await d.get("usedPrekeys", Number(id)));
  },
  storePreKey: async (id, kp) => (await db()).put("prekeys", kp, Number(id)),
  // removePreKey is called once a prekey has made a session. OMEMO
  // bundles are public and senders pick a prekey at random: until the
  // bundle without it is published, and while this device is offline,
  // another sender can pick the same one, and its first message must
  // still open (XEP-0384 §6.2: without the key, libsignal builds a wrong
  // session and every message of that sender fails). So the key leaves
  // the bundle but is kept; forgetUsedPreKeys deletes it a day after the
  // bundle without it was published.
  async removePreKey(id) {
    const tx = (await db()).transaction(["prekeys", "usedPrekeys"], "readwrite");
    const kp = await tx.objectStore("prekeys").get(Number(id));
    if (kp) {
      tx.objectStore("usedPrekeys").put({ ...kp, gone: 0 }, Number(id));
      tx.objectStore("prekeys").delete(Number(id));
    }
    await tx.done;
  },
  loadSignedPreKey: async (id) => (await db()).get("signed", Number(id)),
  storeSignedPreKey: async (id, kp) => (await db()).put("signed", kp, Number(id)),
  removeSignedPreKey: async (id) => (await db()).delete("signed", Number(id)),
  async loadSession(addr) {
    if (sessions.has(addr)) return sessions.get(addr);
    const s = await (await db()).get("sessions", addr);
    if (s !== undefined && !sessions.has(addr)) sessions.set(addr, s);
    return sessions.has(addr) ? sessions.get(addr) : s;
  },
  async storeSession(addr, record) {
    sessions.set(addr, record);
    await writeSession(addr, record);
  },
  async removeSession(addr) {
    sessions.set(addr, undefined);
    await writeSession(addr, undefined);
  },
};

// USED_KEPT: how long a used prekey is kept after a bundle without it was
// published (senders who fetched the older bundle write within seconds;
// their messages wait on the server while this device is offline, and the
// bundle is published again at every sign-in, before the catch-up).
export const USED_KEPT = 24 * 3600 * 1000;

// forgetUsedPreKeys is called once a bundle is published: the used
// prekeys it no longer offers are dated, those dated over USED_KEPT ago
// are deleted (their one-time secrecy is then restored).
export const forgetUsedPreKeys = (now = Date.now()) => expire("usedPrekeys", "gone", USED_KEPT, now);

// expire keeps old private keys for a while, then deletes them: a record
// of the store without a date in field gets now, one dated over keep ago
// is deleted; the key except (the one in use) is left alone.
export async function expire(store, field, keep, now, except) {
  const tx = (await db()).transaction(store, "readwrite");
  for (let cur = await tx.store.openCursor(); cur; cur = await cur.continue()) {
    if (cur.key === except) continue;
    if (!cur.value[field]) cur.update({ ...cur.value, [field]: now });
    else if (now - cur.value[field] > keep) cur.delete();
  }
  await tx.done;
}
