// Helpers of the end-to-end encryption scenarios (e2e*.mjs).
import { execFileSync } from "node:child_process";
import { cfg, emit, log, sleep, main, context, page, signIn, openChatWith, send, waitTick, shot } from "./lib.mjs";

// reopen opens the chat again (the peer's device list is asked again).
export async function reopen(p, user) {
  await p.keyboard.press("Escape");
  await p.waitForSelector("section.main.empty-main");
  await openChatWith(p, user);
}
export const texts = (p) => p.evaluate(() => [...document.querySelectorAll(".messages .msg .text")].map((e) => e.textContent));
export const waitIn = async (p, text, timeout = 30000) => {
  await p.waitForSelector(`.msg.in >> text=${text}`, { timeout });
  return p.evaluate((text) => {
    const li = [...document.querySelectorAll(".msg.in")].find((l) => l.querySelector(".text")?.textContent === text);
    return li?.dataset.e2e;
  }, text);
};
export const plainOnWire = (p, text) => p.frames_in.some((f) => f.includes(text));
export const sentPlain = (p, text) => p.sm.some((fr) => fr.some(([dir, f]) => dir === "out" && f.includes(text)));

// pair signs alice and bob in and opens alice's chat with bob once bob's
// keys are published.
export async function pair() {
  const alice = await page(await context(), "alice");
  const bob = await page(await context(), "bob");
  await signIn(alice, "alice");
  await signIn(bob, "bob");
  await lockOn(alice, "bob");
  return { alice, bob };
}

// lockOn opens p's chat with user once user's keys are published (the
// lock turns on; the chat asks again each time it is opened).
export async function lockOn(p, user) {
  await openChatWith(p, user);
  for (let i = 0; !(await p.$('.lock-btn[data-e2e="on"]')); i++) {
    if (i === 40) throw new Error(`${user}'s keys never showed up`);
    await sleep(250);
    await reopen(p, user);
  }
}
