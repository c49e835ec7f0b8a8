// Settings, profile, notifications and push:
//  - alice and bob become contacts; alice sets her name and a photo
//    (icon-512.png, resized to 192 px); bob's list and chat header show
//    them, from the PEP notifications, and the photo is cached in IndexedDB;
//  - alice's last-seen setting goes to "nobody" and reads back after a reload;
//  - alice blocks bob from the chat menu: his message does not arrive; she
//    unblocks him in Settings and his next one does;
//  - with the page not looked at, a message shows a browser notification
//    ("New message from bob"), with its text only once previews are on;
//  - Web Push: this chromium has no push service, so turning it on says so
//    in Settings; a push delivered through the DevTools protocol makes the
//    service worker show "New message";
//  - carol's browser gets a push subscription whose endpoint is the Go
//    test's loopback HTTPS server (PushManager.subscribe replaced, as a
//    browser with a push service would answer); the app registers it with
//    the server's gateway and enables XEP-0357; carol leaves; alice's
//    message to her makes the gateway POST an encrypted push there (the Go
//    test decrypts it).
import { join } from "node:path";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { createRequire } from "node:module";
import { emit, sleep, main, context, page, signIn, openChatWith, send, shot, waitTick, tickOf, cfg } from "./lib.mjs";

const origin = new URL(cfg.url).origin;
const until = async (what, fn, timeout = 20000) => {
  const end = Date.now() + timeout;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`waited ${timeout} ms for ${what}`);
    await sleep(50);
  }
};
const notifications = (p) => p.evaluate(async () => {
  const reg = await navigator.serviceWorker.ready;
  return (await reg.getNotifications()).map((n) => ({ title: n.title, body: n.body, tag: n.tag }));
});
const clearNotifications = (p) => p.evaluate(async () => {
  for (const n of await (await navigator.serviceWorker.ready).getNotifications()) n.close();
});
const texts = (p) => p.evaluate(() => [...document.querySelectorAll(".msg .text")].map((e) => e.textContent));

// Alice's profile is a persistent one, as a person's browser is: in an
// incognito context (playwright's newContext) Chrome refuses push
// subscriptions and logs an error of its own; in a normal profile Debian's
// chromium, which has no push service, never answers the subscription.
const { chromium } = createRequire(join(cfg.webDir, "package.json"))("playwright-core");
const profile = mkdtempSync(join(tmpdir(), "bluetick-settings-alice-"));
let actx;

await main(async () => {
  actx = await chromium.launchPersistentContext(profile, {
    executablePath: cfg.chromium, args: ["--no-sandbox"],
    viewport: { width: 1180, height: 760 }, locale: "en-GB", timezoneId: "UTC",
  });
  const bctx = await context();
  await actx.grantPermissions(["notifications"], { origin });
  const alice = await page(actx, "alice");
  const bob = await page(bctx, "bob");
  await signIn(alice, "alice");
  await signIn(bob, "bob");

  // Contacts both ways (presence subscription), so PEP notifications flow.
  await openChatWith(alice, "bob");
  await send(alice, "Hi Bob, look at my new photo");
  await bob.waitForSelector(".dot", { timeout: 15000 });
  await bob.getByRole("button", { name: "Contacts" }).click();
  await bob.getByRole("button", { name: "Accept" }).click();
  await bob.getByRole("button", { name: "Close", exact: true }).click();
  await alice.waitForSelector('.who .status[data-status="online"]', { timeout: 20000 });

  // Profile: name and photo.
  await alice.getByRole("button", { name: "Settings" }).click();
  await alice.fill("#nick", "Alice Liddell");
  await alice.getByRole("button", { name: "Save" }).click();
  await alice.waitForSelector('[data-msg="name"]:text("Name saved.")');
  // A 480×320 "photo" (a landscape drawn in a canvas), cropped to the
  // middle square and scaled to 192 px by the app.
  const photo = await alice.evaluate(async () => {
    const c = new OffscreenCanvas(480, 320);
    const g = c.getContext("2d");
    const sky = g.createLinearGradient(0, 0, 0, 320);
    sky.addColorStop(0, "#ff9a5a");
    sky.addColorStop(1, "#ffd98a");
    g.fillStyle = sky;
    g.fillRect(0, 0, 480, 320);
    g.fillStyle = "#fff3c4";
    g.beginPath();
    g.arc(240, 150, 60, 0, 7);
    g.fill();
    g.fillStyle = "#2e7d5b";
    g.beginPath();
    g.moveTo(0, 320);
    g.quadraticCurveTo(140, 150, 300, 250);
    g.quadraticCurveTo(400, 200, 480, 230);
    g.lineTo(480, 320);
    g.fill();
    g.fillStyle = "#1f5a41";
    g.fillRect(0, 285, 480, 35);
    return [...new Uint8Array(await (await c.convertToBlob({ type: "image/png" })).arrayBuffer())];
  });
  await alice.setInputFiles("#avatar-file", { name: "sunset.png", mimeType: "image/png", buffer: Buffer.from(photo) });
  await alice.waitForSelector('[data-msg="photo"]:text("Photo saved.")', { timeout: 15000 });
  const own = await alice.locator('.settings img.avatar.photo').evaluate((i) => i.complete && i.naturalWidth);

  const row = bob.locator('.chat[data-jid="alice@localhost"]');
  await row.locator("img.avatar.photo").waitFor({ timeout: 20000 });
  await until("alice's name on bob's list", async () => (await row.locator(".name").textContent()) === "Alice Liddell");
  await row.click();
  await bob.waitForSelector('section.main[aria-label="Chat with Alice Liddell"] header img.avatar.photo');
  const size = await bob.locator("section.main header img.avatar.photo").evaluate((i) => new Promise((ok) => {
    const r = () => ok({ w: i.naturalWidth, h: i.naturalHeight });
    i.complete ? r() : (i.onload = r);
  }));
  const cached = await bob.evaluate(() => new Promise((ok, fail) => {
    const r = indexedDB.open("bluetick");
    r.onerror = () => fail(r.error);
    r.onsuccess = () => {
      const g = r.result.transaction("avatars").objectStore("avatars").get("alice@localhost");
      g.onsuccess = () => { ok(g.result ? { id: g.result.id, type: g.result.type, bytes: g.result.blob.size } : null); r.result.close(); };
    };
  }));
  await send(bob, "Nice photo!");
  await waitTick(bob, "Nice photo!", "read");
  await shot(bob, "chat-avatar");
  emit("profile", { own_width: own, header: size, name: await bob.textContent("section.main header .name"), cached });

  // Last seen: nobody, read back from the server after a reload.
  await alice.selectOption("#lastseen", "nobody");
  await sleep(0);
  await alice.reload();
  await alice.waitForSelector(".side");
  await alice.waitForSelector(".banner", { state: "detached", timeout: 20000 });
  await alice.getByRole("button", { name: "Settings" }).click();
  const lastSeen = await until("the last-seen setting", async () => (await alice.inputValue("#lastseen")) || null);
  emit("last-seen", { after_reload: lastSeen });
  await alice.getByRole("button", { name: "Close", exact: true }).click();

  // Block bob from the chat menu; his message does not arrive; unblock
  // him in Settings; the next one does.
  await openChatWith(alice, "bob");
  await alice.getByRole("button", { name: "Chat menu" }).click();
  await alice.getByRole("menuitem", { name: "Block bob" }).click();
  await alice.waitForSelector(".blocked-note");
  await alice.getByRole("button", { name: "Settings" }).click();
  const blockedList = await alice.locator(".blocked li").evaluateAll((l) => l.map((e) => e.dataset.jid));
  await send(bob, "while you blocked me");
  // Unblock only once the server has it (✓; bob's client encrypts first,
  // and an unblock before it arrives would let it through). bob keeps his
  // single ✓, as WhatsApp does: a block is not told to the blocked.
  await waitTick(bob, "while you blocked me", "sent", 30000);
  await alice.locator('.blocked li[data-jid="bob@localhost"]').getByRole("button", { name: "Unblock" }).click();
  await alice.waitForSelector(".blocked li", { state: "detached" });
  await send(bob, "after the unblock");
  await alice.getByRole("button", { name: "Close", exact: true }).click();
  await until("bob's message after the unblock", async () => (await texts(alice)).includes("after the unblock"));
  emit("block", { list: blockedList, texts: await texts(alice), sender_tick: await tickOf(bob, "while you blocked me") });

  // Notifications: the Web Push attempt fails here (no push service) with
  // a message in Settings; the browser notification works in the tab.
  await alice.getByRole("button", { name: "Settings" }).click();
  await alice.getByRole("button", { name: /Also notify me when Bluetick is closed/ }).click();
  const pushMsg = await alice.locator('[data-push="unavailable"], [data-push="error"], [data-push="on"]').first().textContent({ timeout: 20000 });
  const pushState = await alice.locator('[data-push="unavailable"], [data-push="error"], [data-push="on"]').first().getAttribute("data-push");
  await shot(alice, "settings");

  // The page is not looked at (another window has the focus; the test
  // says so to the page, as headless chromium never hides it).
  await alice.getByRole("button", { name: "Close", exact: true }).click();
  await alice.evaluate(() => {
    Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "hidden" });
    document.hasFocus = () => false;
  });
  await clearNotifications(alice);
  await send(bob, "secret plans for Friday");
  const n1 = await until("a notification", async () => (await notifications(alice)).find((n) => n.tag === "chat:bob@localhost"));
  await clearNotifications(alice);
  await alice.evaluate(() => {
    delete document.visibilityState;
    delete document.hasFocus;
  });
  await alice.getByRole("button", { name: "Settings" }).click();
  await alice.check("#previews");
  await alice.getByRole("button", { name: "Close", exact: true }).click();
  await alice.evaluate(() => {
    Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "hidden" });
    document.hasFocus = () => false;
  });
  await send(bob, "see you at noon");
  const n2 = await until("a notification with a preview", async () => (await notifications(alice)).find((n) => n.tag === "chat:bob@localhost"));
  await alice.evaluate(() => {
    delete document.visibilityState;
    delete document.hasFocus;
  });
  await clearNotifications(alice);
  emit("notifications", { push_state: pushState, push_message: pushMsg, without_preview: n1, with_preview: n2 });

  // A push delivered to the service worker through the DevTools protocol.
  await alice.evaluate(() => {
    window.pushShown = [];
    navigator.serviceWorker.addEventListener("message", (e) => e.data?.type === "push-shown" && window.pushShown.push(e.data.title));
  });
  const cdp = await actx.newCDPSession(alice);
  const regs = new Map();
  cdp.on("ServiceWorker.workerRegistrationUpdated", (e) => {
    for (const r of e.registrations) if (!r.isDeleted) regs.set(r.scopeURL, r.registrationId);
  });
  await cdp.send("ServiceWorker.enable");
  const regId = await until("the service worker registration", async () => regs.get(origin + "/"));
  await cdp.send("ServiceWorker.deliverPushMessage", { origin, registrationId: regId, data: JSON.stringify({ node: "x", count: 1 }) });
  const shown = await until("the push notification", async () => (await notifications(alice)).find((n) => n.tag === "bluetick-push"));
  const posted = await until("the page told of the push", () => alice.evaluate(() => window.pushShown.length && window.pushShown));
  emit("push-cdp", { notification: shown, posted });

  // Carol: a browser with a push service (its subscription is the test's
  // loopback endpoint and keys); the app registers it and enables push.
  const sub = JSON.parse(process.env.BLUETICK_TEST_PUSH ?? "null");
  if (!sub) throw new Error("BLUETICK_TEST_PUSH is not set");
  const cctx = await context();
  await cctx.grantPermissions(["notifications"], { origin });
  await cctx.addInitScript((sub) => {
    const fake = (key) => ({
      endpoint: sub.endpoint,
      options: { applicationServerKey: key, userVisibleOnly: true },
      toJSON: () => ({ endpoint: sub.endpoint, expirationTime: null, keys: { p256dh: sub.p256dh, auth: sub.auth } }),
      unsubscribe: async () => true,
    });
    PushManager.prototype.getSubscription = async () => null;
    PushManager.prototype.subscribe = async (o) => {
      window.subscribedWithKey = btoa(String.fromCharCode(...new Uint8Array(o.applicationServerKey))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
      return fake(o.applicationServerKey);
    };
  }, sub);
  const carol = await page(cctx, "carol");
  await signIn(carol, "carol");
  await carol.getByRole("button", { name: "Settings" }).click();
  await carol.getByRole("button", { name: /Also notify me when Bluetick is closed/ }).click();
  const on = await carol.locator('[data-push="on"], [data-push="error"], [data-push="unavailable"]').first();
  const carolPush = { state: await on.getAttribute("data-push"), text: await on.textContent(), key: await carol.evaluate(() => window.subscribedWithKey) };
  await cctx.close(); // carol goes away: no session left
  await openChatWith(alice, "carol");
  await send(alice, "a secret for carol");
  const count = await until("the push at the test's endpoint", async () => {
    const n = Number(await (await fetch(sub.count)).text());
    return n > 0 && n;
  });
  emit("push-server", { ...carolPush, posts: count });
});

await actx?.close().catch(() => {});
rmSync(profile, { recursive: true, force: true });
