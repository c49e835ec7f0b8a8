// End-to-end encrypted media (XEP-0454) in the app; the files and keys
// come from encmedia_test.go (manifest in $BLUETICK_E2E_MANIFEST, the
// ciphertexts made with Go's crypto/cipher).
//
// Receiving: carol (another client, encmedia-peer.mjs) uploads AES-GCM
// ciphertexts to the server's upload service and sends bob bodies that
// are only aesgcm:// links: a photo, a PDF, a photo whose ciphertext was
// altered after encryption, and a link to a file on another server. Bob's
// app shows the photo decrypted (pixels read back from a canvas, the
// bytes in IndexedDB), the PDF as a download of a blob: URL, the altered
// one and the foreign one as errors in their bubbles; no aesgcm link in
// any src or href. After a reload nothing is fetched again. A file whose
// download finds the server stopped says so (with Retry) and is fetched
// when the connection is back.
//
// Sending: alice's app, OMEMO on for her chat with bob (the lock shows
// it), sends bob a photo: the slot request names a random .png of the
// ciphertext's size typed application/octet-stream, the stanza carries
// the OMEMO <encrypted/> element and none of the plain-media elements
// (OOB, SFS, metadata, thumbnail) or the link, the body on both devices
// is the aesgcm link, bob sees the photo decrypted, alice sees hers from
// her device. Then a photo picked while the lock was open (encryption
// turned off, the server away) whose upload starts after it is turned
// back on is encrypted then: the upload is ciphertext, bob decrypts it.
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { cfg, emit, log, main, context, page, signIn, openChatWith, shot, control, online, plainChat, storedFile } from "./lib.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const manifestPath = process.env.BLUETICK_E2E_MANIFEST;
const manifest = JSON.parse(readFileSync(manifestPath, "utf8"));

const peer = (user, to, list = "files") =>
  new Promise((resolve, reject) => {
    execFile(process.execPath, ["--experimental-websocket", "--no-warnings", join(here, "encmedia-peer.mjs"), JSON.stringify(cfg), user, to, manifestPath, list], { timeout: 50000 }, (err, out, errOut) => {
      if (errOut) log(`[peer] ${errOut.trim()}`);
      if (err || !out.includes("sent")) reject(new Error(`encmedia-peer: ${err?.message ?? out}`));
      else resolve(out.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l)));
    });
  });

// In the page: what a bubble shows, and the stored plaintext's SHA-256.
const inspect = async (p, id) => {
  const shown = await p.evaluate((id) => {
    const msg = document.querySelector(`.msg[data-id="${id}"]`);
    const media = msg?.querySelector(".media");
    const key = msg?.dataset.key;
    const full = media?.querySelector("img.full");
    const doc = media?.querySelector("a.doc");
    return {
      state: media?.dataset.e2e ?? "",
      kind: media?.dataset.kind ?? "",
      error: media?.querySelector(".e2e-failed .error")?.textContent ?? "",
      retry: Boolean(media?.querySelector(".e2e-failed button")),
      full_src: full?.src.slice(0, 5) ?? "",
      w: full?.naturalWidth ?? 0,
      h: full?.naturalHeight ?? 0,
      thumb: media?.querySelector("img.thumb")?.src.slice(0, 23) ?? "",
      href: doc?.href.slice(0, 5) ?? "",
      download: doc?.getAttribute("download") ?? "",
      name: media?.querySelector(".doc .name")?.textContent ?? "",
      key: key ?? "",
    };
  }, id);
  const { key, ...rest } = shown;
  const f = await storedFile(p, key);
  return { ...rest, sha: f.sha, stored_type: f.type };
};

// pixels reads points of the decrypted photo back from a canvas.
const pixels = (p, id, points) =>
  p.evaluate(({ id, points }) => {
    const img = document.querySelector(`.msg[data-id="${id}"] img.full`);
    const c = document.createElement("canvas");
    c.width = img.naturalWidth;
    c.height = img.naturalHeight;
    const g = c.getContext("2d");
    g.drawImage(img, 0, 0);
    return points.map(([x, y]) => [...g.getImageData(x, y, 1, 1).data.slice(0, 3)]);
  }, { id, points });

// Every src and href in the page that holds an aesgcm link.
const aesgcmInDOM = (p) => p.evaluate(() => [...document.querySelectorAll("[src], [href]")].filter((e) => /aesgcm:/i.test(e.getAttribute("src") ?? e.getAttribute("href") ?? "")).length);

const waitState = (p, id, states, timeout = 30000) =>
  p.waitForFunction(({ id, states }) => states.includes(document.querySelector(`.msg[data-id="${id}"] .media`)?.dataset.e2e), { id, states }, { timeout });

await main(async () => {
  // ---- receiving ------------------------------------------------------------
  const bob = await page(await context(), "bob");
  await signIn(bob, "bob");
  const sent = await peer("carol", `bob@${cfg.domain}`);
  log(`[peer] ${JSON.stringify(sent)}`);
  await bob.waitForSelector(`.chat[data-jid="carol@${cfg.domain}"]`, { timeout: 20000 });
  const preview = await bob.textContent(`.chat[data-jid="carol@${cfg.domain}"] .preview`);
  await openChatWith(bob, "carol");
  for (const id of ["e2e-photo", "e2e-doc"]) await waitState(bob, id, ["ready"]);
  for (const id of ["e2e-tampered", "e2e-foreign"]) await waitState(bob, id, ["failed"]);
  await bob.waitForFunction(() => document.querySelector('.msg[data-id="e2e-photo"] img.full')?.complete);
  const photo = await inspect(bob, "e2e-photo");
  photo.pixels = await pixels(bob, "e2e-photo", manifest.points);
  photo.chat_preview = preview;
  emit("received-photo", photo);
  emit("received-doc", await inspect(bob, "e2e-doc"));
  emit("tampered", await inspect(bob, "e2e-tampered"));
  emit("foreign", await inspect(bob, "e2e-foreign"));
  emit("links", { aesgcm_in_dom: await aesgcmInDOM(bob), sent: sent.map((s) => s.link) });
  await bob.evaluate(() => { const l = document.querySelector(".messages"); l.scrollTop = l.scrollHeight; });
  await shot(bob, "e2e-media-received");

  // The photo opens full size in the viewer, from a blob: URL.
  await bob.click('.msg[data-id="e2e-photo"] .photo');
  const viewer = await bob.waitForFunction(() => {
    const i = document.querySelector(".viewer img");
    return i?.complete && i.naturalWidth > 0 && { src: i.src.slice(0, 5), w: i.naturalWidth };
  }, null, { timeout: 10000 }).then((h) => h.jsonValue());
  await bob.keyboard.press("Escape");
  await bob.waitForSelector(".viewer", { state: "detached" });

  // A reload shows the files from IndexedDB: nothing is downloaded again.
  const fetched = [];
  bob.on("request", (r) => r.url().includes("/upload/") && fetched.push(r.url()));
  await bob.reload();
  await bob.waitForSelector(`section.main[aria-label="Chat with carol"], .chat[data-jid="carol@${cfg.domain}"]`, { timeout: 20000 });
  if ((await bob.locator('section.main[aria-label="Chat with carol"]').count()) === 0) await bob.click(`.chat[data-jid="carol@${cfg.domain}"]`);
  await waitState(bob, "e2e-photo", ["ready"]);
  await waitState(bob, "e2e-doc", ["ready"]);
  await bob.waitForFunction(() => document.querySelector('.msg[data-id="e2e-photo"] img.full')?.complete);
  const again = await inspect(bob, "e2e-photo");
  emit("after-reload", { viewer, upload_requests: fetched, state: again.state, sha: again.sha, w: again.w });

  // A file received while its chat is closed, opened with the server
  // stopped: the download fails, the bubble says so, and it is fetched
  // once the app is online again.
  await bob.keyboard.press("Escape");
  await bob.waitForSelector('section.main[aria-label="Chat with carol"]', { state: "detached" });
  await peer("carol", `bob@${cfg.domain}`, "late");
  await bob.waitForSelector(`.chat[data-jid="carol@${cfg.domain}"] .unread`, { timeout: 20000 });
  await control("stop");
  await bob.waitForSelector(".banner", { timeout: 20000 });
  await bob.click(`.chat[data-jid="carol@${cfg.domain}"]`);
  await waitState(bob, "e2e-late", ["failed"]);
  const down = await inspect(bob, "e2e-late");
  await shot(bob, "e2e-media-offline");
  await control("start");
  await online(bob, 30000);
  await waitState(bob, "e2e-late", ["ready"]);
  emit("late", { down, back: await inspect(bob, "e2e-late") });

  // What AES-256-GCM costs in this browser (WebCrypto, as aesgcm.js uses
  // it): a 10 MB file encrypted and decrypted, three times.
  emit("gcm-speed", await bob.evaluate(async () => {
    const d = new Uint8Array(10 * 1024 * 1024);
    for (let i = 0; i < d.length; i += 65536) crypto.getRandomValues(d.subarray(i, i + 65536));
    const key = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const enc = [], dec = [];
    for (let i = 0; i < 3; i++) {
      let t = performance.now();
      const ct = await crypto.subtle.encrypt({ name: "AES-GCM", iv }, key, d);
      enc.push(performance.now() - t);
      t = performance.now();
      await crypto.subtle.decrypt({ name: "AES-GCM", iv }, key, ct);
      dec.push(performance.now() - t);
    }
    return { mb: 10, encrypt_ms: enc.map(Math.round), decrypt_ms: dec.map(Math.round) };
  }));

  // ---- sending (OMEMO on) ---------------------------------------------------------
  const alice = await page(await context(), "alice");
  await signIn(alice, "alice");
  await openChatWith(alice, "bob");
  // Encrypted once bob's device list is known (omemo.js sets e2e.active).
  await alice.waitForSelector('.lock-btn[data-e2e="on"]', { timeout: 30000 }).catch(async () => {
    await openChatWith(alice, "bob");
    await alice.waitForSelector('.lock-btn[data-e2e="on"]', { timeout: 15000 });
  });
  await alice.waitForSelector('button[aria-label="Attach"]');
  const png = readFileSync(manifest.send.plain);
  await alice.setInputFiles('input[type=file][aria-label="Attach files"]', { name: manifest.send.name, mimeType: "image/png", buffer: png });
  await alice.waitForFunction(() => {
    const m = [...document.querySelectorAll(".msg.out")].at(-1);
    return m?.querySelector(".media-image") && !m.querySelector(".upload") && m.querySelector("[data-tick]")?.dataset.tick !== "pending";
  }, null, { timeout: 30000 });
  const outId = await alice.evaluate(() => [...document.querySelectorAll(".msg.out")].at(-1).dataset.id);
  await waitState(alice, outId, ["ready"]);
  const mine = await inspect(alice, outId);
  const frames = alice.sm.flat().filter(([dir]) => dir === "out").map(([, f]) => f);
  const slotReq = frames.find((f) => f.includes("urn:xmpp:http:upload:0") && f.includes("<request"));
  const attr = (s, n) => new RegExp(`${n}="([^"]*)"`).exec(s ?? "")?.[1] ?? "";
  const msg = frames.find((f) => f.startsWith("<message") && f.includes(`id="${outId}"`) && f.includes("<body"));
  await bob.click(`.chat[data-jid="alice@${cfg.domain}"]`, { timeout: 30000 });
  await waitState(bob, outId, ["ready"]);
  await bob.waitForFunction((id) => document.querySelector(`.msg[data-id="${id}"] img.full`)?.complete, outId);
  const theirs = await inspect(bob, outId);
  theirs.pixels = await pixels(bob, outId, manifest.points);
  // The link is the message's body on both devices (decrypted on bob's).
  const body = (p, dir) => p.evaluate(({ id, dir }) => new Promise((resolve, reject) => {
    const r = indexedDB.open("bluetick");
    r.onsuccess = () => {
      const st = r.result.transaction("messages").objectStore("messages");
      const q = st.getAll();
      q.onsuccess = () => { resolve(q.result.find((m) => m.id === id && m.dir === dir)?.body ?? ""); r.result.close(); };
      q.onerror = () => reject(q.error);
    };
    r.onerror = () => reject(r.error);
  }), { id: outId, dir });
  const lock = (p) => p.evaluate((id) => document.querySelector(`.msg[data-id="${id}"]`)?.dataset.e2e ?? "", outId);
  emit("sent-photo", {
    slot_filename: attr(slotReq, "filename"),
    slot_type: attr(slotReq, "content-type"),
    slot_size: Number(attr(slotReq, "size")),
    plain_size: png.length,
    alice_body: await body(alice, "out"),
    bob_body: await body(bob, "in"),
    alice_lock: await lock(alice),
    bob_lock: await lock(bob),
    stanza: msg ?? "",
    alice: mine,
    bob: theirs,
    aesgcm_in_dom: (await aesgcmInDOM(alice)) + (await aesgcmInDOM(bob)),
  });
  await shot(alice, "e2e-media-sent");

  // Picked while the chat was not encrypted, uploaded once it is.
  await plainChat(alice);
  await control("stop");
  await alice.waitForSelector(".banner", { timeout: 20000 });
  const outBefore = await alice.locator(".msg.out").count();
  await alice.setInputFiles('input[type=file][aria-label="Attach files"]', { name: "later.png", mimeType: "image/png", buffer: readFileSync(manifest.send2.plain) });
  await alice.waitForFunction((n) => document.querySelectorAll(".msg.out").length > n, outBefore, { timeout: 15000 });
  const laterId = await alice.evaluate(() => [...document.querySelectorAll(".msg.out")].at(-1).dataset.id);
  const pickedLock = await alice.getAttribute(".lock-btn", "data-e2e");
  await alice.click(".lock-btn");
  await alice.getByLabel("Encrypt this chat").check();
  await alice.click('.e2e-sheet [aria-label="Close"]');
  await alice.waitForSelector('.lock-btn[data-e2e="on"]', { timeout: 15000 });
  const framesBefore = alice.sm.flat().length;
  await control("start");
  await online(alice, 30000);
  await waitState(bob, laterId, ["ready"], 40000);
  const laterFrames = alice.sm.flat().slice(framesBefore).filter(([dir]) => dir === "out").map(([, f]) => f);
  const laterSlot = laterFrames.find((f) => f.includes("urn:xmpp:http:upload:0") && f.includes("<request"));
  const laterMsg = laterFrames.find((f) => f.startsWith("<message") && f.includes(`id="${laterId}"`) && f.includes("<body"));
  emit("picked-before-lock", {
    picked_lock: pickedLock,
    slot_filename: attr(laterSlot, "filename"),
    slot_type: attr(laterSlot, "content-type"),
    encrypted: Boolean(laterMsg?.includes("<encrypted")),
    stanza: laterMsg ?? "",
    bob: await inspect(bob, laterId),
    alice: await inspect(alice, laterId),
  });
});
