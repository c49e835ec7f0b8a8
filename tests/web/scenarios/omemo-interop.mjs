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
import { emit, log, main, context, page, signIn, openChatWith, send, shot } from "./lib.mjs";
import { prof, BOB, profanity, type, matchProf, omemoLine, hex, waitIn, outE2E, sentFrames, sentPlain, sheet, befriend, trust } from "./omemo-prof.mjs";

const { texts, bobDevice } = JSON.parse(process.env.BLUETICK_TEST_OMEMO ?? "{}");

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
  // What alice's WebSocket got from bob: a PreKey message for her device.
  const prekeyFor = new RegExp(`<key [^>]*rid=["']${sa.id}["'][^>]*prekey=["'](true|1)["']|<key [^>]*prekey=["'](true|1)["'][^>]*rid=["']${sa.id}["']`);
  const inPrekey = alice.frames_in.some((f) => f.startsWith("<message") && /from=["']bob@localhost\//.test(f) && prekeyFor.test(f));
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
  // carol's first message: a PreKey message for bob's device.
  const outPrekey = sentFrames(carol).some((f) => f.startsWith("<message") && f.includes(BOB) && new RegExp(`<key [^>]*rid=["']${bobDevice}["'][^>]*prekey=["']true["']|<key [^>]*prekey=["']true["'][^>]*rid=["']${bobDevice}["']`).test(f));
  await type(texts.p2c);
  await matchProf(omemoLine("me", texts.p2c));
  const cIn = await waitIn(carol, texts.p2c);
  emit("carol", {
    device: sc.id, in_text: texts.p2c, in_e2e: cIn, out_prekey: outPrekey,
    out_e2e: await outE2E(carol, texts.c2p),
    out_plain: sentPlain(carol, texts.c2p, texts.p2c),
  });
});
