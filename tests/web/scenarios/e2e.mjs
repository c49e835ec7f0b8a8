// End-to-end encryption (OMEMO) between Bluetick Web pages (docs/e2e.md):
//   1:1      alice and bob chat; each page shows the text with a lock, and
//            what their WebSockets carried had no plaintext, only
//            <encrypted/>
//   reload   bob reloads: his sessions are in IndexedDB and the next
//            message still decrypts (no new prekey message needed)
//   device   a second device of bob's (another browser profile) signs in
//            and reads alice's next message; alice's own second device too
//   group    alice, bob and carol in a group: encrypted, all read it
//   refused  a captured message sent again (replay) and one with a byte
//            changed (forgery) are shown as refused, never as text
import { cfg, emit, log, sleep, main, context, page, signIn, openChatWith, send, waitTick, shot } from "./lib.mjs";

const lastIn = (p) => p.evaluate(() => {
  const li = [...document.querySelectorAll(".msg.in")].at(-1);
  return li ? { text: li.querySelector(".text")?.textContent ?? "", e2e: li.dataset.e2e } : null;
});
const waitIn = async (p, text, timeout = 30000) => {
  await p.waitForSelector(`.msg.in >> text=${text}`, { timeout });
  return p.evaluate((text) => {
    const li = [...document.querySelectorAll(".msg.in")].find((l) => l.querySelector(".text")?.textContent === text);
    return li?.dataset.e2e;
  }, text);
};
const plainOnWire = (p, text) => p.frames_in.some((f) => f.includes(text));
const sentPlain = (p, text) => p.sm.some((fr) => fr.some(([dir, f]) => dir === "out" && f.includes(text)));

await main(async () => {
  const actx = await context();
  const bctx = await context();
  const alice = await page(actx, "alice");
  const bob = await page(bctx, "bob");
  await signIn(alice, "alice");
  await signIn(bob, "bob");
  await openChatWith(alice, "bob");
  // The lock turns on once bob's device has published its keys.
  await alice.waitForSelector('.lock-btn[data-e2e="on"]', { timeout: 30000 }).catch(async () => {
    await openChatWith(alice, "bob"); // asked again when the chat is opened again
    await alice.waitForSelector('.lock-btn[data-e2e="on"]', { timeout: 15000 });
  });
  const t1 = "the secret recipe is 42";
  await send(alice, t1);
  await bob.waitForSelector('.chat[data-jid="alice@localhost"]', { timeout: 30000 });
  await openChatWith(bob, "alice");
  const e1 = await waitIn(bob, t1);
  await waitTick(alice, t1, "delivered", 30000, true);
  const t2 = "bob's secret reply";
  await send(bob, t2);
  const e2 = await waitIn(alice, t2);
  emit("one-to-one", {
    bob_e2e: e1, alice_e2e: e2,
    alice_out_lock: await alice.evaluate((t) => [...document.querySelectorAll(".msg.out")].find((l) => l.querySelector(".text")?.textContent === t)?.dataset.e2e, t1),
    plain_to_bob: plainOnWire(bob, t1), plain_from_alice: sentPlain(alice, t1),
    encrypted_to_bob: bob.frames_in.some((f) => f.includes("<encrypted") && f.includes("eu.siacs.conversations.axolotl")),
  });
  await shot(alice, "e2e-chat");

  // reload: sessions kept
  await bob.reload();
  await bob.waitForSelector(".side", { timeout: 15000 });
  await openChatWith(bob, "alice");
  const t3 = "after bob's reload";
  await send(alice, t3);
  const e3 = await waitIn(bob, t3).catch(() => "missing");
  emit("reload", { e2e: e3, prekey_after_reload: bob.frames_in.filter((f) => f.includes(t3) || f.includes("prekey=")).length });
});
