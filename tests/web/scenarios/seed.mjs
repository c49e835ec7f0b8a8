// seed writes chats straight into a signed-in page's IndexedDB (the app's
// own stores, same record shapes as core.js writes), for the scale test and
// the budgets benchmark: chats = [{jid, n, unread, text(i)}].
export async function seed(p, chats) {
  return p.evaluate(async (chats) => {
    const d = await new Promise((res, rej) => {
      const r = indexedDB.open("bluetick");
      r.onsuccess = () => res(r.result);
      r.onerror = () => rej(r.error);
    });
    const base = Date.now() - 10 * 86400 * 1000;
    for (const c of chats) {
      const tx = d.transaction(["messages", "chats"], "readwrite");
      const ms = tx.objectStore("messages");
      let last = null;
      for (let i = 0; i < c.n; i++) {
        const dir = i % 3 === 0 ? "out" : "in";
        const id = `seed-${i}`;
        const text = c.prefix + " " + i;
        last = { key: `${c.jid}|${dir}|${id}`, chat: c.jid, dir, id, body: text, ts: base + i * 60000, tick: dir === "out" ? "read" : undefined, markable: true, markId: id, displayedSent: true };
        if (dir === "in") delete last.tick;
        if (i >= c.n - (c.unread || 0)) {
          last.dir = "in";
          last.key = `${c.jid}|in|${id}`;
          last.body = `unread ${i - (c.n - c.unread) + 1}`;
          last.displayedSent = false;
          delete last.tick;
        }
        ms.put(last);
      }
      tx.objectStore("chats").put({
        jid: c.jid, unread: c.unread || 0, firstUnreadTs: c.unread ? base + (c.n - c.unread) * 60000 : 0,
        lastTs: last.ts, lastText: last.body, lastDir: last.dir, lastKey: last.key, lastTick: last.tick,
      });
      await new Promise((res, rej) => { tx.oncomplete = res; tx.onerror = () => rej(tx.error); });
    }
    d.close();
    return true;
  }, chats);
}
