// Media in the chat: the bubbles (photo, video, voice note, document), the
// upload progress with cancel, the photo viewer, the attach and
// voice-note buttons, drag and drop and paste. Text only, as everywhere.
import { h } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import htm from "htm";
import * as core from "../core.js";
import * as media from "../media.js";
import { isEncrypted } from "../encmedia.js";
import { EncMediaBody } from "./encmedia.js";

const html = htm.bind(h);
const { ui } = media;

function Progress({ m }) {
  if (m.dir !== "out" || !m.upload) return null;
  const p = ui.progress.get(m.key);
  const pct = Math.round((p ?? 0) * 100);
  // "uploading" kept from before a reload, nothing in flight: waiting.
  const state = m.upload === "uploading" && p === undefined ? "waiting" : m.upload;
  return html`<div class="upload" data-upload=${state}>
    ${state === "uploading" && html`<progress max="100" value=${pct} aria-label=${"Uploading " + m.media.name}></progress><span class="pct">${pct}%</span>`}
    ${state === "waiting" && html`<span class="fine">Waiting to upload</span>`}
    ${m.upload === "failed" && html`<span class="error" role="alert">${m.error || "Upload failed."}</span>
      <button type="button" class="link" onClick=${() => media.retry(m.key)}>Retry</button>`}
    <button type="button" class="icon cancel" aria-label="Cancel upload" title="Cancel" onClick=${() => media.cancel(m.key)}>✕</button>
  </div>`;
}

function Photo({ m }) {
  const f = m.media;
  const [full, setFull] = useState(false);
  const w = f.width && f.height ? Math.min(300, f.width) : 240;
  const hgt = f.width && f.height ? Math.round((w * f.height) / f.width) : 180;
  const open = async () => {
    let src = f.url;
    if (!src) {
      const b = await media.pendingBlob(m.key);
      if (!b) return;
      src = URL.createObjectURL(b);
    }
    ui.viewer = { src, name: f.name, url: f.url || "" };
    core.changed();
  };
  return html`<button type="button" class="photo" aria-label=${"Open photo " + f.name} onClick=${open} style=${{ width: w + "px", height: Math.min(hgt, 360) + "px" }}>
    ${f.thumb && html`<img class="thumb" src=${f.thumb} alt="" />`}
    ${f.url && html`<img class=${"full" + (full ? " loaded" : "")} src=${f.url} alt=${f.name} onLoad=${() => setFull(true)} />`}
  </button>`;
}

function Voice({ m }) {
  const f = m.media;
  const ref = useRef(null);
  // A recording made in a browser (WebM) often has no duration in its
  // header: ask for the end once, so the player shows the length.
  const meta = () => {
    const a = ref.current;
    if (a && a.duration === Infinity) {
      a.ontimeupdate = () => {
        a.ontimeupdate = null;
        a.currentTime = 0;
      };
      a.currentTime = 1e7;
    }
  };
  return html`<div class="voice">
    <span class="mic" aria-hidden="true">🎤</span>
    ${f.url ? html`<audio ref=${ref} controls preload="metadata" src=${f.url} onLoadedMetadata=${meta}></audio>` : html`<span class="fine">Voice note</span>`}
    <span class="dur" data-duration=${f.duration || 0}>${f.duration ? media.fmtDuration(f.duration) : ""}</span>
  </div>`;
}

function Doc({ m }) {
  const f = m.media;
  const ext = (f.name.includes(".") ? f.name.split(".").pop() : "file").slice(0, 5).toUpperCase();
  const inner = html`<span class="ext" aria-hidden="true">${ext}</span>
    <span class="info"><span class="name">${f.name}</span><span class="size">${f.size ? media.fmtSize(f.size) + " · " : ""}${ext}</span></span>
    ${f.url && html`<span class="dl" aria-hidden="true">↓</span>`}`;
  return f.url
    ? html`<a class="doc" href=${f.url} download=${f.name} target="_blank" rel="noopener noreferrer" aria-label=${"Download " + f.name}>${inner}</a>`
    : html`<div class="doc">${inner}</div>`;
}

// MediaBody replaces the text of a message that carries a file.
export function MediaBody({ m }) {
  const f = m.media;
  if (isEncrypted(f)) return html`<${EncMediaBody} m=${m} Progress=${Progress} />`; // XEP-0454 (ui/encmedia.js)
  const kind = media.kindOf(f.type);
  return html`<div class=${"media media-" + kind} data-kind=${kind}>
    ${kind === "image" && html`<${Photo} m=${m} />`}
    ${kind === "video" && (f.url ? html`<video controls preload="metadata" src=${f.url}></video>` : html`<${Doc} m=${m} />`)}
    ${kind === "audio" && html`<${Voice} m=${m} />`}
    ${kind === "file" && html`<${Doc} m=${m} />`}
    <${Progress} m=${m} />
  </div>`;
}

// Viewer: the photo full size; Escape or ✕ closes it.
export function Viewer() {
  const v = ui.viewer;
  if (!v) return null;
  return html`<div class="viewer" role="dialog" aria-modal="true" aria-label=${"Photo " + v.name} onClick=${(e) => e.target === e.currentTarget && closeViewer()}>
    <header>
      <span class="name">${v.name}</span>
      ${v.url && html`<a class="icon" href=${v.url} download=${v.name} target="_blank" rel="noopener noreferrer" aria-label="Download" title="Download">↓</a>`}
      <button type="button" class="icon" aria-label="Close" title="Close" onClick=${closeViewer}>✕</button>
    </header>
    <div class="stage" onClick=${(e) => e.target === e.currentTarget && closeViewer()}><img src=${v.src} alt=${v.name} /></div>
  </div>`;
}

function closeViewer() {
  if (ui.viewer?.src.startsWith("blob:")) URL.revokeObjectURL(ui.viewer.src);
  ui.viewer = null;
  core.changed();
}

// Registered before main.js's own Escape (which closes the chat).
addEventListener(
  "keydown",
  (e) => {
    if (e.key === "Escape" && ui.viewer) {
      e.preventDefault();
      e.stopPropagation();
      closeViewer();
    }
  },
  true,
);

// Notice: a refusal (too large, quota) above the composer.
export function Notice() {
  if (!ui.notice) return null;
  return html`<div class="media-notice" role="alert">
    <span>${ui.notice}</span>
    <button type="button" class="icon" aria-label="Dismiss" onClick=${() => media.setNotice("")}>✕</button>
  </div>`;
}

export const sendFiles = (chat, files) => {
  for (const f of files) media.sendFile(chat, f);
};

// Attach: the 📎 button and its file picker.
export function Attach({ chat }) {
  const input = useRef(null);
  if (!media.uploadAvailable()) return null;
  return html`<input ref=${input} type="file" multiple hidden aria-label="Attach files"
      onChange=${(e) => { sendFiles(chat, [...e.target.files]); e.target.value = ""; }} />
    <button type="button" class="icon attach" aria-label="Attach" title="Attach a photo, video or document" onClick=${() => input.current.click()}>📎</button>`;
}

// dropProps go on the chat pane: files dropped on it are sent.
export function dropProps(chat, setOver) {
  const has = (e) => [...(e.dataTransfer?.types ?? [])].includes("Files");
  return {
    onDragOver: (e) => {
      if (!has(e) || !media.uploadAvailable()) return;
      e.preventDefault();
      setOver(true);
    },
    onDragLeave: (e) => {
      if (e.currentTarget === e.target || !e.currentTarget.contains(e.relatedTarget)) setOver(false);
    },
    onDrop: (e) => {
      setOver(false);
      if (!has(e) || !media.uploadAvailable()) return;
      e.preventDefault();
      sendFiles(chat, [...e.dataTransfer.files]);
    },
  };
}

// onPaste for the message box: pasted files (a screenshot) are sent.
export const pasteHandler = (chat) => (e) => {
  const files = [...(e.clipboardData?.files ?? [])];
  if (!files.length || !media.uploadAvailable()) return;
  e.preventDefault();
  sendFiles(chat, files);
};

// Recorder: 🎤 records a voice note. Held down (half a second or more),
// it sends on release; tapped or clicked (or Enter), it keeps recording
// and the bar shows the duration with cancel (🗑) and send (➤).
export function Recorder({ chat, active, setActive }) {
  const rec = useRef(null);
  const press = useRef(null); // {at, send} while the button is held
  const [now, setNow] = useState(0);
  useEffect(() => {
    if (!active) return;
    const t = setInterval(() => setNow(performance.now()), 200);
    return () => clearInterval(t);
  }, [active]);
  if (!media.recordingSupported() || !media.uploadAvailable()) return null;
  const start = async () => {
    if (rec.current) return;
    try {
      rec.current = await media.record();
      setNow(performance.now());
      setActive(true);
      if (press.current?.send) stop(true); // released (after a hold) while the microphone opened
    } catch (e) {
      press.current = null;
      media.setNotice(`The microphone is not available: ${e?.message ?? e}`);
    }
  };
  const down = (e) => {
    if (e.button !== 0) return;
    e.preventDefault();
    const p = { at: performance.now(), send: false };
    press.current = p;
    addEventListener(
      "pointerup",
      () => {
        if (press.current !== p) return;
        press.current = null;
        if (performance.now() - p.at >= 500) {
          p.send = true;
          press.current = p;
          if (rec.current) stop(true);
        }
      },
      { once: true },
    );
    start();
  };
  const stop = async (send) => {
    const r = rec.current;
    rec.current = null;
    press.current = null;
    setActive(false);
    if (!r) return;
    if (!send) return r.cancel();
    const { file, duration } = await r.stop();
    media.sendFile(chat, file, { duration, voice: true });
  };
  if (!active) {
    return html`<button type="button" class="icon mic-btn" aria-label="Record a voice note" title="Record a voice note (hold to talk, or click)"
      onPointerDown=${down} onClick=${(e) => e.detail === 0 && start()}>🎤</button>`;
  }
  const ms = rec.current ? now - rec.current.started : 0;
  return html`<div class="recording" role="status" aria-label="Recording a voice note">
    <button type="button" class="icon" aria-label="Cancel recording" title="Cancel" onClick=${() => stop(false)}>🗑</button>
    <span class="rec-dot" aria-hidden="true"></span>
    <span class="rec-time" data-ms=${Math.round(ms)}>${media.fmtDuration(ms)}</span>
    <span class="fine">Recording…</span>
    <button type="button" class="send" aria-label="Send voice note" title="Send" onClick=${() => stop(true)}>➤</button>
  </div>`;
}
