// End-to-end encrypted media received (XEP-0454): a message whose body,
// after OMEMO decryption, is one aesgcm:// link and nothing else is shown
// as a file. The app downloads the ciphertext from https://host/path (see
// aesgcm.fetchURL for plain http), checks the GCM tag and decrypts it here,
// tells the type from the bytes and the extension, makes a thumbnail of a
// photo on this device, and keeps the plaintext in IndexedDB ("e2efiles",
// by message key) so a reload does not fetch it again. The aesgcm link is
// never put in an href or src: only blob: URLs of decrypted data are.
// The sender's own files are in "e2efiles" from the start (media.js).
import * as core from "./core.js";
import * as store from "./db.js";
import * as aesgcm from "./aesgcm.js";
import { kindOf, previewOf, thumbnail, ui as mediaUI } from "./media.js";

const MAX = 256 * 1024 * 1024; // never read more than this into memory

// status of downloads by message key: {state: "loading"} or
// {state: "failed", error, retry (a retry may help)}.
export const status = new Map();

export const isEncrypted = (f) => Boolean(f && (f.aesgcm || f.enc));

function nameOf(path) {
  try {
    const n = decodeURIComponent(path.split("?")[0].split("/").pop());
    return n.replace(/[\u0000-\u001f\u007f/\\]/g, "_").slice(0, 120) || "file";
  } catch {
    return "file";
  }
}

core.hooks.decorate.push((st, m) => {
  const p = aesgcm.parse(m.body);
  if (!p) return;
  const name = nameOf(p.path);
  // Whatever other elements came with it (a client adding OOB with the
  // same link) say nothing the link does not.
  m.media = { aesgcm: m.body.trim(), name, size: 0, type: aesgcm.typeOfExt(name) };
  m.preview = previewOf(m.media);
});

export async function blobOf(key) {
  return (await (await store.db()).get("e2efiles", key))?.blob ?? null;
}

// The origins this page may fetch from (its CSP's connect-src, read once
// from the app's own response headers): a link elsewhere is refused with
// a message rather than a CSP violation, and http is used for the app's
// own plain-http origins (a server on loopback or a LAN without TLS).
let origins = null;
async function allowed() {
  if (origins) return origins;
  // (Offline, this throws: the download fails as one to retry.)
  const res = await fetch("/", { method: "HEAD", cache: "no-store" });
  const csp = res.headers.get("content-security-policy");
  const dirs = (csp ?? "").split(";").map((d) => d.trim().split(/\s+/));
  const dir = dirs.find((d) => d[0] === "connect-src") ?? dirs.find((d) => d[0] === "default-src");
  // No policy: anything; else the listed origins ('self' is the page's).
  const list = dir ? dir.slice(1).map((s) => (s === "'self'" ? location.origin : s)).filter((s) => /^https?:\/\/[^/]+$/.test(s)) : ["*"];
  if (location.protocol === "http:" && !list.includes(location.origin)) list.push(location.origin);
  origins = list;
  return origins;
}

const queue = [];
let running = 0;

// ensure starts the download of m's file unless it is stored, under way
// or failed (retry() clears a failure).
export function ensure(m) {
  if (!m.media?.aesgcm || status.has(m.key)) return;
  if (m.media.failed) {
    status.set(m.key, { state: "failed", error: m.media.failed, retry: false });
    return core.changed();
  }
  status.set(m.key, { state: "loading" });
  queue.push(m.key);
  pump();
}

export function retry(m) {
  status.delete(m.key);
  core.changed();
  ensure(m);
}

// Back online: downloads that failed for want of a network go again.
core.hooks.online.push(() => {
  for (const [key, s] of status) {
    if (s.state !== "failed" || !s.retry) continue;
    status.set(key, { state: "loading" });
    queue.push(key);
  }
  core.changed();
  pump();
});

function pump() {
  while (running < 2 && queue.length) {
    const key = queue.shift();
    running++;
    download(key)
      .catch((e) => fail(key, `Could not open this file: ${e?.message ?? e}`, true))
      .finally(() => {
        running--;
        pump();
      });
  }
}

// fail shows why a file cannot be shown. One that trying again cannot
// fix (altered, gone, elsewhere) is also kept with its message, so a
// reload does not fetch it again.
async function fail(key, error, retry) {
  status.set(key, { state: "failed", error, retry });
  core.changed();
  if (retry) return;
  const m = await store.getMessage(key);
  if (!m?.media) return;
  const m2 = { ...m, media: { ...m.media, failed: error } };
  await store.putMessage(m2);
  core.showUpdated(m2);
  core.changed();
}

async function download(key) {
  let m = await store.getMessage(key);
  if (!m?.media?.aesgcm) return status.delete(key);
  if (await blobOf(key)) {
    status.delete(key);
    return core.changed();
  }
  const p = aesgcm.parse(m.media.aesgcm);
  if (!p) return fail(key, "This link is not a valid encrypted file link.", false);
  let list;
  try {
    list = await allowed();
  } catch {
    return fail(key, "Could not download this file: the server did not answer.", true);
  }
  const url = aesgcm.fetchURL(p, list.filter((o) => o.startsWith("http:")));
  if (!list.includes("*") && !list.includes(new URL(url).origin)) {
    return fail(key, `This file is on another server (${p.host}), which Bluetick Web may not fetch from.`, false);
  }
  let res;
  try {
    res = await fetch(url, { credentials: "omit", cache: "no-store", referrerPolicy: "no-referrer" });
  } catch {
    return fail(key, "Could not download this file: the server did not answer.", true);
  }
  if (!res.ok) {
    const why = res.status === 404 || res.status === 410 ? "it is no longer on the server" : `HTTP ${res.status}`;
    return fail(key, `Could not download this file: ${why}.`, res.status >= 500 || res.status === 429);
  }
  if (Number(res.headers.get("content-length")) > MAX) return fail(key, "This file is too large to open here.", false);
  let ct;
  try {
    ct = new Uint8Array(await res.arrayBuffer());
  } catch {
    return fail(key, "Could not download this file: the download was cut.", true);
  }
  let plain;
  try {
    plain = await aesgcm.decrypt(ct, p.key, p.iv);
  } catch (e) {
    if (!(e instanceof aesgcm.DecryptError)) throw e;
    return fail(key, "This file could not be decrypted: it was changed after it was sent, or the key is wrong.", false);
  }
  const type = aesgcm.typeOf(plain, m.media.name);
  const blob = new Blob([plain], { type });
  const extra = { type, size: plain.length };
  if (kindOf(type) === "image") {
    try {
      Object.assign(extra, await thumbnail(blob));
    } catch (e) {
      // Not an image a browser can draw: shown as a document.
      console.info("thumbnail:", e?.message ?? e);
      extra.type = "application/octet-stream";
    }
  }
  // Read again: it may have changed (retracted, reactions) meanwhile.
  m = await store.getMessage(key);
  if (!m) return status.delete(key);
  const m2 = { ...m, media: { ...m.media, ...extra } };
  m2.preview = previewOf(m2.media);
  const d = await store.db();
  const tx = d.transaction(["messages", "e2efiles"], "readwrite");
  await Promise.all([tx.objectStore("messages").put(m2), tx.objectStore("e2efiles").put({ key, blob, type: extra.type }), tx.done]);
  status.delete(key);
  core.showUpdated(m2);
  core.changed();
}

// openViewer shows a decrypted photo full size (the viewer revokes the
// blob: URL when it closes).
export async function openViewer(m) {
  const b = await blobOf(m.key);
  if (!b) return;
  mediaUI.viewer = { src: URL.createObjectURL(b), name: m.media.name, url: "" };
  core.changed();
}
