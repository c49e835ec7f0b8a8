// Two browsers (alice, bob) sign in and chat. One message of alice's goes
// through every tick state, observed in her page's DOM:
//   pending  (🕐) while the server is frozen (SIGSTOP): no XEP-0198 ack
//   sent     (✓)  once the server acks it; bob's page is closed
//   delivered(✓✓) when bob's reopened app receives it (XEP-0184 receipt)
//   read     (blue) when bob opens the chat (XEP-0333 displayed)
// Then a chat screenshot with all four states at once, and a body of
// <img src=x onerror=alert(1)> that must stay text on bob's side.
import { cfg, emit, sleep, control, main, context, page, signIn, openChatWith, send, tickOf, waitTick, shot, swReady, dialogs } from "./lib.mjs";

await main(async () => {
  const actx = await context();
  const bctx = await context();
  const alice = await page(actx, "alice");
  let bob = await page(bctx, "bob");
  // Registration is closed by default: signing up says so.
  await alice.fill("#addr", "mallory");
  await alice.fill("#pw", "whatever");
  await alice.getByRole("button", { name: "Create account" }).click();
  emit("signup-closed", { error: await alice.textContent(".error", { timeout: 15000 }) });
  await signIn(alice, "alice");
  await signIn(bob, "bob");
  emit("signed-in", { alice_sw: await swReady(alice), bob_sw: await swReady(bob) });

  // carol writes first: alice's list has two chats, one unread.
  const cctx = await context();
  const carol = await page(cctx, "carol");
  await signIn(carol, "carol");
  await openChatWith(carol, "alice");
  await send(carol, "Lunch tomorrow? 🍝");
  await waitTick(carol, "Lunch tomorrow? 🍝", "delivered");
  await cctx.close();

  await openChatWith(alice, "bob");
  await send(alice, "hi bob");
  await waitTick(alice, "hi bob", "delivered");
  await bob.waitForSelector('.chat[data-jid="alice@localhost"] .unread');
  await openChatWith(bob, "alice");
  await waitTick(alice, "hi bob", "read");
  await send(bob, "hi alice!");
  await alice.waitForSelector(".msg.in >> text=hi alice!");

  // Record every data-tick value each of alice's messages shows, in order.
  await alice.evaluate(() => {
    window.__ticks = {};
    const note = (li, tick) => {
      const text = li.querySelector(".text")?.textContent;
      const l = (window.__ticks[text] ??= []);
      if (l.at(-1) !== tick) l.push(tick);
    };
    for (const li of document.querySelectorAll(".msg.out")) note(li, li.querySelector("[data-tick]")?.dataset.tick);
    new MutationObserver((records) => {
      for (const r of records) {
        if (r.type === "attributes") {
          const li = r.target.closest(".msg.out");
          if (li) {
            // oldValue first: two changes in one batch are both kept.
            note(li, r.oldValue);
            note(li, r.target.dataset.tick);
          }
        } else {
          for (const n of r.addedNodes) {
            if (n.nodeType !== 1) continue;
            for (const li of n.matches?.(".msg.out") ? [n] : n.querySelectorAll?.(".msg.out") ?? []) note(li, li.querySelector("[data-tick]")?.dataset.tick);
          }
        }
      }
    }).observe(document.querySelector(".messages"), { subtree: true, childList: true, attributes: true, attributeFilter: ["data-tick"], attributeOldValue: true });
  });

  // bob leaves: his page closes (his app data stays in his browser profile).
  await bob.close();
  await sleep(300);

  const text = "one tick at a time";
  await control("sigstop");
  await send(alice, text);
  await sleep(1500);
  const whileStopped = await tickOf(alice, text);
  await control("sigcont");
  await waitTick(alice, text, "sent");
  await sleep(1000);
  const withBobAway = await tickOf(alice, text);

  // bob comes back: the app opens from his local store, signs in with its
  // token, receives the message and sends a receipt.
  bob = await page(bctx, "bob");
  await bob.waitForSelector(".side");
  await bob.waitForSelector(`.chat[data-jid="alice@localhost"] .unread`, { timeout: 20000 });
  await waitTick(alice, text, "delivered");
  // Delivered, not read, while bob has not opened the chat.
  await sleep(1200);
  const beforeOpen = await tickOf(alice, text);
  await shot(bob, "chat-list");
  await openChatWith(bob, "alice");
  await waitTick(alice, text, "read");
  const sequence = await alice.evaluate((t) => window.__ticks[t], text);
  emit("ticks", { while_stopped: whileStopped, bob_away: withBobAway, before_open: beforeOpen, sequence });

  // A chat with all four states at once, for the screenshot: read (above),
  // delivered (bob online, chat closed), sent (bob away), pending (frozen).
  await bob.keyboard.press("Escape");
  await send(alice, "Are you coming tonight?");
  await waitTick(alice, "Are you coming tonight?", "delivered");
  await bob.close();
  await sleep(300);
  await send(alice, "I'll bring the cake 🎂");
  await waitTick(alice, "I'll bring the cake 🎂", "sent");
  await control("sigstop");
  await send(alice, "See you at eight");
  await sleep(500);
  const states = await alice.evaluate(() => [...document.querySelectorAll(".msg.out [data-tick]")].map((e) => e.dataset.tick));
  await shot(alice, "chat-ticks");
  await control("sigcont");
  emit("all-states", { states });

  // HTML in a body is text.
  bob = await page(bctx, "bob");
  await bob.waitForSelector(".side");
  await openChatWith(bob, "alice");
  const evil = "<img src=x onerror=alert(1)>";
  await send(alice, evil);
  await bob.waitForFunction((t) => [...document.querySelectorAll(".msg.in .text")].some((e) => e.textContent === t), evil, { timeout: 20000 });
  await sleep(500);
  const shown = await bob.evaluate(() => ({
    texts: [...document.querySelectorAll(".msg.in .text")].map((e) => e.textContent),
    imgs: document.querySelectorAll(".messages img").length,
    preview: document.querySelector('.chat[data-jid="alice@localhost"] .preview')?.textContent ?? "",
  }));
  emit("html-body", { ...shown, dialogs: dialogs.length });

  // Phone size: one pane at a time.
  await bob.setViewportSize({ width: 390, height: 760 });
  await sleep(200);
  const phone = await bob.evaluate(() => ({
    list: getComputedStyle(document.querySelector(".side")).display,
    chat: getComputedStyle(document.querySelector(".main")).display,
  }));
  await shot(bob, "phone-chat");
  await bob.keyboard.press("Escape");
  await sleep(200);
  const phoneList = await bob.evaluate(() => getComputedStyle(document.querySelector(".side")).display);
  emit("phone", { chat_open: phone, list_after_back: phoneList });
});
