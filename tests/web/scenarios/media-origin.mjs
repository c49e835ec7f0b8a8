// Media when the upload links are on another origin than the page (as
// with S3 or a media domain): the pages are opened at 127.0.0.1 while the
// server hands out links at localhost (its domain), so the PUT, the photo
// and the voice note are cross-origin and work only if the CSP allows
// the upload origin (and the upload service answers CORS). Also: a photo
// dropped onto the chat, a file pasted into the message box and a voice
// note recorded by holding the microphone button. Last, a
// file cancelled while its slot request is unanswered (server frozen)
// stays cancelled when the answer comes.
import { cfg, emit, main, context, page, signIn, openChatWith, send, launchArgs, control, plainChat } from "./lib.mjs";

launchArgs.push("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream");
cfg.url = cfg.url.replace("//localhost:", "//127.0.0.1:");

await main(async () => {
  const csp = (await fetch(cfg.url)).headers.get("content-security-policy");
  const alice = await page(await context(), "alice");
  const bob = await page(await context(), "bob");
  await signIn(alice, "alice");
  await signIn(bob, "bob");
  await openChatWith(alice, "bob");
  await plainChat(alice); // plain media here; OMEMO would encrypt them (encmedia.mjs)
  await send(alice, "from another origin");
  await bob.waitForSelector('.chat[data-jid="alice@localhost"]', { timeout: 20000 });
  await openChatWith(bob, "alice");

  // A photo dropped onto the chat.
  await alice.evaluate(async () => {
    const c = document.createElement("canvas");
    c.width = 300;
    c.height = 200;
    const g = c.getContext("2d");
    g.fillStyle = "#3b7dd8";
    g.fillRect(0, 0, 300, 200);
    g.fillStyle = "#fff";
    g.fillRect(100, 50, 100, 100);
    const blob = await new Promise((r) => c.toBlob(r, "image/png"));
    const dt = new DataTransfer();
    dt.items.add(new File([blob], "dropped.png", { type: "image/png" }));
    const target = document.querySelector("section.main .messages");
    for (const type of ["dragenter", "dragover", "drop"]) {
      target.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: dt }));
    }
  });
  const photo = await bob.waitForFunction(() => {
    const i = document.querySelector(".msg.in .photo img.full");
    return i?.complete && i.naturalWidth > 0 && { src: i.src, w: i.naturalWidth };
  }, null, { timeout: 30000 }).then((h) => h.jsonValue());

  // A file pasted into the message box.
  await alice.evaluate(() => {
    const dt = new DataTransfer();
    dt.items.add(new File(["pasted from the clipboard\n"], "pasted.txt", { type: "text/plain" }));
    document.querySelector("textarea[aria-label=Message]").dispatchEvent(new ClipboardEvent("paste", { bubbles: true, cancelable: true, clipboardData: dt }));
  });
  await bob.waitForSelector('.msg.in .doc .name:text-is("pasted.txt")', { timeout: 30000 });
  const pasted = await (await fetch(await bob.getAttribute(".msg.in .doc", "href"))).text();

  // A voice note recorded by holding 🎤 down (sent on release), loaded by
  // bob's <audio> from the upload origin.
  const mic = await alice.locator('button[aria-label="Record a voice note"]').boundingBox();
  await alice.mouse.move(mic.x + mic.width / 2, mic.y + mic.height / 2);
  await alice.mouse.down();
  await alice.waitForFunction(() => Number(document.querySelector(".rec-time")?.dataset.ms) >= 1200, null, { timeout: 15000 });
  await alice.mouse.up();
  await bob.waitForSelector(".msg.in .voice audio", { timeout: 30000 });
  const audio = await bob.waitForFunction(() => {
    const a = document.querySelector(".msg.in .voice audio");
    return a && Number.isFinite(a.duration) && a.duration > 0 && { src: a.currentSrc, duration: a.duration };
  }, null, { timeout: 20000 }).then((h) => h.jsonValue());

  // Cancelled before the slot is granted.
  const outBefore = await alice.locator(".msg.out").count();
  await control("sigstop");
  await alice.setInputFiles('input[type=file][aria-label="Attach files"]', { name: "late.txt", mimeType: "text/plain", buffer: Buffer.from("too late\n") });
  await alice.waitForSelector('.msg.out:last-child .upload[data-upload="uploading"]', { timeout: 10000 });
  await alice.click('.msg.out:last-child button[aria-label="Cancel upload"]');
  await alice.waitForFunction((n) => document.querySelectorAll(".msg.out").length === n, outBefore, { timeout: 10000 });
  const puts = [];
  alice.on("request", (r) => r.method() === "PUT" && r.url().includes("late.txt") && puts.push(r.url()));
  await control("sigcont");
  // The slot answer arrives…
  const end = Date.now() + 20000;
  while (!alice.frames_in.some((f) => f.includes("<slot") && f.includes("late.txt"))) {
    if (Date.now() > end) throw new Error("no slot answer for late.txt");
    await new Promise((r) => setTimeout(r, 50));
  }
  // …and is ignored: no PUT, no message (a later text goes through).
  await send(alice, "after the early cancel");
  await bob.waitForSelector('.msg.in .text:text-is("after the early cancel")', { timeout: 30000 });
  // The slot answer has come by now (it was before the message on the stream).
  const early = {
    alice_late: await alice.locator('.msg .doc .name:text-is("late.txt")').count(),
    bob_late: await bob.locator('.msg .doc .name:text-is("late.txt")').count(),
    alice_added: (await alice.locator(".msg.out").count()) - outBefore - 1,
    puts: puts.length,
  };
  emit("early-cancel", early);

  emit("cross-origin", {
    csp,
    page_origin: new URL(alice.url()).origin,
    photo_origin: new URL(photo.src).origin,
    photo_w: photo.w,
    pasted,
    audio_origin: new URL(audio.src).origin,
    audio_duration: audio.duration,
  });
});
