// A chat of 10,000 messages (seeded into the local store): it opens on its
// last page with a few hundred message elements at most in the DOM;
// scrolling to the top reads older pages (and drops newer ones); ↓ goes back to the latest. Then the unread
// separator, search in the chat, the emoji picker.
import { emit, main, context, page, signIn, shot } from "./lib.mjs";
import { seed } from "./seed.mjs";

const dom = (p) => p.evaluate(() => document.querySelectorAll("section.main .msg").length);
const texts = (p) => p.evaluate(() => [...document.querySelectorAll("section.main .msg .text")].map((e) => e.textContent));
const num = (t) => Number(t.split(" ")[1]);

await main(async () => {
  const alice = await page(await context(), "alice");
  await signIn(alice, "alice");
  await seed(alice, [
    { jid: "bob@localhost", n: 10000, prefix: "message" },
    { jid: "dave@localhost", n: 20, unread: 3, prefix: "read" },
  ]);
  await alice.reload();
  await alice.waitForSelector('.chat[data-jid="bob@localhost"]');

  const openMs = await alice.evaluate(async () => {
    const t0 = performance.now();
    document.querySelector('.chat[data-jid="bob@localhost"]').click();
    await new Promise((r) => { const f = () => (document.querySelector("section.main .msg") ? r() : requestAnimationFrame(f)); f(); });
    return performance.now() - t0;
  });
  const domOpen = await dom(alice);
  const open = await texts(alice);
  let domMax = domOpen;
  let oldest = num(open[0]);
  // Scroll to the top again and again: each time a page of older ones
  // (ten times: all the way up takes 125).
  let first = open[0];
  const end = Date.now() + 30000;
  for (let i = 0; i < 10 && Date.now() < end; i++) {
    await alice.evaluate(() => { document.querySelector("section.main .messages").scrollTop = 0; });
    await alice.waitForFunction((f) => document.querySelector("section.main .msg .text")?.textContent !== f, first, { timeout: 10000 });
    first = (await texts(alice))[0];
    oldest = Math.min(oldest, num(first));
    domMax = Math.max(domMax, await dom(alice));
  }
  await alice.getByRole("button", { name: "Go to the latest messages" }).click();
  await alice.waitForFunction(() => [...document.querySelectorAll("section.main .msg .text")].at(-1)?.textContent === "message 9999", null, { timeout: 10000 });
  emit("scale", { open_ms: Math.round(openMs), dom_open: domOpen, last_shown: open.at(-1), oldest_open: num(open[0]), oldest_seen: oldest, dom_max: domMax, newer_reloaded: true });

  // The unread separator.
  await alice.click('.chat[data-jid="dave@localhost"]');
  await alice.waitForSelector(".unread-sep");
  const sep = await alice.evaluate(() => {
    const s = document.querySelector(".unread-sep");
    return { text: s.textContent.trim(), after: s.nextElementSibling?.querySelector(".text")?.textContent ?? "" };
  });
  emit("unread", { separator: sep.text, after: sep.after });
  await shot(alice, "unread");

  // Search in bob's chat.
  await alice.click('.chat[data-jid="bob@localhost"]');
  await alice.waitForSelector('section.main[aria-label="Chat with bob"] .msg');
  await alice.getByRole("button", { name: "Search in this chat" }).click();
  await alice.getByRole("searchbox", { name: "Search messages" }).fill("message 424");
  await alice.waitForSelector('.search-count[data-hits="11"]');
  await alice.waitForSelector(".msg.hit");
  const hit = await alice.evaluate(() => ({
    count: document.querySelector(".search-count").textContent,
    highlighted: document.querySelector(".msg.hit .text").textContent,
    mark: document.querySelector(".msg.hit mark")?.textContent ?? "",
    visible: (() => {
      const r = document.querySelector(".msg.hit").getBoundingClientRect();
      const l = document.querySelector("section.main .messages").getBoundingClientRect();
      return r.top >= l.top && r.bottom <= l.bottom;
    })(),
  }));
  emit("search", { hits: 11, ...hit });
  await shot(alice, "search");
  await alice.getByRole("button", { name: "Close search" }).click();

  // The emoji picker.
  await alice.fill("textarea[aria-label=Message]", "hey ");
  await alice.getByRole("button", { name: "Emoji" }).click();
  await alice.getByRole("dialog", { name: "Emoji" }).getByRole("button", { name: "😂" }).click();
  emit("emoji", { composer: await alice.inputValue("textarea[aria-label=Message]") });
});
