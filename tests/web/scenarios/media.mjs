// Media through the server's XEP-0363 upload (max_file_size 1 MiB and 5
// uploads an hour, set by media_test.go). alice sends bob:
//   a photo (a PNG drawn in the test): progress seen while the upload is
//     throttled (CDP), bob sees the thumbnail, then the full image in the
//     viewer (Escape closes it), bytes from the server equal the original
//   a voice note recorded from Chromium's fake microphone, played on bob's
//     side (audio element duration > 0)
//   a document: name and size on bob's side, download equal to the original
//   a file over the limit: refused before any slot request
//   a file cancelled mid-upload (throttled): no message on either side
//   a document picked with the server stopped: 🕐 and kept across a
//     reload (the blob in IndexedDB), uploaded and sent once it is back
//   one upload too many in the hour: the server's refusal shown
import { cfg, emit, sleep, control, main, context, page, signIn, openChatWith, send, shot, launchArgs, online, plainChat } from "./lib.mjs";

launchArgs.push("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream", "--autoplay-policy=no-user-gesture-required");

const NS_UPLOAD = "urn:xmpp:http:upload:0";

await main(async () => {
  const actx = await context();
  const bctx = await context();
  const alice = await page(actx, "alice");
  const bob = await page(bctx, "bob");
  const slotRequests = [];
  alice.on("websocket", (ws) => ws.on("framesent", (f) => String(f.payload).includes(NS_UPLOAD) && String(f.payload).includes("<request") && slotRequests.push(Date.now())));
  await signIn(alice, "alice");
  await signIn(bob, "bob");
  await openChatWith(alice, "bob");
  await plainChat(alice); // plain media here; OMEMO would encrypt them (encmedia.mjs)
  await send(alice, "Photos from the trip 👇");
  await bob.waitForSelector('.chat[data-jid="alice@localhost"]', { timeout: 20000 });
  await openChatWith(bob, "alice");
  await alice.waitForSelector('button[aria-label="Attach"]');

  const cdp = await actx.newCDPSession(alice);
  await cdp.send("Network.enable");
  const throttle = (bytesPerSec) =>
    cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: bytesPerSec });
  const outCount = () => alice.locator(".msg.out").count();
  const inMedia = () => bob.locator(".msg.in .media").count();
  const pick = (name, mimeType, buffer) => alice.setInputFiles('input[type=file][aria-label="Attach files"]', { name, mimeType, buffer });
  // Every progress value alice's page shows, sampled every 10 ms.
  await alice.evaluate(() => {
    window.__progress = [];
    setInterval(() => {
      for (const p of document.querySelectorAll(".msg.out .upload progress")) {
        const v = Number(p.value);
        if (window.__progress.at(-1) !== v) window.__progress.push(v);
      }
    }, 10);
  });

  // ---- a photo --------------------------------------------------------------
  const pngB64 = await alice.evaluate(() => {
    const c = document.createElement("canvas");
    c.width = 640;
    c.height = 420;
    const g = c.getContext("2d");
    const sky = g.createLinearGradient(0, 0, 0, 300);
    sky.addColorStop(0, "#ff9a3c");
    sky.addColorStop(1, "#ffd56b");
    g.fillStyle = sky;
    g.fillRect(0, 0, 640, 300);
    g.fillStyle = "#fff6d0";
    g.beginPath();
    g.arc(320, 250, 70, 0, Math.PI * 2);
    g.fill();
    // the sea: noise, so the file is big enough for a visible progress
    const img = g.createImageData(640, 120);
    let x = 12345;
    for (let i = 0; i < img.data.length; i += 4) {
      x = (x * 1103515245 + 12345) & 0x7fffffff;
      img.data[i] = 20 + (x & 31);
      img.data[i + 1] = 90 + ((x >> 5) & 63);
      img.data[i + 2] = 150 + ((x >> 11) & 63);
      img.data[i + 3] = 255;
    }
    g.putImageData(img, 0, 300);
    return c.toDataURL("image/png").split(",")[1];
  });
  const png = Buffer.from(pngB64, "base64");
  await throttle(256 * 1024);
  await pick("sunset.png", "image/png", png);
  await alice.waitForFunction(() => {
    const m = [...document.querySelectorAll(".msg.out")].at(-1);
    return m?.querySelector(".media-image") && !m.querySelector(".upload") && m.querySelector("[data-tick]")?.dataset.tick !== "pending";
  }, null, { timeout: 30000 });
  await throttle(-1);
  const progress = await alice.evaluate(() => window.__progress);
  await bob.waitForSelector(".msg.in .media-image img.thumb", { timeout: 20000 });
  const thumb = await bob.getAttribute(".msg.in .media-image img.thumb", "src");
  await bob.click(".msg.in .photo");
  await bob.waitForSelector(".viewer img");
  const viewer = await bob.waitForFunction(() => {
    const i = document.querySelector(".viewer img");
    return i?.complete && i.naturalWidth > 0 && { src: i.src, w: i.naturalWidth, h: i.naturalHeight };
  }, null, { timeout: 15000 }).then((h) => h.jsonValue());
  const fetched = Buffer.from(await (await fetch(viewer.src)).arrayBuffer());
  await shot(bob, "media-viewer");
  await bob.keyboard.press("Escape");
  await bob.waitForSelector(".viewer", { state: "detached" });
  const chatOpen = await bob.locator('section.main[aria-label="Chat with alice"]').count();
  emit("photo", {
    progress,
    thumb_prefix: thumb.slice(0, 30),
    thumb_len: thumb.length,
    viewer_w: viewer.w,
    viewer_h: viewer.h,
    same_bytes: fetched.equals(png),
    size: png.length,
    url: viewer.src,
    chat_open_after_escape: chatOpen === 1,
  });

  // ---- a voice note -----------------------------------------------------------
  await alice.click('button[aria-label="Record a voice note"]');
  await alice.waitForFunction(() => Number(document.querySelector(".rec-time")?.dataset.ms) >= 2200, null, { timeout: 15000 });
  const recLabel = await alice.textContent(".rec-time");
  await alice.click('button[aria-label="Send voice note"]');
  await bob.waitForSelector(".msg.in .voice audio", { timeout: 30000 });
  const voice = await bob.evaluate(async () => {
    const a = [...document.querySelectorAll(".msg.in .voice audio")].at(-1);
    const end = Date.now() + 15000;
    while (!(Number.isFinite(a.duration) && a.duration > 0) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    const before = a.duration;
    await a.play();
    await new Promise((resolve, reject) => {
      if (a.ended) return resolve();
      const t = setTimeout(() => reject(new Error(`voice note did not play to the end: at ${a.currentTime} of ${a.duration}`)), 20000);
      a.addEventListener("ended", () => { clearTimeout(t); resolve(); }, { once: true });
    });
    const label = a.closest(".voice").querySelector(".dur");
    return { duration_before_play: before, duration: a.duration, played: a.currentTime, label: label.textContent, meta_ms: Number(label.dataset.duration), type: a.currentSrc.split(".").pop() };
  });
  emit("voice", { ...voice, recorded_label: recLabel });

  // ---- a document ----------------------------------------------------------------
  const pdf = Buffer.concat([Buffer.from("%PDF-1.4\n% Bluetick test document\n"), Buffer.alloc(48 * 1024 - 34, 0x41)]);
  await pick("Quarterly report.pdf", "application/pdf", pdf);
  await bob.waitForSelector('.msg.in .doc .name:text-is("Quarterly report.pdf")', { timeout: 30000 });
  const doc = await bob.evaluate(() => {
    const d = [...document.querySelectorAll(".msg.in .doc")].at(-1);
    return { name: d.querySelector(".name").textContent, size: d.querySelector(".size").textContent, href: d.href, download: d.getAttribute("download") };
  });
  const docBytes = Buffer.from(await (await fetch(doc.href)).arrayBuffer());
  emit("document", { ...doc, same_bytes: docBytes.equals(pdf) });
  await bob.waitForFunction(() => document.querySelectorAll(".msg.in .media").length === 3);
  await bob.evaluate(() => { const l = document.querySelector(".messages"); l.scrollTop = l.scrollHeight; });
  await shot(bob, "media-chat");
  await shot(alice, "media-chat-sender");

  // ---- over the limit ---------------------------------------------------------------
  const slotsBefore = slotRequests.length;
  const outBefore = await outCount();
  await pick("holiday-video.bin", "application/octet-stream", Buffer.alloc(1200 * 1024, 7));
  const notice = await alice.textContent(".media-notice", { timeout: 10000 });
  await shot(alice, "media-too-large");
  emit("too-large", { notice, slot_requests: slotRequests.length - slotsBefore, messages_added: (await outCount()) - outBefore });
  await alice.click('.media-notice button[aria-label="Dismiss"]');

  // ---- cancel during an upload -------------------------------------------------------
  await throttle(24 * 1024);
  const outBeforeCancel = await outCount();
  const bobMediaBefore = await inMedia();
  await pick("clip.webm", "video/webm", Buffer.alloc(600 * 1024, 9));
  await alice.waitForFunction(() => {
    const p = [...document.querySelectorAll(".msg.out .upload progress")].at(-1);
    return p && p.value > 0;
  }, null, { timeout: 30000 });
  const atCancel = await alice.evaluate(() => [...document.querySelectorAll(".msg.out .upload progress")].at(-1).value);
  await alice.click('.msg.out:last-child button[aria-label="Cancel upload"]');
  await alice.waitForFunction((n) => document.querySelectorAll(".msg.out").length === n, outBeforeCancel, { timeout: 10000 });
  await throttle(-1);
  await send(alice, "after the cancel");
  await bob.waitForSelector('.msg.in .text:text-is("after the cancel")', { timeout: 20000 });
  const uploadsLeft = await alice.evaluate(() => new Promise((resolve, reject) => {
    const r = indexedDB.open("bluetick");
    r.onsuccess = () => {
      const q = r.result.transaction("uploads").objectStore("uploads").count();
      q.onsuccess = () => { resolve(q.result); r.result.close(); };
      q.onerror = () => reject(q.error);
    };
    r.onerror = () => reject(r.error);
  }));
  emit("cancelled", {
    progress_at_cancel: atCancel,
    alice_added: (await outCount()) - outBeforeCancel - 1,
    bob_media_added: (await inMedia()) - bobMediaBefore,
    uploads_left: uploadsLeft,
    clip_shown: await alice.locator('.msg .doc .name:text-is("clip.webm")').count(),
  });

  // ---- picked while the server is stopped -----------------------------------------------
  await control("stop");
  await alice.waitForSelector(".banner", { timeout: 20000 });
  const offlinePdf = Buffer.concat([Buffer.from("%PDF-1.4\n% written offline\n"), Buffer.alloc(20000, 0x42)]);
  await pick("Minutes (offline).pdf", "application/pdf", offlinePdf);
  const lastOut = () => alice.evaluate(() => {
    const m = [...document.querySelectorAll(".msg.out")].at(-1);
    return { name: m?.querySelector(".doc .name")?.textContent, tick: m?.querySelector("[data-tick]")?.dataset.tick, upload: m?.querySelector(".upload")?.dataset.upload ?? "" };
  });
  await alice.waitForFunction(() => [...document.querySelectorAll(".msg.out")].at(-1)?.querySelector(".doc .name")?.textContent === "Minutes (offline).pdf");
  const before = await lastOut();
  await alice.reload();
  await alice.waitForSelector('section.main[aria-label="Chat with bob"], .chat[data-jid="bob@localhost"]', { timeout: 20000 });
  if ((await alice.locator('section.main[aria-label="Chat with bob"]').count()) === 0) await alice.click('.chat[data-jid="bob@localhost"]');
  await alice.waitForFunction(() => [...document.querySelectorAll(".msg.out")].at(-1)?.querySelector(".doc .name")?.textContent === "Minutes (offline).pdf", null, { timeout: 15000 });
  const afterReload = await lastOut();
  await control("start");
  await online(alice, 30000);
  await bob.waitForSelector('.msg.in .doc .name:text-is("Minutes (offline).pdf")', { timeout: 40000 });
  const href = await bob.evaluate(() => [...document.querySelectorAll(".msg.in .doc")].at(-1).href);
  const offBytes = Buffer.from(await (await fetch(href)).arrayBuffer());
  await alice.waitForFunction(() => {
    const t = [...document.querySelectorAll(".msg.out")].at(-1)?.querySelector("[data-tick]")?.dataset.tick;
    return t && t !== "pending";
  }, null, { timeout: 20000 });
  emit("offline-queue", {
    before,
    after_reload: afterReload,
    after: await lastOut(),
    same_bytes: offBytes.equals(offlinePdf),
    bob_copies: await bob.locator('.msg.in .doc .name:text-is("Minutes (offline).pdf")').count(),
  });

  // ---- one upload too many this hour ------------------------------------------------------
  await pick("notes.txt", "text/plain", Buffer.from("sixth upload this hour\n"));
  await alice.waitForSelector('.msg.out .upload[data-upload="failed"]', { timeout: 20000 });
  const failed = await alice.textContent('.msg.out .upload[data-upload="failed"] .error');
  const rateNotice = await alice.textContent(".media-notice");
  await shot(alice, "media-quota");
  await alice.click('.msg.out .upload[data-upload="failed"] button[aria-label="Cancel upload"]');
  await alice.waitForSelector('.msg.out .upload[data-upload="failed"]', { state: "detached" });
  emit("rate", { failed, notice: rateNotice, slot_requests: slotRequests.length });
});
