// End-to-end encryption in a group of three (docs/e2e.md): alice makes a
// group with bob and carol; what each writes is read by the others, and
// no page received the text in the clear.
import { execFileSync } from "node:child_process";
import { cfg, emit, log, sleep, main, context, page, signIn, openChatWith, send, waitTick, shot } from "./lib.mjs";
import { reopen, texts, waitIn, plainOnWire, sentPlain, pair, lockOn } from "./e2e-lib.mjs";

await main(async () => {
  let { alice, bob } = await pair();
  const cctx = await context();
  const carol = await page(cctx, "carol");
  await signIn(carol, "carol");
  await sleep(500);

  // ---- two first messages on one prekey ----
  // bob's device is offline and its bundle offers one prekey: alice and
  // carol both build their session on it. bob reads both when back.
  const bctx = bob.context();
  await bob.close();
  const trimmed = execFileSync("node", ["--experimental-websocket", new URL("./omemo-stale-bundle.mjs", import.meta.url).pathname, JSON.stringify(cfg), "bob"], { encoding: "utf8", timeout: 40000 });
  if (!trimmed.startsWith("trimmed ")) throw new Error("omemo-stale-bundle: " + trimmed);
  const s1 = "alice's first words to offline bob", s2 = "carol's first words to offline bob";
  await reopen(alice, "bob");
  await send(alice, s1);
  await lockOn(carol, "bob");
  await send(carol, s2);
  await waitTick(alice, s1, "sent", 30000, true);
  await waitTick(carol, s2, "sent", 30000, true);
  bob = await page(bctx, "bob");
  await bob.waitForSelector(".side", { timeout: 30000 });
  const fromOffline = {};
  for (const [who, t] of [["alice", s1], ["carol", s2]]) {
    await bob.waitForSelector(`.chat[data-jid="${who}@localhost"]`, { timeout: 30000 });
    await openChatWith(bob, who);
    fromOffline[who] = await waitIn(bob, t).catch(async () => (await bob.evaluate(() => [...document.querySelectorAll(".msg.in")].map((l) => l.querySelector(".unreadable")?.textContent || l.dataset.e2e))).join("; ") || "missing");
  }
  emit("shared-prekey", { trimmed: trimmed.trim(), ...fromOffline });
  await bob.keyboard.press("Escape");

  // ---- a group of three, encrypted ----
  const GROUP = "Secret plans";
  await alice.keyboard.press("Escape");
  await alice.waitForSelector("section.main.empty-main");
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
  // What a page shows instead of a missing text: its last messages, with
  // why they could not be read.
  const seen = (p) => p.evaluate(() => [...document.querySelectorAll(".messages .msg")].slice(-4)
    .map((l) => `${l.dataset.e2e}: ${l.querySelector(".text")?.textContent ?? ""} ${l.querySelector(".unreadable")?.textContent ?? ""}`.trim()));
  emit("group", { bob: gb, carol: gc, alice_from_carol: ga, bob_from_carol: gb7,
    bob_sees: await seen(bob), carol_sees: await seen(carol), alice_sees: await seen(alice),
    plain_seen: [bob, carol, alice].some((p) => p.frames_in.some((f) => f.includes(t6) || f.includes(t7))) });

  emit("texts", { all: [s1, s2, t6, t7] });
});
