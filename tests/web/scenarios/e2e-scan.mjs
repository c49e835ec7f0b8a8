// Verification by QR code (docs/e2e.md): bob's encryption sheet shows his
// device's code; it becomes what chromium's fake camera sees; alice scans
// it in her chat with bob and his device is verified. Scanning the same
// code in her chat with carol verifies nothing and says whose it is.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { cfg, emit, sleep, main, launchArgs, context, page, signIn, openChatWith, shot } from "./lib.mjs";
import { reopen } from "./e2e-lib.mjs";

const video = join(cfg.shots, `qr-${process.pid}.mjpeg`);
launchArgs.push("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream", `--use-file-for-fake-video-capture=${video}`);

await main(async () => {
  const alice = await page(await context(), "alice");
  const bob = await page(await context(), "bob");
  await signIn(alice, "alice");
  await signIn(bob, "bob");
  // bob's code, as his sheet draws it, becomes the camera's picture.
  await openChatWith(bob, "alice");
  await bob.click(".lock-btn");
  const qr = bob.locator('[aria-label="Your devices"] .qr');
  await qr.waitFor({ timeout: 20000 });
  const bobFp = (await bob.textContent(".own-fp")).replace(/\s+/g, "");
  // A picture with even sides (the fake camera's MJPEG reader needs them).
  const box = await qr.boundingBox();
  writeFileSync(video, await bob.screenshot({ type: "jpeg", quality: 95, clip: { x: Math.floor(box.x) - 20, y: Math.floor(box.y) - 20, width: 224, height: 224 } }));
  await shot(bob, "e2e-own-code");

  await openChatWith(alice, "bob");
  for (let i = 0; !(await alice.$('.lock-btn[data-e2e="on"]')); i++) {
    if (i === 40) throw new Error("bob's keys never showed up");
    await sleep(250);
    await reopen(alice, "bob");
  }
  await alice.click(".lock-btn");
  await alice.waitForSelector('[aria-label="Devices of bob"] .device', { timeout: 20000 });
  await alice.getByRole("button", { name: "Scan bob's code" }).click();
  const result = await alice.waitForSelector(".scan-result", { timeout: 30000 }).then((e) => e.textContent());
  const trust = await alice.$$eval('[aria-label="Devices of bob"] .device', (ds) => ds.map((d) => ({ trust: d.dataset.trust, fp: d.querySelector(".fp").textContent.replace(/\s+/g, "") })));
  await shot(alice, "e2e-scanned");
  await alice.click('.e2e-sheet [aria-label="Close"]');

  // The same code held up in the chat with carol: not carol's.
  await alice.keyboard.press("Escape");
  await openChatWith(alice, "carol");
  await alice.click(".lock-btn");
  await alice.getByRole("button", { name: "Scan carol's code" }).click();
  const other = await alice.waitForSelector(".scan-result", { timeout: 30000 }).then((e) => e.textContent());
  emit("scan", { result, trust, bob_fp: bobFp, other });
  emit("texts", { all: ["(no messages)"] });
});
