// Message actions between alice and bob, each seen on the other side and
// after a reload: a reply with its quote (reached from the keyboard), an
// edit of the last message, a delete for everyone, reactions (added,
// counted, one taken back); a retraction and a correction of alice's
// message forged by carol are ignored by bob's app. Then the unread
// separator, search in the chat and the emoji picker.
import { execFile } from "node:child_process";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { cfg, emit, log, main, context, page, signIn, openChatWith, send, waitTick, shot, plainChat } from "./lib.mjs";

const here = dirname(fileURLToPath(import.meta.url));

// What the open chat shows, message by message.
const summary = (p) =>
  p.evaluate(() =>
    [...document.querySelectorAll("section.main .msg")].map((li) => ({
      id: li.dataset.id,
      dir: li.classList.contains("out") ? "out" : "in",
      text: li.querySelector(".text")?.textContent ?? "",
      quote: li.querySelector(".quote .qtext")?.textContent ?? "",
      edited: Boolean(li.querySelector(".edited")),
      deleted: Boolean(li.querySelector(".text.retracted")),
      reactions: [...li.querySelectorAll(".reaction")].map((r) => r.dataset.emoji + r.dataset.count + (r.classList.contains("mine") ? "*" : "")),
    })),
  );

// until waits for a condition on the page's summary of the open chat.
async function until(p, what, fn, timeout = 20000) {
  const end = Date.now() + timeout;
  for (;;) {
    const s = await summary(p);
    if (fn(s)) return s;
    if (Date.now() > end) throw new Error(`waited for ${what}; the chat shows ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const msg = (p, text) => p.locator("section.main .msg").filter({ has: p.locator(".text", { hasText: new RegExp(`^${text}$`) }) }).last();

async function menu(p, text) {
  const m = msg(p, text);
  await m.locator(".bubble").hover();
  await m.getByRole("button", { name: "Message actions" }).click();
  const menu = p.getByRole("menu", { name: "Message actions" });
  await menu.waitFor();
  return menu;
}

const forge = (user, to, id) =>
  new Promise((resolve, reject) => {
    execFile(process.execPath, ["--experimental-websocket", "--no-warnings", join(here, "forge.mjs"), JSON.stringify(cfg), user, to, id], { timeout: 40000 }, (err, out, errOut) => {
      if (errOut) log(`[forge] ${errOut.trim()}`);
      if (err || !out.includes("sent")) reject(new Error(`forge: ${err?.message ?? out}`));
      else resolve();
    });
  });

await main(async () => {
  const alice = await page(await context(), "alice");
  const bob = await page(await context(), "bob");
  await signIn(alice, "alice");
  await signIn(bob, "bob");
  // In the clear: the checks below read the wire as a client without
  // OMEMO sees it (e2e.mjs tests encrypted chats).
  await openChatWith(alice, "bob");
  await plainChat(alice);
  await send(alice, "hello bob");
  await waitTick(alice, "hello bob", "delivered", 20000, true);
  await openChatWith(bob, "alice");
  await plainChat(bob);
  await until(bob, "hello bob", (s) => s.some((m) => m.text === "hello bob"));

  // Reply, from the keyboard: the actions button, the menu, Reply.
  const more = msg(bob, "hello bob").getByRole("button", { name: "Message actions" });
  await more.focus();
  await bob.keyboard.press("Enter");
  await bob.getByRole("menu", { name: "Message actions" }).waitFor();
  const focused = [];
  for (let i = 0; i < 6; i++) {
    await bob.keyboard.press("ArrowDown");
    focused.push(await bob.evaluate(() => document.activeElement?.textContent ?? ""));
  }
  await bob.keyboard.press("Enter");
  await bob.waitForSelector('.compose-bar[data-mode="reply"]');
  await send(bob, "hi alice, replying");
  const aliceReply = await until(alice, "the reply", (s) => s.some((m) => m.text === "hi alice, replying" && m.quote));
  emit("reply", {
    keyboard_focus: focused.at(-1),
    alice: aliceReply.find((m) => m.text === "hi alice, replying"),
    bob: (await summary(bob)).find((m) => m.text === "hi alice, replying"),
    // What a client without XEP-0461 shows: the body on the wire.
    wire_body: alice.frames_in.find((f) => f.includes("urn:xmpp:reply:0"))?.match(/<body>([\s\S]*?)<\/body>/)?.[1] ?? "",
  });

  // Edit the last message (alice's).
  await send(alice, "see you at 5");
  await until(bob, "see you at 5", (s) => s.some((m) => m.text === "see you at 5"));
  let mm = await menu(alice, "see you at 5");
  await mm.getByRole("menuitem", { name: "Edit" }).click();
  await alice.waitForSelector('.compose-bar[data-mode="edit"]');
  const prefilled = await alice.inputValue("textarea[aria-label=Message]");
  await send(alice, "see you at 6");
  const bobEdit = await until(bob, "the edit", (s) => s.some((m) => m.text === "see you at 6" && m.edited));
  const editFact = {
    prefilled,
    bob: bobEdit.filter((m) => m.text.startsWith("see you at")),
    alice: (await summary(alice)).filter((m) => m.text.startsWith("see you at")),
    edit_on_older: await (async () => {
      const x = await menu(alice, "hello bob");
      const n = await x.getByRole("menuitem", { name: "Edit" }).count();
      await alice.keyboard.press("Escape");
      await x.waitFor({ state: "detached" });
      return n;
    })(),
    bob_can_delete_alices: await (async () => {
      const x = await menu(bob, "see you at 6");
      const n = await x.getByRole("menuitem", { name: "Delete for everyone" }).count();
      await bob.keyboard.press("Escape");
      await x.waitFor({ state: "detached" });
      return n;
    })(),
  };
  // Escape closed the menu only, not the chat behind it.
  editFact.chat_still_open = (await bob.locator('section.main[aria-label="Chat with alice"]').count()) === 1;
  emit("edit", editFact);

  // Delete for everyone.
  await send(alice, "oops, wrong chat");
  await until(bob, "oops", (s) => s.some((m) => m.text === "oops, wrong chat"));
  const oopsId = (await summary(alice)).find((m) => m.text === "oops, wrong chat").id;
  mm = await menu(alice, "oops, wrong chat");
  await mm.getByRole("menuitem", { name: "Delete for everyone" }).click();
  const bobDel = await until(bob, "the retraction", (s) => s.some((m) => m.id === oopsId && m.deleted));
  emit("delete", { bob: bobDel.find((m) => m.id === oopsId), alice: (await summary(alice)).find((m) => m.id === oopsId), bob_has_text: bobDel.some((m) => m.text === "oops, wrong chat") });

  // Reactions: bob 👍 on alice's edited message, alice 👍 too (2), alice ❤️
  // on bob's reply, then alice takes her 👍 back.
  mm = await menu(bob, "see you at 6");
  await shot(bob, "actions-menu");
  await mm.getByRole("menuitem", { name: "React 👍" }).click();
  await until(alice, "bob's 👍", (s) => s.some((m) => m.text === "see you at 6" && m.reactions.includes("👍1")));
  mm = await menu(alice, "see you at 6");
  await mm.getByRole("menuitem", { name: "React 👍" }).click();
  await until(bob, "two 👍", (s) => s.some((m) => m.text === "see you at 6" && m.reactions.includes("👍2*")));
  mm = await menu(alice, "hi alice, replying");
  await mm.getByRole("menuitem", { name: "React ❤️" }).click();
  await until(bob, "alice's ❤️", (s) => s.some((m) => m.text === "hi alice, replying" && m.reactions.includes("❤️1")));
  const twoThumbs = (await summary(alice)).find((m) => m.text === "see you at 6").reactions;
  await msg(alice, "see you at 6").locator(".reaction.mine").click();
  const bobAfterToggle = await until(bob, "alice's 👍 taken back", (s) => s.some((m) => m.text === "see you at 6" && m.reactions.join() === "👍1*"));
  // Bob clicks alice's ❤️ under his reply: his own ❤️ is added.
  await msg(bob, "hi alice, replying").locator('.reaction[data-emoji="❤️"]').click();
  const joined = await until(alice, "bob's ❤️ beside hers", (s) => s.some((m) => m.text === "hi alice, replying" && m.reactions.join() === "❤️2*"));
  emit("reactions", { joined: joined.find((m) => m.text === "hi alice, replying").reactions, alice_two: twoThumbs, bob_after_toggle: bobAfterToggle.find((m) => m.text === "see you at 6").reactions, bob_heart: bobAfterToggle.find((m) => m.text === "hi alice, replying").reactions });

  // Carol forges a retraction and a correction of alice's "see you at 6".
  const target = (await summary(bob)).find((m) => m.text === "see you at 6").id;
  await forge("carol", "bob@localhost", target);
  await bob.waitForSelector('.chat[data-jid="carol@localhost"]', { timeout: 20000 });
  await bob.waitForFunction(() => document.querySelector('.chat[data-jid="carol@localhost"] .preview')?.textContent.includes("carol was here"));
  const afterForge = await summary(bob);
  const forgedShown = await bob.evaluate(() => document.querySelector('.chat[data-jid="carol@localhost"] .preview')?.textContent ?? "");
  emit("forged", { target: afterForge.find((m) => m.id === target), carol_preview: forgedShown.trim() });

  // Both sides after a reload: everything comes back from the store.
  await alice.reload();
  await bob.reload();
  await openChatWith(alice, "bob");
  await openChatWith(bob, "alice");
  const aliceAfter = await until(alice, "history after reload", (s) => s.some((m) => m.text === "see you at 6"));
  const bobAfter = await until(bob, "history after reload", (s) => s.some((m) => m.text === "see you at 6"));
  emit("after-reload", { alice: aliceAfter, bob: bobAfter });
  await alice.mouse.move(0, 0);
  await shot(alice, "actions");
});
