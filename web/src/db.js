// The local store (IndexedDB through idb): everything the app shows comes
// from here first, so a reload shows chats and history with no network.
//
//   kv        account {jid, domain, ws}, device (user-agent id), token (FAST)
//   chats     one per peer bare JID: name, last activity, preview, unread
//   messages  key chat|dir|id; tick state of outgoing ones
//   outbox    the outgoing queue, in order (autoincrement seq)
//   avatars   XEP-0084 avatars by bare JID: {jid, id, type, blob}
//   uploads   media.js: a file waiting to be uploaded, {key (its message),
//             chat, blob, seq}; kept until its slot's PUT succeeds
//   e2efiles  encmedia.js: the plaintext of end-to-end encrypted media
//             (XEP-0454), {key (its message), blob, type}: the sender's
//             original, or what the receiver downloaded and decrypted
import { openDB } from "idb";

const NAME = "bluetick";
let dbp = null;

export function db() {
  dbp ??= openDB(NAME, 4, {
    upgrade(d, oldVersion) {
      if (oldVersion < 1) {
        d.createObjectStore("kv");
        d.createObjectStore("chats", { keyPath: "jid" });
        const m = d.createObjectStore("messages", { keyPath: "key" });
        m.createIndex("byChat", ["chat", "ts"]);
        d.createObjectStore("outbox", { keyPath: "seq", autoIncrement: true });
      }
      // Named steps, each tolerating a store another step already made.
      // avatars: contacts' and our own XEP-0084 avatars (settings.js).
      if (!d.objectStoreNames.contains("avatars")) d.createObjectStore("avatars", { keyPath: "jid" });
      // uploads: files waiting for their upload (media.js), kept across reloads.
      if (!d.objectStoreNames.contains("uploads")) d.createObjectStore("uploads", { keyPath: "key" });
      // e2efiles: decrypted (or not yet encrypted) encrypted media (encmedia.js).
      if (!d.objectStoreNames.contains("e2efiles")) d.createObjectStore("e2efiles", { keyPath: "key" });
    },
    blocking() {
      // Another tab wants to upgrade or delete: let it.
      dbp?.then((d) => d.close());
      dbp = null;
    },
  });
  return dbp;
}

export const kvGet = async (k) => (await db()).get("kv", k);
export const kvSet = async (k, v) => (await db()).put("kv", v, k);
export const kvDel = async (k) => (await db()).delete("kv", k);

export async function deviceId() {
  let id = await kvGet("device");
  if (!id) {
    id = crypto.randomUUID();
    await kvSet("device", id);
  }
  return id;
}

export const allChats = async () => (await db()).getAll("chats");
export const putChat = async (c) => (await db()).put("chats", c);
export const getChat = async (jid) => (await db()).get("chats", jid);

export const msgKey = (chat, dir, id) => `${chat}|${dir}|${id}`;
export const getMessage = async (key) => (await db()).get("messages", key);
export const putMessage = async (m) => (await db()).put("messages", m);

// chatMessages returns a chat's last n messages, oldest first.
export async function chatMessages(chat, n = 500) {
  const d = await db();
  const range = IDBKeyRange.bound([chat, -Infinity], [chat, Infinity]);
  const out = [];
  let cur = await d.transaction("messages").store.index("byChat").openCursor(range, "prev");
  while (cur && out.length < n) {
    out.push(cur.value);
    cur = await cur.continue();
  }
  return out.reverse();
}

// enqueue stores an outgoing message and its place in the queue in one
// transaction: after a reload it is either in both or in neither.
export async function enqueue(m) {
  const d = await db();
  const tx = d.transaction(["messages", "outbox"], "readwrite");
  await Promise.all([
    tx.objectStore("messages").put(m),
    tx.objectStore("outbox").add({ key: m.key, chat: m.chat, id: m.id }),
    tx.done,
  ]);
}

export const outbox = async () => (await db()).getAll("outbox");

export async function dequeue(key) {
  const d = await db();
  const tx = d.transaction("outbox", "readwrite");
  let cur = await tx.store.openCursor();
  while (cur) {
    if (cur.value.key === key) await cur.delete();
    cur = await cur.continue();
  }
  await tx.done;
}

// wipe empties every store in one transaction. (Deleting the database
// instead can wait forever on a connection another tab holds, and a page
// reloaded meanwhile would wait behind it.)
export async function wipe() {
  const d = await db();
  const names = [...d.objectStoreNames];
  const tx = d.transaction(names, "readwrite");
  await Promise.all([...names.map((n) => tx.objectStore(n).clear()), tx.done]);
  // The OMEMO keys and sessions (omemo/store.js) go too: a wiped device
  // is a new device. Opened only if it exists (opening makes it).
  if ((await indexedDB.databases()).some((x) => x.name === "bluetick-omemo")) {
    const o = await openDB("bluetick-omemo");
    const os = [...o.objectStoreNames];
    if (os.length) {
      const t = o.transaction(os, "readwrite");
      await Promise.all([...os.map((n) => t.objectStore(n).clear()), t.done]);
    }
    o.close();
  }
}

export const allAvatars = async () => (await db()).getAll("avatars");
export const putAvatar = async (a) => (await db()).put("avatars", a);
export const delAvatar = async (jid) => (await db()).delete("avatars", jid);
