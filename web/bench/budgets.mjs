// The app's budgets, measured (npm run bench in web/; a benchmark, not a
// test): it builds bluetick, starts `bluetick serve` on free loopback ports
// with one user, drives Debian's chromium with playwright-core and prints
//
//   first-load JS     compressed bytes of the JavaScript the first load
//                     fetches (budget 250 KB gzip)
//   chat list         navigation start → the chat list drawn from the local
//                     store, 50 chats × 1,000 messages (budget 300 ms)
//   open 10,000       click on a chat of 10,000 messages → its messages
//                     drawn (budget 200 ms)
//   scrolling back    scrollTop = 0 in that chat → the next older page drawn
//   JS heap           the tab's used JS heap after a GC, 50 chats × 1,000
//                     messages, a chat open (stated)
//
// The local store is seeded straight into IndexedDB (the app's stores and
// record shapes, tests/web/scenarios/seed.mjs), not sent through the server.
// Each timing is taken RUNS times; the median and the worst are printed.
// BLUETICK_BIN=path skips the build; CHROMIUM=path picks the browser.
// OMEMO's budget (one message to 256 members × 2 devices in under 1 s) is
// measured apart, by npm run bench:omemo (bench/omemo.mjs): it needs no
// server, and takes minutes (512 simulated devices, their sessions).
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { seed } from "../../tests/web/scenarios/seed.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const RUNS = Number(process.env.RUNS || 7);
const BUDGET = { js: 250 * 1024, list: 300, open: 200 };

const tmp = mkdtempSync(join(tmpdir(), "bluetick-bench-"));
let server = null;
let browser = null;
const killer = setTimeout(() => {
  console.error("bench: timed out after 5 minutes");
  finish(2);
}, 5 * 60 * 1000);

async function finish(code) {
  clearTimeout(killer);
  await browser?.close().catch(() => {});
  if (server && server.exitCode === null) {
    server.kill("SIGTERM");
    await new Promise((r) => { server.once("exit", r); setTimeout(r, 5000); });
  }
  rmSync(tmp, { recursive: true, force: true });
  process.exit(code);
}

const freePort = () =>
  new Promise((res) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const p = s.address().port;
      s.close(() => res(p));
    });
  });

const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const fmt = (a) => `median ${median(a).toFixed(0)} ms, worst ${Math.max(...a).toFixed(0)} ms (${a.length} runs)`;

try {
  let bin = process.env.BLUETICK_BIN;
  if (!bin) {
    bin = join(tmp, "bluetick");
    let go = "go";
    try { execFileSync(go, ["version"]); } catch { go = "/usr/local/go/bin/go"; }
    execFileSync(go, ["build", "-o", bin, "./cmd/bluetick"], { cwd: root, stdio: "inherit" });
  }
  const data = join(tmp, "data");
  execFileSync(bin, ["user", "add", "alice", "--password", "alice-secret", "--data", data, "--domain", "localhost"]);
  const [c2s, tls, http] = [await freePort(), await freePort(), await freePort()];
  server = spawn(bin, ["serve", "--data", data, "--domain", "localhost", "--c2s", `127.0.0.1:${c2s}`, "--c2s-tls", `127.0.0.1:${tls}`, "--http", `127.0.0.1:${http}`], { stdio: "ignore" });
  const url = `http://localhost:${http}/`;
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${http}/healthz`)).ok) break;
    } catch {}
    if (i > 150) throw new Error("bluetick did not start in 15 s");
    await new Promise((r) => setTimeout(r, 100));
  }

  browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: ["--no-sandbox"] });
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const p = await ctx.newPage();
  const cdp = await ctx.newCDPSession(p);

  // 1. First load: the JavaScript fetched, as transferred (gzip).
  await p.goto(url, { waitUntil: "load" });
  const js = await p.evaluate(() =>
    performance.getEntriesByType("resource").filter((e) => e.name.endsWith(".js") && !e.name.endsWith("/sw.js")).map((e) => ({ name: e.name.split("/").pop(), transfer: e.transferSize, encoded: e.encodedBodySize, decoded: e.decodedBodySize })),
  );
  const jsGzip = js.reduce((s, e) => s + e.encoded, 0);

  // Sign in, so a reload goes to the chat list (with a FAST token).
  await p.fill("#addr", "alice");
  await p.fill("#pw", "alice-secret");
  await p.click("button[type=submit]");
  await p.waitForSelector(".side", { timeout: 20000 });

  // 2. 50 chats × 1,000 messages; the list after a reload.
  const t0 = Date.now();
  const chats = Array.from({ length: 50 }, (_, i) => ({ jid: `friend${String(i).padStart(2, "0")}@localhost`, n: 1000, prefix: `hello from friend ${i}, message`, unread: i % 5 === 0 ? 3 : 0 }));
  await seed(p, chats);
  const seedMs = Date.now() - t0;
  const untilShown = (sel) =>
    p.waitForFunction((sel) => (document.querySelector(sel) ? performance.now() : false), sel, { polling: "raf", timeout: 20000 }).then((h) => h.jsonValue());
  const list = [];
  for (let i = 0; i < RUNS; i++) {
    await p.reload({ waitUntil: "commit" });
    list.push(await untilShown(".chats .chat"));
    if ((await p.locator(".chats .chat").count()) !== 50) throw new Error("the list does not show the 50 chats");
  }

  // 4. The heap, 50 × 1,000, one chat open.
  await p.click('.chat[data-jid="friend00@localhost"]');
  await p.waitForSelector("section.main .msg");
  await cdp.send("HeapProfiler.collectGarbage");
  const heap = await cdp.send("Runtime.getHeapUsage");

  // 3. A chat of 10,000 messages, opened from the list.
  await seed(p, [{ jid: "long@localhost", n: 10000, prefix: "message" }]);
  const open = [];
  const dom = [];
  for (let i = 0; i < RUNS; i++) {
    await p.reload({ waitUntil: "commit" });
    await p.waitForSelector('.chat[data-jid="long@localhost"]');
    open.push(await p.evaluate(async () => {
      const t0 = performance.now();
      document.querySelector('.chat[data-jid="long@localhost"]').click();
      await new Promise((r) => { const f = () => (document.querySelector('section.main[aria-label="Chat with long"] .msg') ? r() : requestAnimationFrame(f)); f(); });
      return performance.now() - t0;
    }));
    dom.push(await p.locator("section.main .msg").count());
  }

  // Scrolling back: a page of older messages read and drawn.
  const page = [];
  let domMax = 0;
  for (let i = 0; i < 20; i++) {
    page.push(await p.evaluate(async () => {
      const el = document.querySelector("section.main .messages");
      const first = el.querySelector(".msg")?.dataset.key;
      const t0 = performance.now();
      el.scrollTop = 0;
      await new Promise((r, j) => {
        const end = t0 + 10000;
        const f = () => (el.querySelector(".msg")?.dataset.key !== first ? r() : performance.now() > end ? j(new Error("no older page")) : requestAnimationFrame(f));
        f();
      });
      return performance.now() - t0;
    }));
    domMax = Math.max(domMax, await p.locator("section.main .msg").count());
  }

  const kb = (n) => (n / 1024).toFixed(1) + " KB";
  const ok = (v, b) => (v <= b ? "within" : "OVER");
  console.log(`Bluetick Web budgets (chromium ${browser.version()}, ${new Date().toISOString().slice(0, 10)})`);
  console.log(`  first-load JS:      ${kb(jsGzip)} gzip (${js.map((e) => `${e.name} ${kb(e.encoded)} of ${kb(e.decoded)}`).join(", ")}); budget ${kb(BUDGET.js)}: ${ok(jsGzip, BUDGET.js)}`);
  console.log(`  chat list, reload:  ${fmt(list)} from navigation start, 50 chats × 1,000 messages; budget ${BUDGET.list} ms: ${ok(median(list), BUDGET.list)}`);
  console.log(`  open 10,000:        ${fmt(open)} from the click to the messages drawn, ${Math.max(...dom)} message elements in the DOM; budget ${BUDGET.open} ms: ${ok(median(open), BUDGET.open)}`);
  console.log(`  scrolling back:     ${fmt(page)} per page of older messages (scrollTop = 0 → drawn), at most ${domMax} message elements in the DOM`);
  console.log(`  JS heap:            ${(heap.usedSize / 1048576).toFixed(1)} MB used (of ${(heap.totalSize / 1048576).toFixed(1)} MB) after a GC, 50 chats × 1,000 messages in the store, one open`);
  console.log(`  (seeding 50,000 messages into IndexedDB took ${seedMs} ms)`);
  await finish(jsGzip <= BUDGET.js && median(list) <= BUDGET.list && median(open) <= BUDGET.open ? 0 : 1);
} catch (e) {
  console.error("bench:", e?.stack ?? e);
  await finish(2);
}
