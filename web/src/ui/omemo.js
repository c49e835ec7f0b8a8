// End-to-end encryption on screen (omemo.js; docs/e2e.md): the lock in a
// chat's header, the chat's encryption sheet (the contact's devices with
// their fingerprints as Conversations shows them, verification by
// comparing them or by QR code, trust), our own devices (this one's
// fingerprint and QR code, removing old ones), and the warning shown when
// a verified contact has a device that is not.
import { h } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import htm from "htm";
import qrcode from "qrcode-generator";
import * as core from "../core.js";
import * as omemo from "../omemo.js";
import { e2e } from "../e2e.js";

const html = htm.bind(h);
const { state } = core;

export const view = { sheet: null }; // the bare JID whose encryption sheet is open

const open = (jid) => {
  view.sheet = jid;
  core.changed();
};
const close = () => {
  view.sheet = null;
  core.changed();
};

// groups of 8 hex digits, as Conversations prints a fingerprint
export const spaced = (fp) => (fp.match(/.{1,8}/g) ?? []).join(" ");

// Lock is the header's button: 🔒 when this chat is encrypted.
export function Lock({ jid }) {
  const on = e2e.active(jid);
  const label = on ? "Messages are end-to-end encrypted" : omemo.ui.error || "Messages are not end-to-end encrypted";
  return html`<button class=${"icon lock-btn" + (on ? " on" : "")} data-e2e=${on ? "on" : "off"} aria-label=${label} title=${label} onClick=${() => open(jid)}>${on ? "🔒" : "🔓"}</button>`;
}

// QR draws a QR code as SVG squares (no markup strings).
function QR({ text, size = 176 }) {
  const q = qrcode(0, "M");
  q.addData(text);
  q.make();
  const n = q.getModuleCount();
  const cells = [];
  for (let y = 0; y < n; y++) for (let x = 0; x < n; x++) if (q.isDark(y, x)) cells.push(html`<rect x=${x + 4} y=${y + 4} width="1" height="1" />`);
  return html`<svg class="qr" role="img" aria-label="QR code" viewBox=${`0 0 ${n + 8} ${n + 8}`} width=${size} height=${size}><rect width=${n + 8} height=${n + 8} fill="#fff" />${cells}</svg>`;
}

// The XEP-0384 verification URI Conversations writes in its QR codes.
const uri = (jid, devs) => `xmpp:${jid}?` + devs.map((d) => `omemo-sid-${d.id}=${d.fingerprint}`).join(";");

const TRUST = { verified: "Verified", blind: "Trusted (not verified)", untrusted: "Not trusted: gets no messages" };

function Device({ d, mine }) {
  const [err, setErr] = useState("");
  const act = (p) => p.then(() => setErr(""), (e) => setErr(String(e?.message ?? e)));
  return html`<li class=${"device" + (d.active ? "" : " gone")} data-device=${d.id} data-trust=${d.trust}>
    <div class="fp" aria-label="Fingerprint">${d.fingerprint ? spaced(d.fingerprint) : "(no key published)"}</div>
    <div class="device-meta">
      <span>Device ${d.id}${d.active ? "" : " · removed"}</span>
      <span class=${"trust trust-" + d.trust}>${TRUST[d.trust]}</span>
    </div>
    ${d.active && html`<div class="device-actions">
      ${d.trust !== "verified" && d.fingerprint && html`<button type="button" class="link" onClick=${() => act(omemo.setTrust(d.jid, d.id, "verified"))}>Mark as verified</button>`}
      ${d.trust === "untrusted" && html`<button type="button" class="link" onClick=${() => act(omemo.setTrust(d.jid, d.id, "blind"))}>Trust</button>`}
      ${d.trust !== "untrusted" && html`<button type="button" class="link" onClick=${() => act(omemo.setTrust(d.jid, d.id, "untrusted"))}>Distrust</button>`}
      ${mine && html`<button type="button" class="link danger" onClick=${() => act(omemo.removeDevice(d.id))}>Remove this device</button>`}
    </div>`}
    ${err && html`<p class="error" role="alert">${err}</p>`}
  </li>`;
}

// useDevices loads what is known of jid's devices and reloads it on changes.
function useDevices(jid) {
  const [devs, setDevs] = useState(null);
  const [err, setErr] = useState("");
  const tick = core.state.status + (omemo.ui.lists.get(jid)?.join(",") ?? "");
  useEffect(() => {
    let live = true;
    omemo.devices(jid).then((d) => live && setDevs(d), (e) => live && setErr(String(e?.message ?? e)));
    return () => { live = false; };
  }, [jid, tick, omemo.ui.version]);
  return [devs, err];
}

// Sheet is the encryption sheet of the open chat.
export function Sheet() {
  const jid = view.sheet;
  if (!jid || jid !== state.open) return null;
  return html`<div class="viewer e2e-sheet-wrap" role="dialog" aria-modal="true" aria-label="Encryption" onClick=${(e) => e.target === e.currentTarget && close()}>
    <section class="e2e-sheet">
      <header><h2>Encryption</h2><button class="icon" aria-label="Close" onClick=${close}>✕</button></header>
      <${ChatToggle} jid=${jid} />
      ${!state.chats.get(jid)?.group && html`<${Contact} jid=${jid} />`}
      <${Own} />
    </section>
  </div>`;
}

function ChatToggle({ jid }) {
  const plain = Boolean(state.chats.get(jid)?.plain);
  const on = e2e.active(jid);
  return html`<div class="e2e-state">
    <p>${on
      ? "🔒 Messages and files in this chat are end-to-end encrypted: only the devices listed below can read them, not the server."
      : plain
        ? "🔓 You turned encryption off for this chat."
        : omemo.ui.error || "🔓 This contact's app has not published encryption keys: messages go unencrypted."}</p>
    <label class="check"><input type="checkbox" checked=${!plain} onChange=${(e) => omemo.setPlain(jid, !e.target.checked)} /> Encrypt this chat</label>
  </div>`;
}

function Contact({ jid }) {
  const [devs, err] = useDevices(jid);
  const [scanning, setScanning] = useState(false);
  const [result, setResult] = useState(null);
  const who = jid.split("@")[0];
  return html`<div class="e2e-part" aria-label=${"Devices of " + who}>
    <h3>${who}'s devices</h3>
    <p class="hint">Compare each fingerprint with what ${who}'s app shows, or scan the QR code ${who}'s app shows, then mark it verified. Until you verify one, every device is trusted as it comes; after that, new ones wait for you.</p>
    ${scanning
      ? html`<${Scanner} jid=${jid} done=${(r) => { setScanning(false); setResult(r); }} />`
      : html`<button type="button" class="link scan" onClick=${() => { setResult(null); setScanning(true); }}>Scan ${who}'s code</button>`}
    ${result && html`<p class=${"scan-result " + (result.ok ? "ok" : "error")} role="status">${result.text}</p>`}
    ${err && html`<p class="error">${err}</p>`}
    ${devs === null ? html`<p class="hint">Loading…</p>` : devs.length === 0 ? html`<p class="hint">No devices with encryption keys.</p>` : html`<ul class="devices">${devs.map((d) => html`<${Device} key=${d.addr} d=${d} />`)}</ul>`}
  </div>`;
}

function Own() {
  const me = state.account.jid;
  const [devs] = useDevices(me);
  if (!omemo.ui.deviceId) return html`<div class="e2e-part"><p class="hint">${omemo.ui.error || "Making this device's keys…"}</p></div>`;
  const self = { id: omemo.ui.deviceId, fingerprint: omemo.ui.fingerprint };
  const others = (devs ?? []).filter((d) => d.id !== self.id);
  return html`<div class="e2e-part" aria-label="Your devices">
    <h3>This device</h3>
    <div class="own">
      <${QR} text=${uri(me, [self])} />
      <div>
        <div class="fp own-fp" aria-label="Your fingerprint">${spaced(self.fingerprint)}</div>
        <p class="hint">Device ${self.id}. Your contacts compare this fingerprint, or scan the code, to verify you.</p>
      </div>
    </div>
    ${others.length > 0 && html`<h3>Your other devices</h3><ul class="devices">${others.map((d) => html`<${Device} key=${d.addr} d=${d} mine=${true} />`)}</ul>`}
  </div>`;
}

// Warning sits above the messages when a contact with a verified device
// has devices that are not verified (they get no messages until the user
// decides).
export function Warning({ jid }) {
  const [list, setList] = useState([]);
  const tick = omemo.ui.lists.get(jid)?.join(",") ?? "";
  useEffect(() => {
    let live = true;
    if (state.chats.get(jid)?.group) return undefined;
    omemo.warnings(jid).then((w) => live && setList(w), () => {});
    return () => { live = false; };
  }, [jid, tick, omemo.ui.version]);
  if (!list.length) return null;
  const who = jid.split("@")[0];
  return html`<div class="e2e-warning" role="alert">⚠ ${who} has ${list.length === 1 ? "a new device" : `${list.length} new devices`} you have not verified; ${list.length === 1 ? "it gets" : "they get"} no messages until you decide.
    <button class="link" onClick=${() => open(jid)}>Review</button></div>`;
}

// ---- scanning a code ----------------------------------------------------------------

// parseURI reads Conversations' verification URI: the account and
// {device id: fingerprint} (XEP-0384 fingerprints, lowercase hex).
export function parseURI(text) {
  const m = /^xmpp:([^?]+)\?(.*)$/i.exec(String(text).trim());
  if (!m) return null;
  const devices = new Map();
  for (const part of m[2].split(";")) {
    const kv = /^omemo-sid-(\d+)=([0-9a-f]{64})$/i.exec(part);
    if (kv) devices.set(Number(kv[1]), kv[2].toLowerCase());
  }
  return { jid: decodeURIComponent(m[1]).toLowerCase(), devices };
}

// Scanner reads the camera until a QR code shows up (jsQR, loaded when
// needed), then checks it against what we know of jid's devices: each
// device whose fingerprint matches is verified; a code of someone else or
// with another key verifies nothing and says so.
function Scanner({ jid, done }) {
  const video = useRef(null);
  const [note, setNote] = useState("Starting the camera…");
  useEffect(() => {
    let stream = null;
    let timer = null;
    let live = true;
    (async () => {
      const [{ default: jsQR }] = await Promise.all([import("jsqr")]);
      if (!navigator.mediaDevices?.getUserMedia) throw new Error("This browser gives no access to a camera: compare the fingerprints instead.");
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
      if (!live) return;
      const v = video.current;
      v.srcObject = stream;
      await v.play();
      setNote("Point the camera at the code.");
      const canvas = document.createElement("canvas");
      const ctx = canvas.getContext("2d", { willReadFrequently: true });
      const look = async () => {
        if (!live) return;
        if (v.videoWidth) {
          canvas.width = v.videoWidth;
          canvas.height = v.videoHeight;
          ctx.drawImage(v, 0, 0);
          const code = jsQR(ctx.getImageData(0, 0, canvas.width, canvas.height).data, canvas.width, canvas.height);
          if (code?.data) return done(await check(jid, code.data));
        }
        timer = setTimeout(look, 150);
      };
      look();
    })().catch((e) => live && done({ ok: false, text: e?.name === "NotAllowedError" ? "The camera was not allowed: compare the fingerprints instead." : String(e?.message ?? e) }));
    return () => {
      live = false;
      clearTimeout(timer);
      stream?.getTracks().forEach((t) => t.stop());
    };
  }, [jid]);
  return html`<div class="scanner">
    <video ref=${video} muted playsinline aria-label="Camera"></video>
    <p class="hint">${note}</p>
    <button type="button" class="link" onClick=${() => done(null)}>Cancel</button>
  </div>`;
}

async function check(jid, text) {
  const code = parseURI(text);
  const who = jid.split("@")[0];
  if (!code || code.devices.size === 0) return { ok: false, text: "That is not an encryption code." };
  if (code.jid !== jid) return { ok: false, text: `That code is ${code.jid}'s, not ${who}'s: nothing was verified.` };
  const known = await omemo.devices(jid);
  let verified = 0;
  let mismatched = 0;
  for (const [id, fp] of code.devices) {
    const d = known.find((x) => x.id === id);
    if (!d?.fingerprint) continue;
    if (d.fingerprint === fp) {
      await omemo.setTrust(jid, id, "verified");
      verified++;
    } else {
      mismatched++;
    }
  }
  if (mismatched) return { ok: false, text: `⚠ The code does not match the keys ${who}'s devices use here: someone may be in between. Nothing was verified.` };
  if (!verified) return { ok: false, text: `The code names no device of ${who}'s that this app knows.` };
  return { ok: true, text: `✓ Verified ${verified === 1 ? "one device" : verified + " devices"} of ${who}.` };
}
