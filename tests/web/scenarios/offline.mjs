// The local store and the outgoing queue:
//  1. history with no network: the server is stopped, bob reloads, and his
//     chat list and history show from IndexedDB (the service worker serves
//     the app), with the offline banner;
//  2. a message alice types while the server is down stays 🕐 across a
//     reload and is delivered exactly once when the server is back;
//  3. a message written to a frozen server's socket, then the page
//     reloaded: the server gets it on the old socket AND the app sends it
//     again on a new session (not resumed); bob shows it once.
import { emit, sleep, control, main, context, page, signIn, openChatWith, send, tickOf, waitTick, shot, swReady, online, received, smMiscounts } from "./lib.mjs";

const count = (p, text) => p.evaluate((t) => [...document.querySelectorAll(".msg .text")].filter((e) => e.textContent === t).length, text);

await main(async () => {
  const actx = await context();
  const bctx = await context();
  let alice = await page(actx, "alice");
  let bob = await page(bctx, "bob");
  await signIn(alice, "alice");
  await signIn(bob, "bob");
  await openChatWith(alice, "bob");
  await send(alice, "before the outage");
  await waitTick(alice, "before the outage", "delivered", 20000, true);
  await openChatWith(bob, "alice");
  await waitTick(alice, "before the outage", "read");
  emit("ready", { alice_sw: await swReady(alice), bob_sw: await swReady(bob) });

  // 0. The server goes away and comes back: both pages reconnect by
  // themselves (backoff), no reload.
  await control("stop");
  await alice.waitForSelector(".banner", { timeout: 15000 });
  await sleep(2500);
  await control("start");
  await online(alice, 30000);
  await online(bob, 30000);
  await send(alice, "after the restart");
  await waitTick(alice, "after the restart", "sent", 20000, true);
  await bob.waitForFunction((t) => [...document.querySelectorAll(".msg .text")].some((e) => e.textContent === t), "after the restart", { timeout: 20000 });
  // Bob's receipt comes after the store's drain to alice's new session,
  // which ends when her client acknowledges the drained messages: a count
  // that left out iq results (as @xmpp/client's own does) held it forever.
  await waitTick(alice, "after the restart", "delivered", 20000, true);
  emit("reconnected", { bob_got: await count(bob, "after the restart"), alice_tick: await tickOf(alice, "after the restart") });

  // 1. No server at all: reload shows everything from the local store.
  await control("stop");
  const t0 = Date.now();
  await bob.reload();
  await bob.waitForSelector('.chat[data-jid="alice@localhost"]', { timeout: 15000 });
  const listMs = Date.now() - t0;
  await openChatWith(bob, "alice");
  const history = await bob.evaluate(() => [...document.querySelectorAll(".msg .text")].map((e) => e.textContent));
  const banner = await bob.evaluate(() => document.querySelector(".banner")?.textContent ?? "");
  await shot(bob, "offline-history");
  emit("offline-reload", { list_ms: listMs, history, banner });

  // 2. Typed while the server is down, page reloaded, server back.
  const text = "typed while offline";
  await send(alice, text);
  await sleep(300);
  const before = await tickOf(alice, text);
  await alice.reload();
  await alice.waitForSelector('.chat[data-jid="bob@localhost"]', { timeout: 15000 });
  await openChatWith(alice, "bob");
  const afterReload = await tickOf(alice, text);
  await control("start");
  await waitTick(alice, text, "delivered", 30000, true);
  await online(bob, 30000);
  await bob.waitForFunction((t) => [...document.querySelectorAll(".msg .text")].some((e) => e.textContent === t), text, { timeout: 20000 });
  await sleep(1500);
  emit("queued", { before, after_reload: afterReload, bob_count: await count(bob, text), alice_count: await count(alice, text) });

  // 3. Sent into a frozen server's socket, then the page reloaded: the
  // message reaches the server twice (old socket, new session).
  await online(alice);
  const twice = "sent twice, shown once";
  await control("sigstop");
  await send(alice, twice);
  await sleep(800); // on the wire, unacknowledged
  const frozen = await tickOf(alice, twice);
  await alice.reload();
  await alice.waitForSelector('.chat[data-jid="bob@localhost"]', { timeout: 15000 });
  await control("sigcont");
  await openChatWith(alice, "bob");
  await waitTick(alice, twice, "delivered", 30000, true);
  await bob.waitForFunction((t) => [...document.querySelectorAll(".msg .text")].some((e) => e.textContent === t), twice, { timeout: 20000 });
  await sleep(2000);
  emit("sm", { alice: smMiscounts(alice), bob: smMiscounts(bob) });
  emit("resent", { frozen, bob_received: received(bob, twice), bob_count: await count(bob, twice), alice_count: await count(alice, twice), bob_texts: await bob.evaluate(() => [...document.querySelectorAll(".msg .text")].map((e) => e.textContent)) });
});
