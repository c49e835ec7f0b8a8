// Accounts and presence, on a server with registration = "open":
//  - carol signs up in the browser (XEP-0077), alice signs in;
//  - alice starts a chat with carol, which asks for her presence; carol
//    accepts in Contacts; both see each other;
//  - "online", then "typing…" while carol types, gone once she pauses;
//  - carol signs out (wiping her device): alice sees "last seen today at
//    HH:MM" from presence, and again after a reload from XEP-0012;
//  - carol's reloaded page is the sign-in form, her data gone.
import { emit, sleep, control, main, context, page, signIn, openChatWith, send, shot, cfg } from "./lib.mjs";

const status = (p) => p.evaluate(() => document.querySelector(".who .status")?.textContent ?? "");
async function waitStatus(p, re, timeout = 20000) {
  const end = Date.now() + timeout;
  for (;;) {
    const s = await status(p);
    if (re.test(s)) return s;
    if (Date.now() > end) throw new Error(`status "${s}", waited for ${re}`);
    await sleep(50);
  }
}

await main(async () => {
  const actx = await context();
  const cctx = await context();
  const alice = await page(actx, "alice");
  const carol = await page(cctx, "carol");

  // Sign up.
  await carol.fill("#addr", "carol");
  await carol.fill("#pw", "carol-secret");
  await carol.getByRole("button", { name: "Create account" }).click();
  await carol.waitForSelector(".side", { timeout: 15000 });
  emit("signed-up", { me: await carol.textContent(".me") });
  await signIn(alice, "alice");

  // A chat asks for presence; carol accepts.
  await openChatWith(alice, "carol");
  await send(alice, "Hi Carol, it's Alice");
  await carol.waitForSelector(".dot", { timeout: 15000 });
  await carol.getByRole("button", { name: "Contacts" }).click();
  const request = await carol.textContent(".req");
  await carol.getByRole("button", { name: "Accept" }).click();
  await carol.getByRole("button", { name: "Close" }).click();
  const online = await waitStatus(alice, /^online$/);

  // Typing.
  await openChatWith(carol, "alice");
  await carol.fill("textarea[aria-label=Message]", "I am typing a long");
  const typing = await waitStatus(alice, /typing/, 10000);
  const listTyping = await alice.evaluate(() => document.querySelector('.chat[data-jid="carol@localhost"] .typing')?.textContent ?? "");
  await shot(alice, "typing");
  const paused = await waitStatus(alice, /^online$/, 10000);
  await carol.fill("textarea[aria-label=Message]", "");
  emit("typing", { request, online, typing, list_typing: listTyping, after_pause: paused });

  // Last seen: carol signs out and wipes her device.
  await carol.getByRole("button", { name: "Sign out" }).click();
  await carol.getByLabel("Also delete the chats and messages kept on this device").check();
  await carol.locator("section.panel button.danger").click();
  await carol.waitForSelector("#addr", { timeout: 15000 });
  const lastSeen = await waitStatus(alice, /^last seen today at \d\d:\d\d$/, 15000);
  await shot(alice, "last-seen");
  const wiped = await carol.evaluate(async () => {
    const db = await new Promise((ok, fail) => {
      const r = indexedDB.open("bluetick");
      r.onsuccess = () => ok(r.result);
      r.onerror = () => fail(r.error);
    });
    const count = (name) => new Promise((ok) => {
      const r = db.transaction(name).objectStore(name).count();
      r.onsuccess = () => ok(r.result);
    });
    const out = { addr: document.querySelector("#addr").value, chats: await count("chats"), messages: await count("messages"), kv: await count("kv") };
    db.close();
    return out;
  });

  // After a reload alice knows nothing from presence: XEP-0012 tells.
  await alice.reload();
  await alice.waitForSelector(".side");
  await alice.waitForSelector(".banner", { state: "detached", timeout: 20000 });
  await openChatWith(alice, "carol");
  const lastSeenIQ = await waitStatus(alice, /^last seen today at \d\d:\d\d$/, 15000);
  emit("last-seen", { presence: lastSeen, iq: lastSeenIQ, carol_after_signout: wiped });

  // Alice's token is revoked (a lost device): the reloaded app asks for
  // the password again, keeps her chats, and signs in with it.
  await control("revoke-alice");
  await alice.reload();
  await alice.waitForSelector("#pw", { timeout: 20000 });
  const asked = { error: await alice.textContent(".error"), addr: await alice.inputValue("#addr") };
  await alice.fill("#pw", cfg.users.alice);
  await alice.click("button[type=submit]");
  await alice.waitForSelector('.chat[data-jid="carol@localhost"]', { timeout: 20000 });
  await alice.waitForSelector(".banner", { state: "detached", timeout: 20000 });
  emit("revoked", { ...asked, token_after: await alice.evaluate(() => new Promise((ok) => {
    const r = indexedDB.open("bluetick");
    r.onsuccess = () => {
      const q = r.result.transaction("kv").objectStore("kv").get("token");
      q.onsuccess = () => ok(Boolean(q.result?.token));
    };
  })) });
});
