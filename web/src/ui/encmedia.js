// End-to-end encrypted media in the chat (XEP-0454, ../encmedia.js): the
// same bubbles as ui/media.js, drawn from the decrypted file in IndexedDB
// through blob: URLs made here (and revoked when the bubble goes). An
// aesgcm:// link is never put in a src or href. While the file is fetched
// and decrypted the bubble says so; a failed download or a failed tag
// check is shown in the bubble, with Retry when trying again may help.
import { h } from "preact";
import { useEffect, useState } from "preact/hooks";
import htm from "htm";
import * as media from "../media.js";
import * as enc from "../encmedia.js";

const html = htm.bind(h);

// useBlobURL: a blob: URL of m's decrypted file, "" until there is one.
// Downloads it (once) when this device does not have it yet. A document's
// URL is typed application/octet-stream, so it can only be saved.
function useBlobURL(m, kind) {
  const [url, setURL] = useState("");
  useEffect(() => {
    let live = true;
    let u = "";
    enc.blobOf(m.key).then((b) => {
      if (!live) return;
      if (!b) {
        setURL("");
        if (m.media.aesgcm) enc.ensure(m);
        return;
      }
      u = URL.createObjectURL(kind === "file" ? new Blob([b], { type: "application/octet-stream" }) : b);
      setURL(u);
    });
    return () => {
      live = false;
      if (u) URL.revokeObjectURL(u);
    };
  }, [m.key, m.media.size, m.media.type, kind]);
  return url;
}

function Photo({ m, url }) {
  const f = m.media;
  const [full, setFull] = useState(false);
  const w = f.width && f.height ? Math.min(300, f.width) : 240;
  const hgt = f.width && f.height ? Math.round((w * f.height) / f.width) : 180;
  return html`<button type="button" class="photo" aria-label=${"Open photo " + f.name} disabled=${!url} onClick=${() => enc.openViewer(m)}
      style=${{ width: w + "px", height: Math.min(hgt, 360) + "px" }}>
    ${f.thumb && html`<img class="thumb" src=${f.thumb} alt="" />`}
    ${url && html`<img class=${"full" + (full ? " loaded" : "")} src=${url} alt=${f.name} onLoad=${() => setFull(true)} />`}
  </button>`;
}

function Doc({ m, url }) {
  const f = m.media;
  const ext = (f.name.includes(".") ? f.name.split(".").pop() : "file").slice(0, 5).toUpperCase();
  const inner = html`<span class="ext" aria-hidden="true">${ext}</span>
    <span class="info"><span class="name">${f.name}</span><span class="size">${f.size ? media.fmtSize(f.size) + " · " : ""}${ext}</span></span>
    ${url && html`<span class="dl" aria-hidden="true">↓</span>`}`;
  return url
    ? html`<a class="doc" href=${url} download=${f.name} aria-label=${"Download " + f.name}>${inner}</a>`
    : html`<div class="doc">${inner}</div>`;
}

// EncMediaBody replaces MediaBody for an encrypted file; Progress is
// ui/media.js's upload bar (the sender's side).
export function EncMediaBody({ m, Progress }) {
  const f = m.media;
  const kind = media.kindOf(f.type);
  const url = useBlobURL(m, kind);
  const st = enc.status.get(m.key) ?? (f.failed ? { state: "failed", error: f.failed } : null);
  const state = url ? "ready" : st?.state ?? "loading";
  // A file that cannot be shown is a compact box with the reason under it.
  const shown = state === "failed" ? "file" : kind;
  return html`<div class=${"media media-" + kind + " e2e"} data-kind=${kind} data-e2e=${state}>
    ${shown === "image" && html`<${Photo} m=${m} url=${url} />`}
    ${shown === "video" && (url ? html`<video controls preload="metadata" src=${url}></video>` : html`<${Doc} m=${m} url="" />`)}
    ${shown === "audio" && html`<div class="voice">
        <span class="mic" aria-hidden="true">${f.voice ? "🎤" : "🎵"}</span>
        ${url ? html`<audio controls preload="metadata" src=${url}></audio>` : html`<span class="fine">${f.voice ? "Voice note" : f.name}</span>`}
        <span class="dur" data-duration=${f.duration || 0}>${f.duration ? media.fmtDuration(f.duration) : ""}</span>
      </div>`}
    ${shown === "file" && html`<${Doc} m=${m} url=${url} />`}
    ${state === "loading" && f.aesgcm && html`<span class="e2e-state fine">🔒 Downloading and decrypting…</span>`}
    ${state === "failed" && html`<div class="e2e-state e2e-failed" role="alert">
        <span class="error">⚠ ${st.error}</span>
        ${st.retry && html`<button type="button" class="link" onClick=${() => enc.retry(m)}>Retry</button>`}
      </div>`}
    <${Progress} m=${m} />
  </div>`;
}
