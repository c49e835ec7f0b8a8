// A chat's history read from the local store page by page, by the
// messages' (chat, time) index: a chat of any length opens with its last
// page and reads more as it scrolls (ui/messages.js keeps a window of a
// few pages on screen).
import * as store from "./db.js";

const index = async () => (await store.db()).transaction("messages").store.index("byChat");

// older returns up to n messages before m (oldest first).
export async function older(chat, m, n) {
  const range = IDBKeyRange.bound([chat, -Infinity], [chat, m.ts]);
  const out = [];
  let cur = await (await index()).openCursor(range, "prev");
  while (cur && out.length < n) {
    const v = cur.value;
    // Same time as m: the index orders them by key; skip m and those after it.
    if (!(v.ts === m.ts && v.key >= m.key)) out.push(v);
    cur = await cur.continue();
  }
  return out.reverse();
}

// newer returns up to n messages after m (oldest first).
export async function newer(chat, m, n) {
  const range = IDBKeyRange.bound([chat, m.ts], [chat, Infinity]);
  const out = [];
  let cur = await (await index()).openCursor(range, "next");
  while (cur && out.length < n) {
    const v = cur.value;
    if (!(v.ts === m.ts && v.key <= m.key)) out.push(v);
    cur = await cur.continue();
  }
  return out;
}

// search returns the chat's messages whose text holds q (case-insensitive),
// newest first, at most n: a cursor over the chat's index, one message at
// a time, so a long chat is never held in memory at once.
export async function search(chat, q, n = 200) {
  q = q.trim().toLowerCase();
  if (!q) return [];
  const range = IDBKeyRange.bound([chat, -Infinity], [chat, Infinity]);
  const out = [];
  let cur = await (await index()).openCursor(range, "prev");
  while (cur && out.length < n) {
    const v = cur.value;
    if (!v.retracted && typeof v.body === "string" && v.body.toLowerCase().includes(q)) out.push(v);
    cur = await cur.continue();
  }
  return out;
}

// unreadOut returns our messages of the chat sent at or before ts that
// were delivered (✓✓) and are not marked read, newest first, stopping at
// the first one already read (XEP-0333: a displayed marker covers every
// earlier message, so nothing before it is unread): a marker costs the
// messages since the last one, not the whole chat. A message with only ✓
// stays so: it may never have arrived (the contact blocked us meanwhile,
// as WhatsApp's single tick), and a blue tick must be true.
export async function unreadOut(chat, ts) {
  const range = IDBKeyRange.bound([chat, -Infinity], [chat, ts]);
  const out = [];
  let cur = await (await index()).openCursor(range, "prev");
  while (cur) {
    const v = cur.value;
    if (v.dir === "out") {
      if (v.tick === "read") break;
      if (v.tick === "delivered") out.push(v.key);
    }
    cur = await cur.continue();
  }
  return out;
}
