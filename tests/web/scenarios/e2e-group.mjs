// End-to-end encryption in a group of three (docs/e2e.md): alice makes a
// group with bob and carol; what each writes is read by the others, and
// no page received the text in the clear.
import { execFileSync } from "node:child_process";
import { cfg, emit, log, sleep, main, context, page, signIn, openChatWith, send, waitTick, shot } from "./lib.mjs";
import { reopen, texts, waitIn, plainOnWire, sentPlain, pair } from "./e2e-lib.mjs";

await main(async () => {
  const { alice, bob } = await pair();
  // ---- a group of three, encrypted ----
  const cctx = await context();
  const carol = await page(cctx, "carol");
  await signIn(carol, "carol");
  await sleep(500);
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
  emit("group", { bob: gb, carol: gc, alice_from_carol: ga, bob_from_carol: gb7,
    plain_seen: [bob, carol, alice].some((p) => p.frames_in.some((f) => f.includes(t6) || f.includes(t7))) });

  emit("texts", { all: [t6, t7] });
});
