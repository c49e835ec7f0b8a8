// Encrypted files (XEP-0454 aesgcm:// links in OMEMO messages) between
// Bluetick Web (alice) and profanity (bob), both ways; the Go test
// (omemo_interop_media_test.go) runs profanity with its OMEMO keys made,
// serves the upload service over HTTPS (profanity downloads aesgcm links
// from https://) and names the files in $BLUETICK_TEST_OMEMO.
//   profanity → web  /sendfile in bob's OMEMO chat; alice's page shows
//                    the photo decrypted (the bytes kept in IndexedDB are
//                    profanity's file)
//   web → profanity  alice attaches a photo; profanity shows the link and
//                    saves the decrypted file with /url save
import { readFileSync } from "node:fs";
import { emit, log, main, context, page, signIn, launchArgs, shot, storedFile } from "./lib.mjs";
import { prof, BOB, profanity, type, waitProf, matchProf, esc, sentFrames, sheet, befriend, trust } from "./omemo-prof.mjs";

const { bobDevice, fromProf, fromWeb, saved } = JSON.parse(process.env.BLUETICK_TEST_OMEMO ?? "{}");
// The test server's HTTPS certificate is self-signed.
launchArgs.push("--ignore-certificate-errors");

// What a message's file shows, and the SHA-256 of the plaintext the page
// keeps in IndexedDB (e2efiles).
const inspect = async (p, sel) => {
  const shown = await p.evaluate((sel) => {
    const msg = [...document.querySelectorAll(sel)].at(-1);
    const media = msg?.querySelector(".media");
    const key = msg?.dataset.key;
    const full = media?.querySelector("img.full");
    return {
      id: msg?.dataset.id ?? "", msg_e2e: msg?.dataset.e2e ?? "",
      state: media?.dataset.e2e ?? "", kind: media?.dataset.kind ?? "",
      error: media?.querySelector(".e2e-failed .error")?.textContent ?? "",
      full_src: full?.src.slice(0, 5) ?? "", w: full?.naturalWidth ?? 0, key: key ?? "",
    };
  }, sel);
  const { key, ...rest } = shown;
  const f = await storedFile(p, key);
  return { ...rest, sha: f.sha };
};

await main(async () => {
  if (!prof || !bobDevice) throw new Error("BLUETICK_TEST_PROFANITY / BLUETICK_TEST_OMEMO not set");
  const alice = await page(await context(), "alice");
  await signIn(alice, "alice");
  await befriend(alice, "alice");
  const sa = await sheet(alice);
  await type(`/omemo start alice@localhost`);
  await trust("alice", sa.own.replace(/[^0-9a-f]/gi, "").toLowerCase(), sa.id);

  // ---- profanity → web
  await type(`/sendfile ${fromProf}`);
  await alice.waitForFunction(() => ["ready", "failed"].includes([...document.querySelectorAll(".msg.in")].at(-1)?.querySelector(".media")?.dataset.e2e), null, { timeout: 40000 })
    .catch(async (e) => { log(`[profanity screen] ${await profanity("screen", {})}`); throw e; });
  await alice.waitForFunction(() => { const i = [...document.querySelectorAll(".msg.in")].at(-1)?.querySelector("img.full"); return !i || i.complete; }, null, { timeout: 10000 });
  emit("from-profanity", await inspect(alice, ".msg.in"));

  // ---- web → profanity
  await alice.setInputFiles('input[type=file][aria-label="Attach files"]', { name: "from-web.png", mimeType: "image/png", buffer: readFileSync(fromWeb) });
  await alice.waitForFunction(() => {
    const m = [...document.querySelectorAll(".msg.out")].at(-1);
    return m?.querySelector(".media") && !m.querySelector(".upload") && m.querySelector("[data-tick]")?.dataset.tick !== "pending";
  }, null, { timeout: 40000 });
  const mine = await inspect(alice, ".msg.out");
  // The link reached profanity inside the OMEMO message ('~' line).
  const [, link] = await matchProf(`(?m)^\\d\\d:\\d\\d:\\d\\d ~ alice@localhost(?:/\\S+)?: (aesgcm://\\S+)[ \\t]*$`);
  await type(`/url save ${link} ${saved}`);
  // profanity fetches https://… (the ciphertext, to a temporary file),
  // then decrypts it into the file named; the Go test compares that file.
  const https = link.split("#")[0].replace(/^aesgcm:/, "https:");
  await waitProf(`Downloading '${https}': done`).catch(async (e) => { log(`[profanity screen] ${await profanity("screen", {})}`); throw e; });
  const frames = sentFrames(alice);
  emit("from-web", {
    link, alice: mine,
    link_in_clear: frames.some((f) => f.includes(link.split("#")[0].replace("aesgcm://", "")) && f.includes("#") && f.includes(link.split("#")[1])),
    encrypted: frames.some((f) => f.startsWith("<message") && f.includes(BOB) && f.includes("<encrypted")),
  });
  await shot(alice, "e2e-profanity-media");
});
