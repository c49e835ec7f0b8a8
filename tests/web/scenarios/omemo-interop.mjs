// OMEMO between Bluetick Web and profanity (0.13, libsignal-protocol-c),
// both ways, each starting a new session (docs/e2e.md "Interop with
// profanity"). The Go test (omemo_interop_test.go) runs profanity as bob
// with its OMEMO keys made, and hands it to this script through
// $BLUETICK_TEST_PROFANITY (/type?line=…, /wait?text=…, /match?re=…,
// /log?re=…, /screen); $BLUETICK_TEST_OMEMO has the texts and bob's device id.
//   alice  bob (profanity) starts the session: his first message is a
//          PreKey message; alice answers on that session
//   carol  starts the session with bob: her first message is a PreKey
//          message profanity opens; bob answers on that session
// bob trusts the web devices by the fingerprints their own pages show.
import { emit, log, sleep, main, context, page, signIn, openChatWith, send, shot } from "./lib.mjs";

const prof = process.env.BLUETICK_TEST_PROFANITY;
const { texts, bobDevice } = JSON.parse(process.env.BLUETICK_TEST_OMEMO ?? "{}");
const BOB = "bob@localhost";

async function profanity(what, q) {
  const res = await fetch(`${prof}/${what}?${new URLSearchParams(q)}`);
  const body = await res.text();
  if (!res.ok) throw new Error(`profanity ${what} ${JSON.stringify(q)}: ${res.status} ${body}`);
  return body;
}
const type = (line) => profanity("type", { line });
const waitProf = (text) => profanity("wait", { text });
const matchProf = async (re) => JSON.parse(await profanity("match", { re }));
const esc = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
// An OMEMO line of profanity's chat window ('~' marks OMEMO, '-' plain).
const omemoLine = (from, text) => `(?m)^\\d\\d:\\d\\d:\\d\\d ~ ${esc(from)}(/\\S+)?: ${esc(text)}[ \\t]*$`;

const hex = (s) => String(s ?? "").toLowerCase().replace(/[^0-9a-f]/g, "");
const profFormat = (fp) => fp.match(/.{8}/g).join("-"); // as profanity prints one

// The incoming message with text, once shown: its data-e2e.
async function waitIn(p, text, timeout = 30000) {
  await p.waitForSelector(`.msg.in >> text=${text}`, { timeout });
  return p.evaluate((text) => [...document.querySelectorAll(".msg.in")].find((l) => l.querySelector(".text")?.textContent === text)?.dataset.e2e, text);
}
const outE2E = (p, text) => p.evaluate((t) => [...document.querySelectorAll(".msg.out")].find((l) => l.querySelector(".text")?.textContent === t)?.dataset.e2e, text);
const sentFrames = (p) => p.sm.flatMap((fr) => fr.filter(([dir]) => dir === "out").map(([, f]) => f));
const sentPlain = (p, ...ts) => sentFrames(p).some((f) => ts.some((t) => f.includes(t)));

// The encryption sheet of the open chat: this device's fingerprint and
// id, and the peer's devices as the page shows them.
async function sheet(p) {
  await p.click(".lock-btn");
  await p.waitForSelector(".e2e-sheet .own-fp", { timeout: 20000 });
  await p.waitForSelector('.e2e-sheet [aria-label^="Devices of"] li.device .fp', { timeout: 20000 });
  const r = await p.evaluate(() => ({
    own: document.querySelector(".e2e-sheet .own-fp").textContent,
    id: /Device (\d+)/.exec(document.querySelector(".e2e-sheet .own").textContent)?.[1] ?? "",
    peer: [...document.querySelectorAll('.e2e-sheet [aria-label^="Devices of"] li.device')].map((li) => ({ id: li.dataset.device, fp: li.querySelector(".fp").textContent })),
  }));
  await p.click('.e2e-sheet [aria-label="Close"]');
  return r;
}

// befriend: the page asks bob for his presence; bob allows it and asks
// back (profanity's OMEMO nodes are readable by presence subscribers).
async function befriend(p, who) {
  await openChatWith(p, "bob");
  await waitProf(`Received authorization request from ${who}@localhost`);
  await type(`/sub allow ${who}@localhost`);
  await type(`/sub request ${who}@localhost`);
  await p.waitForSelector('.who .status[data-status="online"]', { timeout: 25000 });
  // The lock turns on once the page has bob's device list.
  await p.waitForSelector('.lock-btn[data-e2e="on"]', { timeout: 20000 }).catch(async () => {
    await p.reload();
    await p.waitForSelector(".side", { timeout: 15000 });
    await openChatWith(p, "bob");
    await p.waitForSelector('.lock-btn[data-e2e="on"]', { timeout: 20000 });
  });
}

// trust: bob trusts who's web device by the fingerprint its page shows.
async function trust(who, fp, device) {
  // profanity has fetched the device's bundle (after /omemo start).
  await profanity("log", { re: `cache identity for ${esc(who)}@localhost:${device}: ` });
  await type(`/omemo fingerprint ${who}@localhost`);
  await waitProf(profFormat(fp)); // profanity got the same key from the bundle
  await type(`/omemo trust ${who}@localhost ${profFormat(fp)}`);
  // Trusting makes profanity fetch the bundle again and build the
  // session from it (only then can it encrypt for the device).
  await profanity("log", { re: `create session with ${esc(who)}@localhost device ${device}` });
}

await main(async () => {
  if (!prof || !texts) throw new Error("BLUETICK_TEST_PROFANITY / BLUETICK_TEST_OMEMO not set");
  const alice = await page(await context(), "alice");
  const carol = await page(await context(), "carol");
  await signIn(alice, "alice");
  await signIn(carol, "carol");
  await befriend(alice, "alice");
  await befriend(carol, "carol");

  // bob's own fingerprint as profanity prints it, and as the pages show it.
  await type("/omemo fingerprint");
  const [ownLine] = await matchProf("Your OMEMO fingerprint: ([0-9a-f-]+)");
  const bobFp = hex(ownLine.split(":").at(-1));

  // ---- bob (profanity) → alice (web): a new session from profanity
  const sa = await sheet(alice);
  log(`alice device ${sa.id} ${sa.own}; bob's devices on her page: ${JSON.stringify(sa.peer)}`);
  await type(`/omemo start alice@localhost`);
  await trust("alice", hex(sa.own), sa.id);
  await type(texts.p2a);
  await matchProf(omemoLine("me", texts.p2a));
  await openChatWith(alice, "bob");
  const aIn = await waitIn(alice, texts.p2a);
  const inPrekey = alice.frames_in.some((f) => f.startsWith("<message") && f.includes(`from="${BOB}/`) && new RegExp(`<key [^>]*rid=["']${sa.id}["'][^>]*prekey=["'](true|1)["']|<key [^>]*prekey=["'](true|1)["'][^>]*rid=["']${sa.id}["']`).test(f))
    || alice.frames_in.some((f) => f.startsWith("<message") && f.includes(BOB) && /prekey=["'](true|1)["']/.test(f));
  await send(alice, texts.a2p);
  await matchProf(omemoLine("alice@localhost", texts.a2p));
  await shot(alice, "e2e-profanity");
  emit("alice", {
    device: sa.id, in_text: texts.p2a, in_e2e: aIn, in_prekey: inPrekey,
    out_e2e: await outE2E(alice, texts.a2p),
    out_plain: sentPlain(alice, texts.a2p, texts.p2a),
    out_encrypted: sentFrames(alice).some((f) => f.startsWith("<message") && f.includes(BOB) && f.includes("<encrypted") && f.includes("eu.siacs.conversations.axolotl")),
    fp_bob_web: hex(sa.peer.find((d) => d.id === String(bobDevice))?.fp), fp_bob_prof: bobFp,
  });

  // ---- carol (web) → bob (profanity): a new session from the web app
  const sc = await sheet(carol);
  log(`carol device ${sc.id} ${sc.own}`);
  // profanity trusts carol's device before it hears from her (manual
  // trust mode); it learns the key from her bundle.
  await type(`/msg carol@localhost`);
  await type(`/omemo start carol@localhost`);
  await trust("carol", hex(sc.own), sc.id);
  await send(carol, texts.c2p);
  await matchProf(omemoLine("carol@localhost", texts.c2p));
  const outPrekey = sentFrames(carol).some((f) => f.startsWith("<message") && f.includes(BOB) && /prekey=["'](true|1)["']/.test(f));
  await type(texts.p2c);
  await matchProf(omemoLine("me", texts.p2c));
  const cIn = await waitIn(carol, texts.p2c);
  emit("carol", {
    device: sc.id, in_text: texts.p2c, in_e2e: cIn, out_prekey: outPrekey,
    out_e2e: await outE2E(carol, texts.c2p),
    out_plain: sentPlain(carol, texts.c2p, texts.p2c),
  });
});
