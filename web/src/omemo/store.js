// The OMEMO device's keys, sessions and what it knows of other devices,
// in an IndexedDB database of its own ("bluetick-omemo"), so that the
// app's store (db.js) and this one can change their versions apart.
// It implements the StorageType of @privacyresearch/libsignal-protocol-
// typescript. Trust is not decided here: isTrustedIdentity accepts every
// key (blind trust before verification), and omemo.js decides which
// devices a message is encrypted for (docs/e2e.md, "Trust").
//
// Sessions are cached in memory over the store: a message to a group of
// 256 members with two devices each reads and writes 512 session records,
// and reading them again from IndexedDB each time would be most of its
// cost. Writes still go to IndexedDB before encrypt() returns.
import { openDB, deleteDB } from "idb";

export const NAME = "bluetick-omemo";
let dbp = null;

export function db() {
  dbp ??= openDB(NAME, 1, {
    upgrade(d) {
      d.createObjectStore("kv"); // identity, registrationId, deviceId, jid, nextPreKeyId, signedPreKeyId
      d.createObjectStore("prekeys"); // keyId -> {pubKey, privKey}
      d.createObjectStore("signed"); // keyId -> {pubKey, privKey, signature, ts}
      d.createObjectStore("sessions"); // "jid.device" -> libsignal session record (a string)
      // Every device seen: {addr: "jid.device", jid, id, key (identity, 33 bytes),
      // trust: "blind" | "verified" | "untrusted", active (in its device list), seen (ms)}.
      const dev = d.createObjectStore("devices", { keyPath: "addr" });
      dev.createIndex("byJid", "jid");
      d.createObjectStore("lists", { keyPath: "jid" }); // device lists: {jid, ids, ts}
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
  await dbp?.then((d) => d.close());
  dbp = null;
  sessions.clear();
  await deleteDB(NAME);
}

export const kvGet = async (k) => (await db()).get("kv", k);
export const kvSet = async (k, v) => (await db()).put("kv", v, k);

const addrOf = (s) => {
  const i = s.lastIndexOf(".");
  return { jid: s.slice(0, i), id: Number(s.slice(i + 1)) };
};

export const getDevice = async (addr) => (await db()).get("devices", addr);
export const putDevice = async (d) => (await db()).put("devices", d);
export const devicesOf = async (jid) => (await db()).getAllFromIndex("devices", "byJid", jid);
export const getList = async (jid) => (await db()).get("lists", jid);
export const putList = async (l) => (await db()).put("lists", l);

const sessions = new Map(); // addr -> record string (a cache over "sessions")

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
  loadPreKey: async (id) => (await db()).get("prekeys", Number(id)),
  storePreKey: async (id, kp) => (await db()).put("prekeys", kp, Number(id)),
  removePreKey: async (id) => (await db()).delete("prekeys", Number(id)),
  loadSignedPreKey: async (id) => (await db()).get("signed", Number(id)),
  storeSignedPreKey: async (id, kp) => (await db()).put("signed", kp, Number(id)),
  removeSignedPreKey: async (id) => (await db()).delete("signed", Number(id)),
  async loadSession(addr) {
    if (sessions.has(addr)) return sessions.get(addr);
    const s = await (await db()).get("sessions", addr);
    if (s !== undefined) sessions.set(addr, s);
    return s;
  },
  async storeSession(addr, record) {
    sessions.set(addr, record);
    await (await db()).put("sessions", record, addr);
  },
  async removeSession(addr) {
    sessions.delete(addr);
    await (await db()).delete("sessions", addr);
  },
};
