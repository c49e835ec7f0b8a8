// Groups with three browser users (alice, bob, carol), each in a browser
// context of their own:
//   alice creates a group with bob; it shows in bob's list (unread, preview
//   "alice: text"); they exchange messages;
//   alice creates an invite link; carol opens the app with it and joins;
//   carol gets later messages;
//   alice turns on "only admins can send": bob's message written before his
//   app heard of it (his socket's incoming side held by the test) is
//   refused by the server and shown as not sent; his composer becomes a
//   notice; alice makes bob admin and he can send again;
//   carol's page is closed, five messages are sent, carol comes back and
//   catches up from the archive: each once, in order;
//   carol exits the group; the revoked link is refused.
import { cfg, emit, sleep, control, main, context, page, signIn, online, send, shot, tickOf, waitTick } from "./lib.mjs";

const GROUP = "Weekend trip 🏕";

const texts = (p) => p.evaluate(() => [...document.querySelectorAll(".messages .msg .text")].map((e) => e.textContent));
const waitText = (p, text, timeout = 20000) =>
  p.waitForFunction((t) => [...document.querySelectorAll(".messages .msg .text")].some((e) => e.textContent === t), text, { timeout });
const groupRow = (p) => p.locator(".chat", { has: p.locator(".name", { hasText: GROUP }) });
async function openGroup(p) {
  await groupRow(p).click();
  await p.waitForSelector(`section.main[aria-label="Group ${GROUP}"]`);
}
async function openInfo(p) {
  if ((await p.locator("aside.ginfo").count()) === 0) await p.getByRole("button", { name: "Group info" }).click();
  await p.waitForSelector("aside.ginfo .member");
}

await main(async () => {
  const actx = await context({ width: 1280, height: 780 });
  const bctx = await context();
  const cctx = await context();

  // bob's WebSocket goes through the test, which can hold what the server
  // sends him (his outgoing side always flows).
  const held = { on: false, frames: [] };
  let toBob = null;
  await bctx.routeWebSocket(/\/xmpp-websocket|\/ws/, (ws) => {
    const server = ws.connectToServer();
    toBob = ws;
    server.onMessage((m) => (held.on ? held.frames.push(m) : ws.send(m)));
    ws.onMessage((m) => server.send(m));
    // Closing is forwarded both ways by playwright (no onClose handlers).
  });

  const alice = await page(actx, "alice");
  let bob = await page(bctx, "bob");
  await signIn(alice, "alice");
  await signIn(bob, "bob");

  // ---- create ----
  await alice.getByRole("button", { name: "New group" }).click();
  await alice.fill("#gname", GROUP);
  await alice.fill("#gmembers", "bob");
  await alice.getByRole("button", { name: "Create group" }).click();
  await alice.waitForSelector(`section.main[aria-label="Group ${GROUP}"]`, { timeout: 20000 });
  await groupRow(bob).waitFor({ timeout: 20000 });
  await send(alice, "Hello group! Saturday at 9?");
  await bob.waitForSelector(".chat .unread", { timeout: 20000 });
  const bobList = await groupRow(bob).evaluate((el) => ({
    unread: el.querySelector(".unread")?.textContent ?? "",
    preview: el.querySelector(".preview")?.textContent.trim() ?? "",
  }));
  await openGroup(bob);
  await waitText(bob, "Hello group! Saturday at 9?");
  const bobFrom = await bob.evaluate(() => [...document.querySelectorAll(".msg.in .from")].map((e) => e.textContent));
  await send(bob, "Works for me 👍");
  await waitText(alice, "Works for me 👍");
  const aliceTick = await alice.evaluate(() => [...document.querySelectorAll(".msg.out [data-tick]")].map((e) => e.dataset.tick));
  emit("created", { bob_list: bobList, bob_from: bobFrom, alice_ticks: aliceTick });

  // ---- invite link: carol joins ----
  await openInfo(alice);
  await alice.getByRole("button", { name: "Create link" }).click();
  const link = await alice.locator("input.link-url").first().inputValue({ timeout: 15000 });
  const members0 = await alice.evaluate(() => [...document.querySelectorAll(".member")].map((e) => `${e.dataset.jid}:${e.dataset.affiliation}`));
  const carol = await page(cctx, "carol");
  await carol.goto(link);
  await signIn(carol, "carol");
  await carol.waitForSelector(`section.main[aria-label="Group ${GROUP}"]`, { timeout: 20000 });
  await send(alice, "Welcome carol!");
  await waitText(carol, "Welcome carol!");
  await waitText(bob, "Welcome carol!");
  const carolTexts = await texts(carol);
  await alice.getByRole("button", { name: "Close group info" }).click();
  await openInfo(alice);
  await alice.waitForSelector('.member[data-jid="carol@localhost"]');
  emit("link", { link, members_before: members0, carol_texts: carolTexts });

  // ---- only admins can send ----
  await alice.getByRole("button", { name: "Close group info" }).click();
  await send(bob, "Bring snacks?");
  await waitText(alice, "Bring snacks?");
  held.on = true;
  await openInfo(alice);
  await alice.getByRole("checkbox", { name: "Only admins can send messages" }).check();
  await alice.waitForFunction(() => {
    const c = document.querySelector('input[aria-label="Only admins can send messages"]');
    return c?.checked && !c.disabled;
  });
  // bob's app has not heard yet: he writes, the server refuses.
  const refusedText = "Can I still write here?";
  await send(bob, refusedText);
  const until = Date.now() + 20000;
  while (!held.frames.some((f) => String(f).includes("type='error'") || String(f).includes('type="error"'))) {
    if (Date.now() > until) throw new Error("no error from the room for bob's message");
    await sleep(50);
  }
  const whileHeld = await bob.evaluate((t) => [...document.querySelectorAll(".msg.out")].find((m) => m.querySelector(".text")?.textContent === t)?.querySelector("[data-tick]")?.dataset.tick, refusedText);
  held.on = false;
  for (const f of held.frames.splice(0)) toBob.send(f);
  await bob.waitForSelector('[data-notice="admins-only"]', { timeout: 20000 });
  await bob.waitForSelector(".msg.out.failed .msg-error", { timeout: 20000 });
  const failed = await bob.evaluate(() => {
    const m = [...document.querySelectorAll(".msg.out.failed")].at(-1);
    return { text: m?.querySelector(".text")?.textContent, tick: m?.querySelector("[data-tick]")?.dataset.tick, error: m?.querySelector(".msg-error")?.textContent };
  });
  await sleep(500);
  const aliceGot = (await texts(alice)).includes(refusedText);
  const composer = await bob.locator("textarea[aria-label=Message]").count();
  // alice makes bob admin: he can write again.
  await alice.locator('.member[data-jid="bob@localhost"]').getByRole("button", { name: "Make admin" }).click();
  await alice.waitForSelector('.member[data-jid="bob@localhost"][data-affiliation="admin"]', { timeout: 15000 });
  await bob.waitForSelector("textarea[aria-label=Message]", { timeout: 20000 });
  await send(bob, "I'm an admin now");
  await waitText(alice, "I'm an admin now");
  await shot(alice, "group-info");
  emit("admins-only", { while_held: whileHeld, failed, alice_got: aliceGot, composer_while_on: composer });
  await alice.getByRole("button", { name: "Close group info" }).click();

  // ---- the server restarts: no session to resume, the app joins again
  // before it sends what was typed meanwhile ----
  // (bob's page, whose socket the test relays, is closed meanwhile: a relayed
  // socket cut by the server makes Chromium log the client's last write.)
  await bob.close();
  await control("stop");
  await alice.waitForSelector(".banner", { timeout: 20000 });
  const downText = "Typed while the server was down";
  await send(alice, downText);
  await sleep(300);
  const downTick = await tickOf(alice, downText);
  await control("start");
  await online(alice, 30000);
  await waitText(carol, downText, 30000);
  await waitTick(alice, downText, "sent");
  bob = await page(bctx, "bob");
  await bob.waitForSelector(".side");
  await online(bob, 30000);
  await openGroup(bob);
  await waitText(bob, downText, 30000);
  await sleep(500);
  const downCount = (await texts(carol)).filter((t) => t === downText).length;
  emit("restart", { tick_down: downTick, tick_after: await tickOf(alice, downText), carol_count: downCount });

  // ---- carol away, then catch-up from the archive ----
  await carol.close();
  await sleep(300);
  const away = ["Who drives?", "I can, 4 seats", "Then we need two cars", "I'll ask Dan", "Leaving at 8:30 then"];
  for (const [i, t] of away.entries()) {
    const p = i % 2 ? bob : alice;
    await send(p, t);
    await waitText(i % 2 ? alice : bob, t);
  }
  const back = Date.now();
  const carol2 = await page(cctx, "carol");
  await carol2.waitForSelector(".side");
  const offlineRow = await groupRow(carol2).count(); // from the local store
  await online(carol2);
  await carol2.waitForFunction((n) => Number(document.querySelector(".chat .unread")?.textContent) >= n, away.length, { timeout: 20000 });
  const unread = Number(await groupRow(carol2).locator(".unread").textContent());
  await openGroup(carol2);
  await waitText(carol2, away.at(-1));
  const catchMs = Date.now() - back; // page opened → the last missed message on screen
  const caught = await texts(carol2);
  // Once more after a reload: the archive again, deduped.
  await carol2.reload();
  await carol2.waitForSelector(".side");
  await online(carol2);
  await openGroup(carol2);
  await waitText(carol2, away.at(-1));
  await sleep(1500);
  const afterReload = await texts(carol2);
  emit("catch-up", { away, caught, after_reload: afterReload, unread, offline_row: offlineRow, catch_ms: catchMs });

  await shot(carol2, "group-chat");

  // ---- carol exits; the revoked link is refused ----
  await openInfo(carol2);
  await carol2.getByRole("button", { name: "Exit group" }).click();
  await carol2.waitForSelector('[data-notice="left"]', { timeout: 15000 });
  await openInfo(alice);
  await alice.getByRole("button", { name: "Close group info" }).click();
  await openInfo(alice);
  await alice.waitForFunction(() => !document.querySelector('.member[data-jid="carol@localhost"]'), null, { timeout: 15000 });
  const membersAfter = await alice.evaluate(() => [...document.querySelectorAll(".member")].map((e) => `${e.dataset.jid}:${e.dataset.affiliation}`));
  // alice adds carol back (her app gets the invitation and joins: admins
  // only is still on, so she gets the notice), then removes her.
  await alice.fill('input[aria-label="Add member"]', "carol");
  await alice.getByRole("button", { name: "Add", exact: true }).click();
  await alice.waitForSelector('.member[data-jid="carol@localhost"][data-affiliation="member"]', { timeout: 15000 });
  await carol2.waitForSelector('[data-notice="admins-only"]', { timeout: 20000 });
  await alice.locator('.member[data-jid="carol@localhost"]').getByRole("button", { name: "Remove" }).click();
  await alice.waitForFunction(() => !document.querySelector('.member[data-jid="carol@localhost"]'), null, { timeout: 15000 });
  const removed = await carol2.locator('[data-notice="left"]').textContent({ timeout: 20000 });
  await alice.locator(".glink").first().getByRole("button", { name: "Revoke" }).click();
  await alice.waitForFunction(() => document.querySelectorAll(".glink").length === 0, null, { timeout: 15000 });
  await carol2.goto(link);
  await carol2.waitForSelector(".side");
  const notice = await carol2.locator(".gnotice").textContent({ timeout: 20000 });
  // Phone size: the group info alone on the screen.
  await alice.setViewportSize({ width: 390, height: 760 });
  await openInfo(alice);
  const phone = await alice.evaluate(() => ({
    list: getComputedStyle(document.querySelector(".side")).display,
    chat: getComputedStyle(document.querySelector(".main")).display,
    info: getComputedStyle(document.querySelector(".ginfo")).display,
    width: document.querySelector(".ginfo").getBoundingClientRect().width,
  }));
  await shot(alice, "phone-group-info");
  emit("phone", phone);

  // A link naming a person, not a group of this server, changes nothing.
  await carol2.getByRole("button", { name: "Dismiss" }).click();
  await carol2.goto(cfg.url + "#join=alice%40localhost&token=x");
  const crafted = await carol2.locator(".gnotice").textContent({ timeout: 20000 });
  const rows = await carol2.evaluate(() => [...document.querySelectorAll(".chat")].map((e) => e.dataset.jid));
  emit("left", { members_after: membersAfter, removed_notice: removed, revoked_notice: notice, crafted_notice: crafted, carol_rows: rows });
});
