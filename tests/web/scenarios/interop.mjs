// Bluetick Web (alice) with clients no one here wrote, both ways, with
// receipts. The Go test runs slixmpp as bob (peers/slix_web.py: it sends
// "hello from slixmpp" first, answers each message, marks "read this" as
// displayed, ends on "bye") and profanity as carol, driven through
// $BLUETICK_TEST_PROFANITY (/type?line=…, /wait?text=…).
import { emit, sleep, main, context, page, signIn, openChatWith, send, shot, waitTick, tickOf, cfg } from "./lib.mjs";

const prof = process.env.BLUETICK_TEST_PROFANITY;
async function profanity(what, arg) {
  const q = what === "type" ? "line" : "text";
  const res = await fetch(`${prof}/${what}?${q}=${encodeURIComponent(arg)}`);
  if (!res.ok) throw new Error(`profanity ${what} ${arg}: ${res.status} ${await res.text()}`);
}
const texts = (p) => p.evaluate(() => [...document.querySelectorAll(".msg.in .text")].map((e) => e.textContent));
async function waitText(p, text, timeout = 25000) {
  const end = Date.now() + timeout;
  while (!(await texts(p)).includes(text)) {
    if (Date.now() > end) throw new Error(`"${text}" not shown after ${timeout} ms`);
    await sleep(50);
  }
  return text;
}

await main(async () => {
  if (!prof) throw new Error("BLUETICK_TEST_PROFANITY is not set");
  const ctx = await context();
  const alice = await page(ctx, "alice");
  await signIn(alice, "alice");

  // slixmpp → app: its message shows; opening the chat sends the receipt
  // (on arrival) and the displayed marker (seen).
  await alice.waitForSelector('.chat[data-jid="bob@localhost"]', { timeout: 25000 });
  await openChatWith(alice, "bob");
  const incoming = await waitText(alice, "hello from slixmpp");

  // app → slixmpp: ✓✓ from its automatic receipt; blue from its marker.
  await send(alice, "hi slixmpp, ack please");
  await waitTick(alice, "hi slixmpp, ack please", "delivered", 20000);
  const ack = await tickOf(alice, "hi slixmpp, ack please");
  await waitText(alice, "slixmpp got: hi slixmpp, ack please");
  await send(alice, "hi slixmpp, read this");
  await waitTick(alice, "hi slixmpp, read this", "read", 20000);
  const reply = await waitText(alice, "slixmpp got: hi slixmpp, read this");
  await shot(alice, "interop-slixmpp");
  emit("slixmpp", { incoming, ack, read: await tickOf(alice, "hi slixmpp, read this"), reply });
  await send(alice, "bye");
  await waitTick(alice, "bye", "delivered", 20000);

  // profanity: contacts first (so each sees the other's capabilities),
  // then profanity → app, then app → profanity.
  await openChatWith(alice, "carol");
  await profanity("wait", "Received authorization request from alice@localhost");
  await profanity("type", "/sub allow alice@localhost");
  await profanity("type", "/sub request alice@localhost");
  await alice.waitForSelector('.who .status[data-status="online"]', { timeout: 25000 });
  await profanity("type", "/msg alice@localhost");
  await profanity("type", "hello from profanity");
  const pin = await waitText(alice, "hello from profanity");
  await send(alice, "hi profanity");
  await waitTick(alice, "hi profanity", "delivered", 20000);
  await profanity("wait", "hi profanity");
  // profanity has shown it (a person could read it) and sends no
  // displayed marker: the tick stays ✓✓. Its next message proves it had
  // the time to send one.
  await profanity("type", "got it");
  await waitText(alice, "got it");
  const tick = await tickOf(alice, "hi profanity");
  await shot(alice, "interop-profanity");
  emit("profanity", { incoming: pin, tick });
});
