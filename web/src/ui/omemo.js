// End-to-end encryption on screen (omemo.js; docs/e2e.md): the lock in a
// chat's header, the chat's encryption sheet (the contact's devices with
// their fingerprints as Conversations shows them, verification by
// comparing them or by QR code, trust), our own devices (this one's
// fingerprint and QR code, removing old ones), and the warning shown when
// a verified contact has a device that is not.
import { h } from "preact";
import { useEffect, useState } from "preact/hooks";
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
  const who = jid.split("@")[0];
  return html`<div class="e2e-part" aria-label=${"Devices of " + who}>
    <h3>${who}'s devices</h3>
    <p class="hint">Compare each fingerprint with what ${who}'s app shows (or scan its QR code with your phone's app), then mark it verified. Until you verify one, every device is trusted as it comes; after that, new ones wait for you.</p>
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
