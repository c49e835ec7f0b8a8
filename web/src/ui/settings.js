// The settings page (profile, privacy, blocked contacts, notifications),
// the chat menu's Block / Unblock, and avatars as images. All user content
// is rendered as text.
import { h } from "preact";
import { useRef, useState } from "preact/hooks";
import htm from "htm";
import * as core from "../core.js";
import * as s from "../settings.js";

const html = htm.bind(h);
const { state } = core;
const { prefs } = s;

// AvatarImage is the contact's XEP-0084 picture, or null when there is none
// (the caller then draws the coloured initial).
export function AvatarImage({ jid, size }) {
  const url = s.avatarURL(jid);
  if (!url) return null;
  return html`<img class="avatar photo" src=${url} alt="" aria-hidden="true" data-jid=${jid} width=${size} height=${size} />`;
}

const LAST_SEEN = [
  ["everyone", "Everyone"],
  ["contacts", "My contacts"],
  ["nobody", "Nobody"],
];

export function Settings({ close, Avatar }) {
  const me = state.account.jid;
  const [name, setName] = useState(s.nickOf(me));
  const [msg, setMsg] = useState({});
  const file = useRef(null);
  const say = (k, v) => setMsg((m) => ({ ...m, [k]: v }));
  const offline = state.status !== "online";
  const blocked = [...prefs.blocked].sort();
  return html`<section class="panel settings" aria-label="Settings">
    <div class="row spread"><strong>Settings</strong><button onClick=${close}>Close</button></div>

    <h2>Profile</h2>
    <div class="profile">
      <${Avatar} jid=${me} size=${72} />
      <div class="col">
        <input ref=${file} id="avatar-file" type="file" accept="image/*" class="hidden-file" onChange=${async (e) => {
          const f = e.target.files?.[0];
          e.target.value = "";
          if (!f) return;
          say("photo", "Saving…");
          say("photo", (await s.publishAvatar(f)) || "Photo saved.");
        }} />
        <button type="button" disabled=${offline} onClick=${() => file.current?.click()}>Change photo</button>
        ${msg.photo && html`<span class="fine" role="status" data-msg="photo">${msg.photo}</span>`}
      </div>
    </div>
    <form class="col" onSubmit=${async (e) => {
      e.preventDefault();
      say("name", (await s.setNick(name)) || "Name saved.");
    }}>
      <label for="nick">Your name (shown to your contacts)</label>
      <div class="row">
        <input id="nick" maxlength="64" value=${name} onInput=${(e) => setName(e.target.value)} placeholder=${me.split("@")[0]} />
        <button type="submit" class="primary" disabled=${offline}>Save</button>
      </div>
      ${msg.name && html`<span class="fine" role="status" data-msg="name">${msg.name}</span>`}
    </form>

    <h2>Privacy</h2>
    <label for="lastseen">Who can see my last seen</label>
    <select id="lastseen" value=${prefs.lastSeen} disabled=${offline || !prefs.lastSeen} onChange=${async (e) => {
      say("lastseen", await s.setLastSeen(e.target.value));
    }}>
      ${!prefs.lastSeen && html`<option value="">…</option>`}
      ${LAST_SEEN.map(([v, l]) => html`<option value=${v}>${l}</option>`)}
    </select>
    ${msg.lastseen && html`<p class="error" role="alert">${msg.lastseen}</p>`}

    <h2>Blocked contacts</h2>
    ${blocked.length === 0 && html`<p class="fine">Nobody. Block someone from their chat's menu (⋮).</p>`}
    <ul class="blocked">
      ${blocked.map((j) => html`<li key=${j} data-jid=${j}><span>${j}</span>
        <button disabled=${offline} onClick=${async () => say("block", await s.block(j, false))}>Unblock</button></li>`)}
    </ul>
    ${msg.block && html`<p class="error" role="alert">${msg.block}</p>`}

    <h2>Notifications</h2>
    <${Notifications} />
  </section>`;
}

function Notifications() {
  const perm = prefs.permission;
  const push = prefs.push;
  return html`<div class="col notifications">
    ${perm === "unsupported" && html`<p class="fine">This browser cannot show notifications.</p>`}
    ${perm === "denied" && html`<p class="fine" data-notify="denied">Notifications are blocked for this site in the browser's settings.</p>`}
    ${perm === "default" && html`<button class="primary" onClick=${() => s.enableNotifications()}>Turn on notifications</button>`}
    ${perm === "granted" && html`<p class="fine" data-notify="granted">Notifications are on while Bluetick is open in a tab and you are not looking at it.</p>`}
    ${perm === "granted" && push.state !== "on" && push.state !== "busy" && state.status === "online" &&
      html`<button onClick=${() => s.enablePush()}>Also notify me when Bluetick is closed (Web Push)</button>`}
    ${push.state === "on" && html`<p class="fine" data-push="on">Web Push is on: a closed Bluetick shows “New message” (the text never goes through the push service).
      <button class="link" onClick=${() => s.disablePush()}>Turn off</button></p>`}
    ${push.message && html`<p class=${push.state === "busy" ? "fine" : "notice"} role="status" data-push=${push.state}>${push.message}</p>`}
    ${perm !== "unsupported" && html`<label class="check"><input type="checkbox" id="previews" checked=${prefs.previews} onChange=${(e) => s.setPreviews(e.target.checked)} /> Show the message text in notifications</label>`}
  </div>`;
}

// ChatMenu is the ⋮ menu in a chat's header.
export function ChatMenu({ jid }) {
  const [open, setOpen] = useState(false);
  const [err, setErr] = useState("");
  const blocked = s.isBlocked(jid);
  const who = jid.split("@")[0];
  return html`<div class="menu-wrap">
    <button class="icon" aria-label="Chat menu" aria-haspopup="menu" aria-expanded=${open} title="Menu" onClick=${() => setOpen(!open)}>⋮</button>
    ${open && html`<div class="menu" role="menu">
      <button role="menuitem" disabled=${state.status !== "online"} onClick=${async () => {
        setOpen(false);
        setErr(await s.block(jid, !blocked));
      }}>${blocked ? `Unblock ${who}` : `Block ${who}`}</button>
    </div>`}
    ${err && html`<p class="error menu-err" role="alert">${err}</p>`}
  </div>`;
}

// BlockedNote sits above the composer of a blocked contact's chat.
export function BlockedNote({ jid }) {
  if (!s.isBlocked(jid)) return null;
  return html`<div class="blocked-note" role="status">You blocked this contact: they cannot message you or see your presence.
    <button class="link" onClick=${() => s.block(jid, false)}>Unblock</button></div>`;
}
