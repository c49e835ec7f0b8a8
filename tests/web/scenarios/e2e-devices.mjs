// End-to-end encryption with several devices per account (docs/e2e.md):
//   bob's second device reads alice's next message; alice's second device
//   sees what she sends (a carbon, encrypted for her own devices); alice
//   verifies bob's devices, then a third device of his is not used and
//   her chat warns of it.
import { execFileSync } from "node:child_process";
import { cfg, emit, log, sleep, main, context, page, signIn, openChatWith, send, waitTick, shot } from "./lib.mjs";
import { reopen, texts, waitIn, plainOnWire, sentPlain, pair } from "./e2e-lib.mjs";

await main(async () => {
  const { alice, bob } = await pair();
  const t0 = "hello, all of you";
  await send(alice, t0);
  await bob.waitForSelector('.chat[data-jid="alice@localhost"]', { timeout: 30000 });
  await openChatWith(bob, "alice");
  await waitIn(bob, t0);
  // ---- a second device of bob's reads alice's next message ----
  const b2ctx = await context();
  const bob2 = await page(b2ctx, "bob#2");
  await signIn(bob2, "bob");
  // alice does not know bob2 yet (her copy of bob's device list is from
  // before it): bob2 gets a message it cannot decrypt, and repairs it.
  const tr = "sent before alice knew bob's second device";
  await send(alice, tr);
  await bob2.waitForSelector('.chat[data-jid="alice@localhost"]', { timeout: 30000 });
  await openChatWith(bob2, "alice");
  await bob2.waitForSelector('.msg.in[data-e2e="failed"]', { timeout: 30000 });
  const unreadable = await bob2.textContent('.msg.in[data-e2e="failed"]');
  await shot(bob2, "e2e-unreadable");
  await bob2.getByRole("button", { name: "Fix the session and ask to send again" }).click();
  const repaired = await waitIn(bob2, tr).catch(() => "missing");
  emit("repair", { unreadable, repaired, failed_left: await bob2.locator('.msg.in[data-e2e="failed"]').count() });
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

  // ---- verification: alice verifies bob's devices; a new one of his is then not used ----
  await reopen(alice, "bob");
  await alice.click(".lock-btn");
  await alice.waitForSelector('[aria-label="Devices of bob"] .device', { timeout: 15000 });
  const verify = alice.locator('[aria-label="Devices of bob"] .device:not(.gone)').getByRole("button", { name: "Mark as verified" });
  for (let i = 0; i < 10 && (await verify.count()) > 0; i++) {
    await verify.first().click();
    await sleep(300);
  }
  await alice.waitForFunction(() => document.querySelectorAll('[aria-label="Devices of bob"] .device[data-trust="verified"]').length >= 2, null, { timeout: 15000 });
  await shot(alice, "e2e-verified");
  await alice.click('.e2e-sheet [aria-label="Close"]');
  const b3ctx = await context();
  const bob3 = await page(b3ctx, "bob#3");
  await signIn(bob3, "bob");
  let warned = false;
  for (let i = 0; i < 40 && !warned; i++) {
    await reopen(alice, "bob");
    warned = Boolean(await alice.waitForSelector(".e2e-warning", { timeout: 1000 }).catch(() => null));
  }
  const warning = warned ? await alice.textContent(".e2e-warning") : "";
  await shot(alice, "e2e-new-device");
  const t8 = "not for the unverified device";
  await send(alice, t8);
  await waitIn(bob, t8).catch(() => {});
  await bob3.waitForSelector('.chat[data-jid="alice@localhost"]', { timeout: 30000 });
  await openChatWith(bob3, "alice");
  await bob3.waitForSelector('.msg.in[data-e2e="failed"]', { timeout: 30000 }).catch(() => {});
  emit("verification", {
    warning,
    bob1: await bob.evaluate((t) => [...document.querySelectorAll(".msg.in")].find((l) => l.querySelector(".text")?.textContent === t)?.dataset.e2e ?? "missing", t8),
    bob3_texts: await texts(bob3),
    bob3_failed: await bob3.locator('.msg.in[data-e2e="failed"]').count(),
  });
  emit("texts", { all: [t0, tr, t4, t5, t8] });
});
