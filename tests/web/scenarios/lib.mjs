// Shared by the browser scenarios: the config from the Go harness, the
// browser, signing a user in, server control, facts on stdout.
import { createRequire } from "node:module";
import { join } from "node:path";

export const cfg = JSON.parse(process.argv[2]);
const require = createRequire(join(cfg.webDir, "package.json"));
const { chromium } = require("playwright-core");

export const emit = (event, fields = {}) => process.stdout.write(JSON.stringify({ event, ...fields }) + "\n");
const t0 = Date.now();
export const log = (...a) => process.stderr.write(`${((Date.now() - t0) / 1000).toFixed(2)} ${a.join(" ")}\n`);
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// control asks the harness to act on the server: sigstop, sigcont, stop, start.
export async function control(action) {
  log(`[control] ${action}`);
  const res = await fetch(cfg.control + "/" + action);
  if (!res.ok) throw new Error(`control ${action}: ${res.status} ${await res.text()}`);
}

const consoleErrors = [];
const networkErrors = [];
export const dialogs = [];
let browser;
// launchArgs: extra chromium flags a scenario pushes before main() (the
// media scenario's fake microphone).
export const launchArgs = [];

export async function launch() {
  browser = await chromium.launch({ executablePath: cfg.chromium, args: ["--no-sandbox", ...launchArgs] });
  return browser;
}

// page opens the app in a context (one browser profile per user) and
// watches the console.
export async function page(ctx, who) {
  const p = await ctx.newPage();
  p.on("console", (m) => {
    log(`[${who} console.${m.type()}] ${m.text()}`);
    if (m.type() !== "error") return;
    // Chromium itself logs a refused connection while a scenario has the
    // server stopped; the app cannot silence that, and it is no app error.
    if (/^(WebSocket connection to '.*' failed: .*net::ERR_CONNECTION_REFUSED|Failed to load resource: net::ERR_CONNECTION_REFUSED)/.test(m.text())) {
      networkErrors.push(`${who}: ${m.text()}`);
      return;
    }
    consoleErrors.push(`${who}: ${m.text()}`);
  });
  p.on("pageerror", (e) => {
    log(`[${who} pageerror] ${e.stack ?? e}`);
    consoleErrors.push(`${who}: pageerror ${e.message}`);
  });
  p.on("dialog", (d) => {
    dialogs.push(`${who}: ${d.type()} ${d.message()}`);
    d.dismiss().catch(() => {});
  });
  // What the page's WebSockets receive, to count copies on the wire.
  p.frames_in = [];
  p.sm = []; // per WebSocket, in order: ["in"|"out", payload]
  p.on("websocket", (ws) => {
    const frames = [];
    p.sm.push(frames);
    ws.on("framereceived", (f) => {
      p.frames_in.push(String(f.payload));
      frames.push(["in", String(f.payload)]);
    });
    ws.on("framesent", (f) => frames.push(["out", String(f.payload)]));
    if (process.env.BLUETICK_WEB_VERBOSE === "1") {
      ws.on("framesent", (f) => log(`[${who} ws send] ${String(f.payload).slice(0, 400)}`));
      ws.on("framereceived", (f) => log(`[${who} ws recv] ${String(f.payload).slice(0, 400)}`));
      ws.on("close", () => log(`[${who} ws closed]`));
    }
  });
  await p.goto(cfg.url);
  return p;
}

export async function context(viewport = { width: 1180, height: 760 }) {
  return browser.newContext({ viewport, locale: "en-GB", timezoneId: "UTC" });
}

// signIn fills the form with the user name only (the domain comes from
// the server) and waits for the chat list.
export async function signIn(p, user) {
  await p.fill("#addr", user);
  await p.fill("#pw", cfg.users[user]);
  await p.click("button[type=submit]");
  await p.waitForSelector(".side", { timeout: 15000 });
  await online(p);
}

export const online = (p, timeout = 20000) => p.waitForSelector(".banner", { state: "detached", timeout });

// The service worker controls the page (the app shell is cached).
export const swReady = (p) => p.evaluate(() => navigator.serviceWorker.ready.then(() => Boolean(navigator.serviceWorker.controller)));

export async function openChatWith(p, user) {
  const jid = `${user}@${cfg.domain}`;
  const row = p.locator(`.chat[data-jid="${jid}"]`);
  if ((await row.count()) === 0) {
    await p.getByRole("button", { name: "New chat" }).click();
    await p.fill("#newchat", user);
    await p.press("#newchat", "Enter");
  } else {
    await row.click();
  }
  await p.waitForSelector(`section.main[aria-label="Chat with ${user}"]`);
}

export async function send(p, text) {
  await p.fill("textarea[aria-label=Message]", text);
  await p.press("textarea[aria-label=Message]", "Enter");
}

// tickOf is the data-tick of the message with that text (last one).
export async function tickOf(p, text) {
  return p.evaluate((text) => {
    const msgs = [...document.querySelectorAll(".msg.out")].filter((m) => m.querySelector(".text")?.textContent === text);
    return msgs.at(-1)?.querySelector("[data-tick]")?.dataset.tick ?? null;
  }, text);
}

const ORDER = ["pending", "sent", "delivered", "read"];

// waitTick waits until the message shows tick (or, with atLeast, a later one).
export async function waitTick(p, text, tick, timeout = 20000, atLeast = false) {
  const end = Date.now() + timeout;
  for (;;) {
    const t = await tickOf(p, text);
    if (t === tick || (atLeast && ORDER.indexOf(t) > ORDER.indexOf(tick))) return;
    if (Date.now() > end) throw new Error(`"${text}": tick ${t}, waited for ${tick}`);
    await sleep(50);
  }
}

export async function shot(p, name) {
  const path = join(cfg.shots, name + ".png");
  await p.screenshot({ path });
  emit("screenshot", { path });
}

// main runs a scenario, reports console errors, and exits.
export async function main(fn) {
  const killer = setTimeout(() => {
    emit("error", { error: "scenario timed out" });
    process.exit(3);
  }, 110000);
  try {
    await launch();
    await fn();
    emit("console-errors", { errors: consoleErrors, network: networkErrors, dialogs });
    emit("done");
  } catch (e) {
    // What each page showed when it failed.
    let i = 0;
    for (const ctx of browser?.contexts() ?? []) {
      for (const p of ctx.pages()) {
        const path = join(cfg.shots, `failed-${cfg.name ?? "scenario"}-${i++}.png`);
        await p.screenshot({ path, timeout: 5000 }).then(() => log(`[failure screenshot] ${path}`)).catch(() => {});
        log(`[failure page ${i - 1}] ${await p.evaluate(() => document.body.innerText.slice(0, 500)).catch((e) => e.message)}`);
      }
    }
    emit("console-errors", { errors: consoleErrors, network: networkErrors, dialogs });
    emit("error", { error: String(e?.stack ?? e) });
    process.exitCode = 1;
  } finally {
    clearTimeout(killer);
    await browser?.close().catch(() => {});
  }
}

// smMiscounts checks the page's XEP-0198 acknowledgements: every <a h=N/>
// it sent must count every stanza (message, presence, iq) it had received
// since stream management was enabled on that WebSocket (<enabled/>, or
// SASL2's <success/> with Bind2's inline enable, or <resumed/> with its
// h). It returns the acks that did not, as "sent h=N after M stanzas".
export function smMiscounts(p) {
  const bad = [];
  for (const frames of p.sm) {
    let n = null;
    for (const [dir, f] of frames) {
      if (dir === "in") {
        const resumed = /<resumed [^>]*xmlns='urn:xmpp:sm:3'/.test(f) || /<resumed xmlns='urn:xmpp:sm:3'/.test(f);
        if (resumed) n = null; // the client's own count goes on; not checked after a resumption
        else if (/<enabled [^>]*xmlns='urn:xmpp:sm:3'|<enabled xmlns='urn:xmpp:sm:3'/.test(f)) n = 0;
        else if (n !== null && /^<(message|presence|iq)[ >]/.test(f)) n++;
      } else if (n !== null) {
        const m = /^<a xmlns="urn:xmpp:sm:3" h="(\d+)"/.exec(f);
        if (m && +m[1] !== n) bad.push(`sent h=${m[1]} after ${n} stanzas`);
      }
    }
  }
  return bad;
}

// received counts the message stanzas with that body the page's
// WebSockets received.
export const received = (p, text) => p.frames_in.filter((f) => f.startsWith("<message") && f.includes(`<body>${text}</body>`)).length;

// plainChat turns end-to-end encryption off for the open chat (its
// encryption sheet's "Encrypt this chat"), for scenarios that read the
// wire as a client without OMEMO would (e2e.mjs tests encryption).
export async function plainChat(p) {
  await p.click(".lock-btn");
  const box = p.getByLabel("Encrypt this chat");
  if (await box.isChecked()) await box.uncheck();
  await p.click('.e2e-sheet [aria-label="Close"]');
  await p.waitForSelector('.lock-btn[data-e2e="off"]');
}

// storedFile is what the page keeps in IndexedDB (e2efiles) for the
// message with that key: the decrypted file's SHA-256 and type.
export const storedFile = (p, key) =>
  p.evaluate(async (key) => {
    const stored = await new Promise((resolve, reject) => {
      const r = indexedDB.open("bluetick");
      r.onsuccess = () => {
        const q = r.result.transaction("e2efiles").objectStore("e2efiles").get(key);
        q.onsuccess = () => { resolve(q.result?.blob ?? null); r.result.close(); };
        q.onerror = () => reject(q.error);
      };
      r.onerror = () => reject(r.error);
    });
    if (!stored) return { sha: "", type: "" };
    const d = new Uint8Array(await crypto.subtle.digest("SHA-256", await stored.arrayBuffer()));
    return { sha: [...d].map((b) => b.toString(16).padStart(2, "0")).join(""), type: stored.type };
  }, key ?? "");
