// End-to-end encryption (OMEMO) between Bluetick Web pages (docs/e2e.md):
//   1:1      alice and bob chat; each page shows the text with a lock, and
//            what their WebSockets carried had no plaintext, only
//            <encrypted/>
//   reload   bob reloads: his sessions are in IndexedDB and the next
//            message still decrypts (no new prekey message needed)
//   device   a second device of bob's (another browser profile) signs in
//            and reads alice's next message; alice's own second device too
//   group    alice, bob and carol in a group: encrypted, all read it
//   refused  a captured message sent again (replay) and one with a byte
//            changed (forgery) are shown as refused, never as text
import { execFileSync } from "node:child_process";
import { cfg, emit, log, sleep, main, context, page, signIn, openChatWith, send, waitTick, shot } from "./lib.mjs";

// reopen opens the chat again (the peer's device list is asked again).
async function reopen(p, user) {
  await p.keyboard.press("Escape");
  await p.waitForSelector("section.main.empty-main");
  await openChatWith(p, user);
}
const texts = (p) => p.evaluate(() => [...document.querySelectorAll(".messages .msg .text")].map((e) => e.textContent));

const lastIn = (p) => p.evaluate(() => {
  const li = [...document.querySelectorAll(".msg.in")].at(-1);
  return li ? { text: li.querySelector(".text")?.textContent ?? "", e2e: li.dataset.e2e } : null;
});
const waitIn = async (p, text, timeout = 30000) => {
  await p.waitForSelector(`.msg.in >> text=${text}`, { timeout });
  return p.evaluate((text) => {
    const li = [...document.querySelectorAll(".msg.in")].find((l) => l.querySelector(".text")?.textContent === text);
    return li?.dataset.e2e;
  }, text);
};
const plainOnWire = (p, text) => p.frames_in.some((f) => f.includes(text));
const sentPlain = (p, text) => p.sm.some((fr) => fr.some(([dir, f]) => dir === "out" && f.includes(text)));

await main(async () => {
  const actx = await context();
  const bctx = await context();
  const alice = await page(actx, "alice");
  const bob = await page(bctx, "bob");
  await signIn(alice, "alice");
  await signIn(bob, "bob");
  await openChatWith(alice, "bob");
  // The lock turns on once bob's device has published its keys.
  // (The chat asks again each time it is opened.)
  for (let i = 0; !(await alice.$('.lock-btn[data-e2e="on"]')); i++) {
    if (i === 40) throw new Error("bob's keys never showed up");
    await sleep(250);
    await reopen(alice, "bob");
  }
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

  // ---- a second device of bob's reads alice's next message ----
  const b2ctx = await context();
  const bob2 = await page(b2ctx, "bob#2");
  await signIn(bob2, "bob");
  await alice.waitForFunction(() => true);
  // alice and bob are no contacts: no PEP notification; the chat asks again when opened.
  const t4 = "for every one of bob's devices";
  for (let i = 0; ; i++) {
    await reopen(alice, "bob");
    const n = await alice.evaluate(() => document.querySelectorAll(".msg").length);
    if (i > 20) throw new Error("bob's second device never showed up in his device list");
    // the encryption sheet lists bob's devices
    await alice.click(".lock-btn");
    await alice.waitForSelector('[aria-label="Devices of bob"] .device', { timeout: 15000 });
    const devs = await alice.locator('[aria-label="Devices of bob"] .device:not(.gone)').count();
    if (devs >= 2) break;
    await alice.click('.e2e-sheet [aria-label="Close"]');
    await sleep(300);
  }
  await shot(alice, "e2e-devices");
  await alice.click('.e2e-sheet [aria-label="Close"]');
  await send(alice, t4);
  await bob2.waitForSelector('.chat[data-jid="alice@localhost"]', { timeout: 30000 });
  await openChatWith(bob2, "alice");
  const e4 = await waitIn(bob2, t4).catch(() => "missing");
  const e4b = await waitIn(bob, t4).catch(() => "missing");

  // ---- alice's second device sees what alice sends (carbons, encrypted for her own devices) ----
  const a2ctx = await context();
  const alice2 = await page(a2ctx, "alice#2");
  await signIn(alice2, "alice");
  const t5 = "sent from alice's first device";
  // alice's first device learns of her second one from her own PEP notification.
  await alice.waitForFunction(() => true);
  for (let i = 0; i < 100; i++) {
    await alice.click(".lock-btn");
    await alice.waitForSelector('[aria-label="Your devices"]', { timeout: 15000 });
    const mine = await alice.locator('[aria-label="Your devices"] .device:not(.gone)').count();
    await alice.click('.e2e-sheet [aria-label="Close"]');
    if (mine >= 1) break;
    await sleep(200);
  }
  await send(alice, t5);
  await alice2.waitForSelector('.chat[data-jid="bob@localhost"]', { timeout: 30000 });
  await openChatWith(alice2, "bob");
  await alice2.waitForSelector(`.msg.out >> text=${t5}`, { timeout: 30000 }).catch(() => {});
  const e5 = await alice2.evaluate((t) => [...document.querySelectorAll(".msg.out")].find((l) => l.querySelector(".text")?.textContent === t)?.dataset.e2e ?? "missing", t5);
  emit("devices", { bob2: e4, bob1: e4b, alice2_sent_copy: e5 });

  // ---- replay and forgery: a captured message of alice's, sent again ----
  const captured = bob.frames_in.filter((f) => f.startsWith("<message") && f.includes("<encrypted") && f.includes("<payload>")).at(-1);
  const el = /<encrypted[\s\S]*<\/encrypted>/.exec(captured)[0];
  const forged = el.replace(/<payload>([A-Za-z0-9+/]{4})/, (_, a) => `<payload>${a === "AAAA" ? "BBBB" : "AAAA"}`);
  const before = (await texts(bob)).length;
  const out = execFileSync("node", ["--experimental-websocket", new URL("./omemo-forge.mjs", import.meta.url).pathname, JSON.stringify(cfg), "alice", "bob@localhost", el, forged], { encoding: "utf8", timeout: 40000 });
  if (!out.includes("sent")) throw new Error("omemo-forge: " + out);
  await bob.waitForFunction((n) => document.querySelectorAll(".messages .msg").length >= n + 2, before, { timeout: 20000 }).catch(() => {});
  const refused = await bob.evaluate(() => [...document.querySelectorAll('.msg.in[data-e2e="failed"]')].map((li) => ({ text: li.querySelector(".text")?.textContent, why: li.querySelector(".unreadable small")?.textContent })));
  await shot(bob, "e2e-refused");
  emit("refused", { refused, texts_after: (await texts(bob)).slice(before) });

  // ---- a group of three, encrypted ----
  const cctx = await context();
  const carol = await page(cctx, "carol");
  await signIn(carol, "carol");
  await sleep(500);
  const GROUP = "Secret plans";
  await alice.keyboard.press("Escape");
  await alice.getByRole("button", { name: "New group" }).click();
  await alice.fill("#gname", GROUP);
  await alice.fill("#gmembers", "bob, carol");
  await alice.getByRole("button", { name: "Create group" }).click();
  await alice.waitForSelector(`section.main[aria-label="Group ${GROUP}"]`, { timeout: 20000 });
  const row = (p) => p.locator(".chat", { has: p.locator(".name", { hasText: GROUP }) });
  await row(bob).waitFor({ timeout: 20000 });
  await row(carol).waitFor({ timeout: 20000 });
  const t6 = "the group's secret: meet at noon";
  await send(alice, t6);
  for (const p of [bob, carol]) {
    await row(p).click();
    await p.waitForSelector(`section.main[aria-label="Group ${GROUP}"]`);
  }
  const g = async (p, t) => {
    await p.waitForFunction((t) => [...document.querySelectorAll(".messages .msg .text")].some((e) => e.textContent === t), t, { timeout: 30000 }).catch(() => {});
    return p.evaluate((t) => [...document.querySelectorAll(".messages .msg")].find((l) => l.querySelector(".text")?.textContent === t)?.dataset.e2e ?? "missing", t);
  };
  const t7 = "carol's encrypted answer";
  const gb = await g(bob, t6);
  const gc = await g(carol, t6);
  await send(carol, t7);
  const ga = await g(alice, t7);
  const gb7 = await g(bob, t7);
  await shot(carol, "e2e-group");
  emit("group", { bob: gb, carol: gc, alice_from_carol: ga, bob_from_carol: gb7,
    plain_seen: [bob, carol, alice].some((p) => p.frames_in.some((f) => f.includes(t6) || f.includes(t7))) });
  emit("texts", { all: [t1, t2, t3, t4, t5, t6, t7] });
});
