// Helpers of the scenarios that talk OMEMO with profanity
// (omemo-interop.mjs, omemo-interop-media.mjs): profanity is driven
// through the Go test's bridge at $BLUETICK_TEST_PROFANITY (/type?line=…,
// /wait?text=…, /match?re=…, /log?re=…, /screen), the pages through
// playwright.
import { openChatWith } from "./lib.mjs";

export const prof = process.env.BLUETICK_TEST_PROFANITY;
export const BOB = "bob@localhost";

export async function profanity(what, q) {
  const res = await fetch(`${prof}/${what}?${new URLSearchParams(q)}`);
  const body = await res.text();
  if (!res.ok) throw new Error(`profanity ${what} ${JSON.stringify(q)}: ${res.status} ${body}`);
  return body;
}
export const type = (line) => profanity("type", { line });
export const waitProf = (text) => profanity("wait", { text });
export const matchProf = async (re) => JSON.parse(await profanity("match", { re }));
export const esc = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
// An OMEMO line of profanity's chat window ('~' marks OMEMO, '-' plain).
export const omemoLine = (from, text) => `(?m)^\\d\\d:\\d\\d:\\d\\d ~ ${esc(from)}(/\\S+)?: ${esc(text)}[ \\t]*$`;

export const hex = (s) => String(s ?? "").toLowerCase().replace(/[^0-9a-f]/g, "");
export const profFormat = (fp) => fp.match(/.{8}/g).join("-"); // as profanity prints one

// The incoming message with text, once shown: its data-e2e.
export async function waitIn(p, text, timeout = 30000) {
  await p.waitForSelector(`.msg.in >> text=${text}`, { timeout });
  return p.evaluate((text) => [...document.querySelectorAll(".msg.in")].find((l) => l.querySelector(".text")?.textContent === text)?.dataset.e2e, text);
}
export const outE2E = (p, text) => p.evaluate((t) => [...document.querySelectorAll(".msg.out")].find((l) => l.querySelector(".text")?.textContent === t)?.dataset.e2e, text);
export const sentFrames = (p) => p.sm.flatMap((fr) => fr.filter(([dir]) => dir === "out").map(([, f]) => f));
export const sentPlain = (p, ...ts) => sentFrames(p).some((f) => ts.some((t) => f.includes(t)));

// The encryption sheet of the open chat: this device's fingerprint and
// id, and the peer's devices as the page shows them.
export async function sheet(p) {
  await p.click(".lock-btn");
  await p.waitForSelector(".e2e-sheet .own-fp", { timeout: 20000 });
  await p.waitForSelector('.e2e-sheet [aria-label^="Devices of"] li.device .fp', { timeout: 20000 });
  const r = await p.evaluate(() => ({
    own: document.querySelector(".e2e-sheet .own-fp").textContent,
    id: /Device (\d+)/.exec(document.querySelector(".e2e-sheet .own").textContent)?.[1] ?? "",
    peer: [...document.querySelectorAll('.e2e-sheet [aria-label^="Devices of"] li.device')].map((li) => ({ id: li.dataset.device, fp: li.querySelector(".fp").textContent })),
  }));
  await p.click('.e2e-sheet [aria-label="Close"]');
  return r;
}

// befriend: the page asks bob for his presence; bob allows it and asks
// back (profanity's OMEMO nodes are readable by presence subscribers).
export async function befriend(p, who) {
  await openChatWith(p, "bob");
  await waitProf(`Received authorization request from ${who}@localhost`);
  await type(`/sub allow ${who}@localhost`);
  await type(`/sub request ${who}@localhost`);
  await p.waitForSelector('.who .status[data-status="online"]', { timeout: 25000 });
  // The lock turns on once the page has bob's device list.
  await p.waitForSelector('.lock-btn[data-e2e="on"]', { timeout: 20000 }).catch(async () => {
    await p.reload();
    await p.waitForSelector(".side", { timeout: 15000 });
    await openChatWith(p, "bob");
    await p.waitForSelector('.lock-btn[data-e2e="on"]', { timeout: 20000 });
  });
}

// trust: bob trusts who's web device by the fingerprint its page shows.
export async function trust(who, fp, device) {
  // profanity has fetched the device's bundle (after /omemo start).
  await profanity("log", { re: `cache identity for ${esc(who)}@localhost:${device}: ` });
  await type(`/omemo fingerprint ${who}@localhost`);
  await waitProf(profFormat(fp)); // profanity got the same key from the bundle
  await type(`/omemo trust ${who}@localhost ${profFormat(fp)}`);
  // Trusting makes profanity fetch the bundle again and build the
  // session from it (only then can it encrypt for the device).
  await profanity("log", { re: `create session with ${esc(who)}@localhost device ${device}` });
}

