// Media messages: photos, video, audio, voice notes and documents through
// the server's XEP-0363 upload service (docs/upload.md, docs/web.md).
//
// Sending: the file is checked against the service's max-file-size (from
// disco, kept in kv "upload") before anything leaves the device, then
// stored with its message in IndexedDB ("uploads": the blob survives a
// reload while offline), then, once online, a slot is asked for and the
// bytes PUT with XMLHttpRequest (upload progress, abort). Only then does
// the message join the outgoing queue (core.js), with the link as its body,
// XEP-0066 <x xmlns='jabber:x:oob'> and XEP-0447 stateless file sharing
// carrying XEP-0446 metadata (name, size, type, dimensions, duration, hash)
// and an XEP-0264 thumbnail as a data: URI.
//
// Receiving: the same elements are read back; a message with only an OOB
// link equal to its body (most clients) is shown as media too.
//
// In an end-to-end encrypted chat (e2e.active) a file goes as XEP-0454
// says instead: encrypted here with AES-256-GCM (aesgcm.js) before it is
// stored for upload, uploaded as ciphertext under a random name, and sent
// as a body that is only its aesgcm:// link, with none of the elements
// above (they would tell the server its name, type, size and thumbnail).
// The thumbnail, name and hash stay in this device's message record, the
// original in "e2efiles" (encmedia.js reads it and receives such files).
import { xml } from "@xmpp/client";
import * as core from "./core.js";
import * as store from "./db.js";
import * as aesgcm from "./aesgcm.js";
import { e2e } from "./e2e.js";

const NS = {
  upload: "urn:xmpp:http:upload:0",
  info: "http://jabber.org/protocol/disco#info",
  items: "http://jabber.org/protocol/disco#items",
  data: "jabber:x:data",
  oob: "jabber:x:oob",
  sfs: "urn:xmpp:sfs:0",
  meta: "urn:xmpp:file:metadata:0",
  thumbs: "urn:xmpp:thumbs:1",
  hashes: "urn:xmpp:hashes:2",
  urlData: "http://jabber.org/protocol/url-data",
  stanzas: "urn:ietf:params:xml:ns:xmpp-stanzas",
};

// What the UI shows beside the messages: a notice (refusals), each
// upload's progress (0..1) by message key, the photo open in the viewer.
export const ui = { notice: "", progress: new Map(), viewer: null, max: 0 };

export function setNotice(text) {
  ui.notice = text;
  core.changed();
}

export function fmtSize(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10240 ? 1 : 0)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

export function fmtDuration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

export function kindOf(type) {
  if (/^image\/(png|jpeg|gif|webp|avif|bmp)$/.test(type)) return "image";
  if (type.startsWith("video/")) return "video";
  if (type.startsWith("audio/")) return "audio";
  return "file";
}

const PREVIEW = { image: "📷 Photo", video: "🎥 Video", audio: "🎤 Voice note", file: "📄 " };
export const previewOf = (media) => {
  const k = kindOf(media.type);
  if (k === "audio" && !media.voice) return "🎵 " + media.name;
  if (k === "audio" && media.duration) return "🎤 Voice note " + fmtDuration(media.duration);
  return k === "file" ? PREVIEW.file + media.name : PREVIEW[k];
};

// Only http(s) links are ever put in a src or href.
const safeURL = (u) => (typeof u === "string" && /^https?:\/\//i.test(u) ? u : "");
const safeThumb = (u) => (typeof u === "string" && /^data:image\/(jpeg|png|webp);base64,[A-Za-z0-9+/=]+$/.test(u) ? u : "");

// ---- the upload service ----------------------------------------------------------

let service = null; // {jid, max} once discovered on this session

async function discover(c) {
  const domain = core.state.account.domain;
  const info = async (to) => {
    const res = await c.iqCaller.request(xml("iq", { type: "get", to }, xml("query", { xmlns: NS.info })), 10000);
    const q = res.getChild("query", NS.info);
    if (!q?.getChildren("feature").some((f) => f.attrs.var === NS.upload)) return null;
    let max = 0;
    for (const x of q.getChildren("x", NS.data)) {
      const fields = x.getChildren("field");
      if (fields.find((f) => f.attrs.var === "FORM_TYPE")?.getChildText("value") !== NS.upload) continue;
      max = Number(fields.find((f) => f.attrs.var === "max-file-size")?.getChildText("value")) || 0;
    }
    return { jid: to, max };
  };
  let found = await info(domain).catch(() => null);
  if (!found) {
    // XEP-0363 §2: the service may be a component among the domain's items.
    const res = await c.iqCaller.request(xml("iq", { type: "get", to: domain }, xml("query", { xmlns: NS.items })), 10000).catch(() => null);
    for (const it of (res?.getChild("query", NS.items)?.getChildren("item") ?? []).slice(0, 10)) {
      found = await info(it.attrs.jid).catch(() => null);
      if (found) break;
    }
  }
  service = found ?? { jid: "", max: 0 };
  ui.max = service.max;
  await store.kvSet("upload", service);
  core.changed();
  return service;
}

core.hooks.online.push(async (c) => {
  try {
    await discover(c);
  } catch (e) {
    console.info("upload discovery:", e?.message ?? e);
  }
  pump();
});

store.kvGet("upload").then((s) => {
  if (s && !service) ui.max = s.max;
}).catch(() => {});

export const uploadAvailable = () => !service || Boolean(service.jid);

// ---- sending ------------------------------------------------------------------------

const cleanName = (n) =>
  (String(n || "file").replace(/[\u0000-\u001f\u007f/\\]/g, "_").replace(/^\.+$/, "_").slice(0, 120) || "file");

export async function thumbnail(file) {
  const bmp = await createImageBitmap(file);
  const scale = Math.min(1, 200 / Math.max(bmp.width, bmp.height));
  const w = Math.max(1, Math.round(bmp.width * scale));
  const h = Math.max(1, Math.round(bmp.height * scale));
  const cv = new OffscreenCanvas(w, h);
  const g = cv.getContext("2d");
  g.fillStyle = "#fff"; // transparent PNGs on white, as JPEG has no alpha
  g.fillRect(0, 0, w, h);
  g.drawImage(bmp, 0, 0, w, h);
  const blob = await cv.convertToBlob({ type: "image/jpeg", quality: 0.7 });
  const b64 = btoa(String.fromCharCode(...new Uint8Array(await blob.arrayBuffer())));
  const out = { width: bmp.width, height: bmp.height, thumb: "data:image/jpeg;base64," + b64, tw: w, th: h };
  bmp.close();
  return out;
}

async function sha256(blob) {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", await blob.arrayBuffer()));
  let s = "";
  for (const b of d) s += String.fromCharCode(b);
  return btoa(s);
}

// encryptFile (XEP-0454) sets media.enc: a random upload name with the
// file's extension, the ciphertext's size, a fresh key and IV for this
// file, kept (until sent, in the link) with its message. It returns the
// ciphertext, the only thing stored for upload.
async function encryptFile(file, media) {
  const enc = await aesgcm.encrypt(await file.arrayBuffer());
  const rand = aesgcm.toHex(crypto.getRandomValues(new Uint8Array(12)));
  media.enc = { name: `${rand}.${aesgcm.extFor(media.name, media.type)}`, size: enc.ciphertext.length, key: aesgcm.toHex(enc.key), iv: aesgcm.toHex(enc.iv) };
  return { blob: new Blob([enc.ciphertext], { type: "application/octet-stream" }) };
}

// sendFile queues a file for chat; opts.duration (ms) and opts.voice for a
// voice note. Refused at once, with a notice, when over the server's limit.
export async function sendFile(chat, file, opts = {}) {
  const name = cleanName(file.name);
  if (!file.size) return setNotice(`“${name}” is empty.`);
  if (ui.max && file.size > ui.max) {
    return setNotice(`“${name}” is ${fmtSize(file.size)}; this server accepts files up to ${fmtSize(ui.max)}. Nothing was sent.`);
  }
  if (service && !service.jid) return setNotice("This server has no file upload service.");
  const type = (file.type || "application/octet-stream").split(";")[0].trim().toLowerCase();
  const media = { name, size: file.size, type };
  if (opts.duration) media.duration = Math.round(opts.duration);
  if (opts.voice) media.voice = true;
  if (kindOf(type) === "image") {
    try {
      Object.assign(media, await thumbnail(file));
    } catch (e) {
      console.info("thumbnail:", e?.message ?? e);
    }
  }
  media.hash = await sha256(file);
  let blob = file;
  if (e2e.active(chat)) ({ blob } = await encryptFile(file, media));
  const id = crypto.randomUUID();
  const m = {
    key: store.msgKey(chat, "out", id), chat, dir: "out", id, body: "", ts: Date.now(), tick: "pending",
    media, upload: "waiting", preview: previewOf(media),
  };
  const d = await store.db();
  const names = media.enc ? ["messages", "uploads", "e2efiles"] : ["messages", "uploads"];
  const tx = d.transaction(names, "readwrite");
  await Promise.all([
    tx.objectStore("messages").put(m),
    tx.objectStore("uploads").put({ key: m.key, chat, blob, seq: m.ts }),
    media.enc && tx.objectStore("e2efiles").put({ key: m.key, blob: file, type }),
    tx.done,
  ]);
  setNotice("");
  await core.touchChat(chat, m, false);
  showMessage(m);
  pump();
}

function showMessage(m) {
  const st = core.state;
  if (st.open !== m.chat || st.hasNewer) return;
  const i = st.messages.findIndex((x) => x.key === m.key);
  st.messages = i < 0 ? [...st.messages, m] : st.messages.map((x) => (x.key === m.key ? m : x));
  core.changed();
}

// The blob of an upload not yet done, for showing one's own photo full size.
export async function pendingBlob(key) {
  return (await (await store.db()).get("uploads", key))?.blob ?? null;
}

const xhrs = new Map(); // message key -> XMLHttpRequest in flight
let retryTimer = null;
let retryWait = 5000; // doubles up to 5 min while the upload host fails
// Slots granted but not yet used (PUT failed): reused while their token is
// fresh, so retries do not eat the user's uploads-per-hour.
const slots = new Map(); // message key -> {put, get, headers, at}
let pumping = false;

// pump uploads what waits, oldest first, while online.
async function pump() {
  if (pumping) return;
  pumping = true;
  try {
    for (;;) {
      const c = core.connection();
      if (!c || core.state.status !== "online") return;
      const rows = (await (await store.db()).getAll("uploads")).sort((a, b) => a.seq - b.seq);
      let row = null;
      for (const r of rows) {
        const m = await store.getMessage(r.key);
        if (!m) {
          await (await store.db()).delete("uploads", r.key);
          continue;
        }
        if (m.upload === "waiting" || m.upload === "uploading") {
          row = { ...r, m };
          break;
        }
      }
      if (!row) return;
      if (!(await uploadOne(c, row))) return;
    }
  } finally {
    pumping = false;
  }
}

// Keys of messages cancelled while their upload was under way: whatever
// step of it ends afterwards must not bring the message back.
const cancelled = new Set();

async function setUpload(m, upload, error) {
  m = { ...m, upload, error: error || undefined };
  if (cancelled.has(m.key)) return m;
  await store.putMessage(m);
  showMessage(m);
  return m;
}

// requestSlot asks the service for a slot: the slot, null when refused
// (the message is marked failed), {stop: true} when offline.
// What the upload service is told and given: the file, or for an
// encrypted one its random name, the ciphertext's size and no type.
const upFile = (f) => (f.enc ? { name: f.enc.name, size: f.enc.size, type: "application/octet-stream" } : f);

async function requestSlot(c, m) {
  const { name, size, type } = upFile(m.media);
  let slot;
  try {
    slot = await c.iqCaller.request(
      xml("iq", { type: "get", to: service.jid }, xml("request", { xmlns: NS.upload, filename: name, size: String(size), "content-type": type })),
      15000,
    );
  } catch (e) {
    ui.progress.delete(m.key);
    if (!e?.condition || e.condition === "timeout" || e.name === "TimeoutError") {
      await setUpload(m, "waiting");
      return { stop: true };
    }
    await setUpload(m, "failed", refusal(e));
    setNotice(`“${m.media.name}” was not sent: ${refusal(e)}`);
    return null;
  }
  const s = slot.getChild("slot", NS.upload);
  const put = safeURL(s?.getChild("put")?.attrs.url);
  const get = safeURL(s?.getChild("get")?.attrs.url);
  if (!put || !get) {
    ui.progress.delete(m.key);
    await setUpload(m, "failed", "The server's upload answer had no usable link.");
    return null;
  }
  const headers = {};
  for (const hd of s.getChild("put").getChildren("header")) {
    // XEP-0363 §4: only these may be passed on.
    if (/^(authorization|cookie|expires)$/i.test(hd.attrs.name)) headers[hd.attrs.name] = hd.text();
  }
  return { put, get, headers, at: Date.now() };
}

// uploadOne returns false when the pump should stop (offline).
async function uploadOne(c, { m, blob }) {
  if (!m.media.enc && e2e.active(m.chat)) {
    // Picked before the chat's encryption was known (just signed in, the
    // contact's devices not fetched yet): encrypted now, before any byte
    // of it leaves the device (a slot asked for the plain file is dropped).
    slots.delete(m.key);
    const plain = blob;
    const media = { ...m.media };
    ({ blob } = await encryptFile(plain, media));
    if (cancelled.has(m.key)) return true;
    m = { ...m, media };
    const d = await store.db();
    const tx = d.transaction(["messages", "uploads", "e2efiles"], "readwrite");
    const row = await tx.objectStore("uploads").get(m.key);
    if (!row) return true; // cancelled meanwhile
    await Promise.all([
      tx.objectStore("messages").put(m),
      tx.objectStore("uploads").put({ ...row, blob }),
      tx.objectStore("e2efiles").put({ key: m.key, blob: plain, type: media.type }),
      tx.done,
    ]);
    showMessage(m);
  }
  const { size, type } = upFile(m.media);
  if (!service) await discover(c).catch(() => {});
  if (!service?.jid) {
    await setUpload(m, "failed", "This server has no file upload service.");
    return true;
  }
  if (service.max && size > service.max) {
    await setUpload(m, "failed", `${fmtSize(size)} is over this server's limit of ${fmtSize(service.max)}.`);
    return true;
  }
  ui.progress.set(m.key, 0);
  m = await setUpload(m, "uploading");
  let granted = slots.get(m.key);
  if (granted && Date.now() - granted.at > 4 * 60 * 1000) granted = null;
  if (!granted) {
    granted = await requestSlot(c, m);
    if (!granted || granted.stop) return !granted?.stop;
    slots.set(m.key, granted);
  }
  if (cancelled.has(m.key)) return true;
  const { put, get, headers } = granted;
  let status = await new Promise((resolve) => {
    const x = new XMLHttpRequest();
    xhrs.set(m.key, x);
    x.open("PUT", put);
    for (const [k, v] of Object.entries(headers)) x.setRequestHeader(k, v);
    x.setRequestHeader("Content-Type", type);
    let last = 0;
    x.upload.onprogress = (e) => {
      if (!e.lengthComputable) return;
      ui.progress.set(m.key, e.loaded / e.total);
      const now = performance.now();
      if (now - last > 80 || e.loaded === e.total) {
        last = now;
        core.changed();
      }
    };
    x.onload = () => resolve(x.status);
    x.onerror = () => resolve(0);
    x.onabort = () => resolve(-1);
    x.send(blob);
  });
  xhrs.delete(m.key);
  ui.progress.delete(m.key);
  if (status === -1) return true; // cancelled: cancel() removed it
  if (status === 0) {
    // The upload host is unreachable (or the network went): try again
    // soon, and at the next session start in any case.
    await setUpload(m, "waiting");
    clearTimeout(retryTimer);
    retryTimer = setTimeout(pump, retryWait);
    retryWait = Math.min(retryWait * 2, 5 * 60 * 1000);
    return false;
  }
  slots.delete(m.key);
  retryWait = 5000;
  if (status === 409) {
    // Filled already: an earlier PUT of this slot succeeded but its answer
    // was lost. The link serving the file says so.
    status = (await fetch(get, { method: "HEAD" }).then((r) => r.ok).catch(() => false)) ? 201 : 409;
  }
  if (status !== 200 && status !== 201) {
    const why = status === 413 ? "the file is too large for the server" : status === 403 ? "the upload link was refused or expired" : `HTTP ${status}`;
    await setUpload(m, "failed", `Upload failed: ${why}.`);
    return true;
  }
  if (cancelled.has(m.key)) return true; // cancelled as the PUT ended
  // Uploaded: the message joins the outgoing queue with its link. It is
  // read again: deleted meanwhile (for everyone: actions.js), it never goes.
  const d = await store.db();
  const cur = await store.getMessage(m.key);
  if (!cur || cur.retracted) {
    await d.delete("uploads", m.key);
    return true;
  }
  let done = { ...cur, body: get, media: { ...cur.media, url: get }, upload: undefined, error: undefined };
  if (cur.media.enc) {
    // The body is the aesgcm link and nothing else; no url, so the
    // outgoing hook adds no OOB, SFS or thumbnail.
    const { enc, ...f } = cur.media;
    const link = aesgcm.link(get, aesgcm.fromHex(enc.key), aesgcm.fromHex(enc.iv));
    done = { ...cur, body: link, media: { ...f, aesgcm: link }, upload: undefined, error: undefined };
  }
  const tx = d.transaction(["messages", "outbox", "uploads"], "readwrite");
  await Promise.all([
    tx.objectStore("messages").put(done),
    tx.objectStore("outbox").add({ key: done.key, chat: done.chat, id: done.id }),
    tx.objectStore("uploads").delete(done.key),
    tx.done,
  ]);
  showMessage(done);
  core.flushOutbox();
  return true;
}

function refusal(e) {
  const app = e.application;
  if (e.condition === "not-acceptable" && app?.name === "file-too-large") {
    const max = Number(app.getChildText("max-file-size"));
    return max ? `the file is over the server's limit of ${fmtSize(max)}.` : "the file is too large for the server.";
  }
  if (e.condition === "resource-constraint") {
    const stamp = app?.name === "retry" ? Date.parse(app.attrs.stamp) : NaN;
    const at = new Date(stamp);
    const time = at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    const when = !Number.isFinite(stamp) ? "" : at.toDateString() === new Date().toDateString() ? ` Try again after ${time}.` : ` Try again on ${at.toLocaleDateString()} at ${time}.`;
    return `your upload quota is used up (${e.text || "quota reached"}).${when}`;
  }
  if (e.condition === "not-acceptable") return `the server does not accept this file${e.text ? ` (${e.text})` : ""}.`;
  return `the server refused it (${e.condition}${e.text ? ": " + e.text : ""}).`;
}

// cancel stops an upload (or a failed one) and removes its message.
export async function cancel(key) {
  cancelled.add(key);
  xhrs.get(key)?.abort();
  xhrs.delete(key);
  slots.delete(key);
  ui.progress.delete(key);
  const m = await store.getMessage(key);
  if (!m || m.media?.url || m.media?.aesgcm) return;
  const d = await store.db();
  const tx = d.transaction(["messages", "uploads", "e2efiles"], "readwrite");
  await Promise.all([tx.objectStore("messages").delete(key), tx.objectStore("uploads").delete(key), tx.objectStore("e2efiles").delete(key), tx.done]);
  const st = core.state;
  st.messages = st.messages.filter((x) => x.key !== key);
  const chat = st.chats.get(m.chat);
  if (chat?.lastKey === key) {
    const prev = (await store.chatMessages(m.chat, 1))[0];
    const c2 = { ...chat, lastKey: prev?.key, lastText: prev ? prev.preview ?? prev.body : "", lastDir: prev?.dir, lastTick: prev?.tick };
    st.chats.set(m.chat, c2);
    await store.putChat(c2);
  }
  core.changed();
  pump();
}

export async function retry(key) {
  const m = await store.getMessage(key);
  if (m?.upload !== "failed") return;
  await setUpload(m, "waiting");
  pump();
}

// ---- the stanza ---------------------------------------------------------------------

core.hooks.outgoing.push((m, kids) => {
  const f = m.media;
  if (!f?.url) return;
  const meta = [xml("media-type", {}, f.type), xml("name", {}, f.name), xml("size", {}, String(f.size))];
  if (f.width && f.height) meta.push(xml("width", {}, String(f.width)), xml("height", {}, String(f.height)));
  if (f.duration) meta.push(xml("length", {}, String(f.duration)));
  if (f.hash) meta.push(xml("hash", { xmlns: NS.hashes, algo: "sha-256" }, f.hash));
  if (f.voice) meta.push(xml("desc", {}, "Voice note"));
  if (f.thumb) meta.push(xml("thumbnail", { xmlns: NS.thumbs, uri: f.thumb, "media-type": "image/jpeg", width: String(f.tw), height: String(f.th) }));
  kids.push(
    xml("x", { xmlns: NS.oob }, xml("url", {}, f.url)),
    xml("file-sharing", { xmlns: NS.sfs, disposition: kindOf(f.type) === "file" ? "attachment" : "inline" },
      xml("file", { xmlns: NS.meta }, ...meta),
      xml("sources", {}, xml("url-data", { xmlns: NS.urlData, target: f.url }))),
  );
});

core.hooks.decorate.push((st, m) => {
  const oob = safeURL(st.getChild("x", NS.oob)?.getChildText("url"));
  const sfs = st.getChild("file-sharing", NS.sfs);
  const file = sfs?.getChild("file", NS.meta);
  const src = safeURL(sfs?.getChild("sources")?.getChild("url-data", NS.urlData)?.attrs.target);
  let media = null;
  if (file && (src || oob)) {
    const num = (n) => Number(file.getChildText(n)) || 0;
    const th = file.getChild("thumbnail", NS.thumbs);
    const url = src || oob;
    media = {
      url,
      name: cleanName(file.getChildText("name") || nameFromURL(url)),
      size: num("size"),
      type: (file.getChildText("media-type") || guessType(url)).toLowerCase(),
      width: num("width"),
      height: num("height"),
      duration: num("length"),
      voice: file.getChildText("desc") === "Voice note",
    };
    const t = safeThumb(th?.attrs.uri);
    if (t) Object.assign(media, { thumb: t, tw: Number(th.attrs.width) || 0, th: Number(th.attrs.height) || 0 });
  } else if (oob && m.body.trim() === oob) {
    media = { url: oob, name: nameFromURL(oob), size: 0, type: guessType(oob) };
  }
  if (!media) return;
  m.media = media;
  m.preview = previewOf(media);
});

function nameFromURL(u) {
  try {
    return cleanName(decodeURIComponent(new URL(u).pathname.split("/").pop()));
  } catch {
    return "file";
  }
}

const EXT = {
  png: "image/png", jpg: "image/jpeg", jpeg: "image/jpeg", gif: "image/gif", webp: "image/webp",
  mp4: "video/mp4", webm: "video/webm", mov: "video/quicktime",
  ogg: "audio/ogg", oga: "audio/ogg", opus: "audio/ogg", mp3: "audio/mpeg", m4a: "audio/mp4", wav: "audio/wav",
  pdf: "application/pdf",
};
function guessType(u) {
  const ext = nameFromURL(u).split(".").pop().toLowerCase();
  return EXT[ext] ?? "application/octet-stream";
}

// ---- voice notes -----------------------------------------------------------------

export const recordingSupported = () => typeof MediaRecorder !== "undefined" && Boolean(navigator.mediaDevices?.getUserMedia);

// record starts the microphone; the answer's stop() resolves with the
// file and its duration, cancel() throws it away.
export async function record() {
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  const type = ["audio/ogg;codecs=opus", "audio/webm;codecs=opus", "audio/webm"].find((t) => MediaRecorder.isTypeSupported(t)) ?? "";
  const rec = new MediaRecorder(stream, type ? { mimeType: type } : {});
  const chunks = [];
  rec.ondataavailable = (e) => e.data.size && chunks.push(e.data);
  const started = performance.now();
  rec.start(250);
  const end = () => stream.getTracks().forEach((t) => t.stop());
  return {
    started,
    stop: () =>
      new Promise((resolve) => {
        rec.onstop = () => {
          end();
          const mime = (rec.mimeType || type || "audio/webm").split(";")[0];
          const ext = mime === "audio/ogg" ? "ogg" : "webm";
          const stamp = new Date().toISOString().slice(0, 19).replace(/[-:T]/g, "");
          resolve({ file: new File(chunks, `voice-${stamp}.${ext}`, { type: mime }), duration: performance.now() - started });
        };
        rec.stop();
      }),
    cancel: () => {
      rec.onstop = end;
      rec.stop();
    },
  };
}
