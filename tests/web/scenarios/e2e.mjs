// End-to-end encryption (OMEMO) between two Bluetick Web pages (docs/e2e.md):
//   1:1      alice and bob chat; each page shows the text with a lock, and
//            their WebSockets carried no plaintext, only <encrypted/>
//   reload   bob reloads: his sessions are in IndexedDB and the next
//            message still decrypts
//   refused  a captured message sent again (replay) and one with a byte
//            changed (forgery) are shown as refused, never as text
// e2e-devices.mjs and e2e-group.mjs do the rest.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { cfg, emit, log, sleep, main, context, page, signIn, openChatWith, send, waitTick, shot } from "./lib.mjs";
import { reopen, texts, waitIn, plainOnWire, sentPlain, pair } from "./e2e-lib.mjs";

await main(async () => {
  const { alice, bob } = await pair();
  const t1 = "the secret recipe is 42";
  await send(alice, t1);
  await bob.waitForSelector('.chat[data-jid="alice@localhost"]', { timeout: 30000 });
  await openChatWith(bob, "alice");
  const e1 = await waitIn(bob, t1);
  await waitTick(alice, t1, "delivered", 30000, true);
  const t2 = "bob's secret reply";
  await send(bob, t2);
  const e2 = await waitIn(alice, t2);
  emit("one-to-one", {
    bob_e2e: e1, alice_e2e: e2,
    alice_out_lock: await alice.evaluate((t) => [...document.querySelectorAll(".msg.out")].find((l) => l.querySelector(".text")?.textContent === t)?.dataset.e2e, t1),
    plain_to_bob: plainOnWire(bob, t1), plain_from_alice: sentPlain(alice, t1),
    encrypted_to_bob: bob.frames_in.some((f) => f.includes("<encrypted") && f.includes("eu.siacs.conversations.axolotl")),
  });
  await shot(alice, "e2e-chat");

  // reload: sessions kept
  await bob.reload();
  await bob.waitForSelector(".side", { timeout: 15000 });
  await openChatWith(bob, "alice");
  const t3 = "after bob's reload";
  await send(alice, t3);
  const e3 = await waitIn(bob, t3).catch(() => "missing");
  emit("reload", { e2e: e3, prekey_after_reload: bob.frames_in.filter((f) => f.includes(t3) || f.includes("prekey=")).length });

  // ---- signed prekey rotation ----
  // bob's signed prekey is made 8 days old: at the next sign-in a new one
  // is published, the old one is kept, and the session goes on.
  const signed = () => bob.evaluate(() => new Promise((resolve, reject) => {
    const r = indexedDB.open("bluetick-omemo");
    r.onerror = () => reject(r.error);
    r.onsuccess = () => {
      const tx = r.result.transaction("signed");
      const all = tx.objectStore("signed").getAll();
      const keys = tx.objectStore("signed").getAllKeys();
      tx.oncomplete = () => { resolve(keys.result.map((k, i) => ({ id: k, ts: all.result[i].ts, replaced: all.result[i].replaced ?? 0 }))); r.result.close(); };
    };
  }));
  const signedBefore = await signed();
  await bob.evaluate((days) => new Promise((resolve, reject) => {
    const r = indexedDB.open("bluetick-omemo");
    r.onerror = () => reject(r.error);
    r.onsuccess = () => {
      const tx = r.result.transaction("signed", "readwrite");
      const st = tx.objectStore("signed");
      st.openCursor().onsuccess = (e) => {
        const c = e.target.result;
        if (c) { c.update({ ...c.value, ts: c.value.ts - days * 86400000 }); c.continue(); }
      };
      tx.oncomplete = () => { r.result.close(); resolve(); };
    };
  }), 8);
  const published = () => bob.sm.flat().filter(([dir, f]) => dir === "out" && f.includes(".bundles:")).map(([, f]) => /signedPreKeyId=["'](\d+)/.exec(f)?.[1]);
  const n0 = published().length;
  await bob.reload();
  await bob.waitForSelector(".side", { timeout: 15000 });
  await openChatWith(bob, "alice");
  for (let i = 0; i < 40 && published().length <= n0; i++) await sleep(250);
  const t5 = "after bob's new signed prekey";
  await send(alice, t5);
  const e5 = await waitIn(bob, t5).catch(() => "missing");
  emit("rotation", { before: signedBefore, after: await signed(), published: published().at(-1) ?? "none", e2e: e5 });

  // ---- replay and forgery: a captured message of alice's, sent again ----
  const captured = bob.frames_in.filter((f) => f.startsWith("<message") && f.includes("<encrypted") && f.includes("<payload>")).at(-1);
  const el = /<encrypted[\s\S]*<\/encrypted>/.exec(captured)[0];
  // The forgery: each key element keeps its version byte, the rest is
  // random (what someone without the session could make up).
  const forged = el.replace(/(<key [^>]*>)([^<]+)(<\/key>)/g, (_, open, data, close) => {
    const raw = Buffer.from(data, "base64");
    const fake = Buffer.concat([raw.subarray(0, 1), randomBytes(raw.length - 1)]);
    return open + fake.toString("base64") + close;
  });
  const before = (await texts(bob)).length;
  const out = execFileSync("node", ["--experimental-websocket", new URL("./omemo-forge.mjs", import.meta.url).pathname, JSON.stringify(cfg), "alice", "bob@localhost", el, forged], { encoding: "utf8", timeout: 40000 });
  if (!out.includes("sent")) throw new Error("omemo-forge: " + out);
  await bob.waitForFunction((n) => document.querySelectorAll(".messages .msg").length >= n + 2, before, { timeout: 20000 }).catch(() => {});
  const refused = await bob.evaluate(() => [...document.querySelectorAll('.msg.in[data-e2e="failed"]')].map((li) => ({ text: li.querySelector(".text")?.textContent, why: li.querySelector(".unreadable small")?.textContent })));
  await shot(bob, "e2e-refused");
  emit("refused", { refused, texts_after: (await texts(bob)).slice(before) });

  emit("texts", { all: [t1, t2, t3, t5] });
});
