// Bluetick Web: the screens. Every piece of user content goes through
// Preact's text rendering (no dangerouslySetInnerHTML anywhere).
import { h, render } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import htm from "htm";
import * as core from "./core.js";
import * as settings from "./settings.js";
import { AvatarImage, Settings, ChatMenu, BlockedNote } from "./ui/settings.js";
import * as actions from "./actions.js";
import * as omemoUI from "./ui/omemo.js";
import "./carbons.js";
import { MessageList } from "./ui/messages.js";
import { ComposeBar, EmojiButton, SearchBar, SearchButton, composerKeys, insertAt } from "./ui/compose.js";
import * as mediaUI from "./ui/media.js";
import { NewGroup, GroupPane, GroupNotice, GroupAvatar, groupName } from "./ui/groups.js";

const html = htm.bind(h);
const { state } = core;

// ---- formatting -------------------------------------------------------------

const pad = (n) => String(n).padStart(2, "0");
const hhmm = (d) => `${pad(d.getHours())}:${pad(d.getMinutes())}`;
function sameDay(a, b) {
  return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
}
function listTime(ts) {
  if (!ts) return "";
  const d = new Date(ts);
  const now = new Date();
  if (sameDay(d, now)) return hhmm(d);
  const y = new Date(now);
  y.setDate(now.getDate() - 1);
  if (sameDay(d, y)) return "yesterday";
  return d.toLocaleDateString();
}
function lastSeen(ts) {
  const d = new Date(ts);
  const now = new Date();
  if (sameDay(d, now)) return `last seen today at ${hhmm(d)}`;
  const y = new Date(now);
  y.setDate(now.getDate() - 1);
  if (sameDay(d, y)) return `last seen yesterday at ${hhmm(d)}`;
  return `last seen ${d.toLocaleDateString()} at ${hhmm(d)}`;
}
const nameOf = (j) => state.roster.get(j)?.name || settings.nickOf(j) || j.split("@")[0];
const initial = (j) => (nameOf(j)[0] || "?").toUpperCase();
const COLORS = ["#00a884", "#53bdeb", "#a5b337", "#ff7eb6", "#7f66ff", "#fa6533", "#02a698", "#d3a53b", "#5e9cd6", "#c0504d"];
function color(s) {
  let x = 0;
  for (const ch of s) x = (x * 31 + ch.charCodeAt(0)) >>> 0;
  return COLORS[x % COLORS.length];
}

const TICK_LABEL = { pending: "waiting to send", sent: "sent", delivered: "delivered", read: "read", failed: "not sent" };
export function Tick({ tick }) {
  const glyph = tick === "pending" ? "🕐" : tick === "sent" ? "✓" : tick === "failed" ? "⚠" : "✓✓";
  return html`<span class=${"tick tick-" + tick} data-tick=${tick} title=${TICK_LABEL[tick]} aria-label=${TICK_LABEL[tick]}>${glyph}</span>`;
}

export function Avatar({ jid, size = 40 }) {
  if (settings.avatarURL(jid)) return html`<${AvatarImage} jid=${jid} size=${size} />`;
  return html`<div class="avatar" aria-hidden="true" style=${{ width: size + "px", height: size + "px", background: color(jid) }}>${initial(jid)}</div>`;
}

// ---- sign in ------------------------------------------------------------------

function SignIn() {
  const [addr, setAddr] = useState(state.notice || state.account?.jid || "");
  const [pw, setPw] = useState("");
  const [busy, setBusy] = useState(false);
  const go = async (register) => {
    setBusy(true);
    await core.signIn(addr, pw, register);
    setBusy(false);
  };
  return html`
    <main class="signin">
      <div class="card">
        <div class="brand"><span class="logo" aria-hidden="true">✓✓</span> Bluetick</div>
        <form onSubmit=${(e) => { e.preventDefault(); go(false); }}>
          <label for="addr">User name or address</label>
          <input id="addr" name="username" autocomplete="username" value=${addr} onInput=${(e) => setAddr(e.target.value)} placeholder="alice or alice@example.com" required autofocus />
          <label for="pw">Password</label>
          <input id="pw" name="password" type="password" autocomplete="current-password" value=${pw} onInput=${(e) => setPw(e.target.value)} required />
          ${state.error && html`<p class="error" role="alert">${state.error}</p>`}
          <div class="row">
            <button type="submit" class="primary" disabled=${busy}>Sign in</button>
            <button type="button" disabled=${busy} onClick=${(e) => { if (e.target.form.reportValidity()) go(true); }}>Create account</button>
          </div>
        </form>
        <p class="fine">Your password is not stored on this device: Bluetick keeps a revocable sign-in token instead.</p>
      </div>
    </main>`;
}

// ---- the chat list --------------------------------------------------------------

function Banner() {
  if (state.status === "online") return null;
  const text = state.status === "connecting" ? "Connecting…" : "Offline. Messages you write are kept and sent when you are back online.";
  return html`<div class="banner" role="status" data-status=${state.status}>
    <span>${text}</span>
    ${state.status === "offline" && html`<button class="link" onClick=${core.retryNow}>Retry now</button>`}
  </div>`;
}

function Sidebar({ panel, setPanel }) {
  const chats = core.sortedChats();
  const reqs = state.requests.size;
  return html`
    <aside class="side">
      <header class="bar">
        <${Avatar} jid=${state.account.jid} size=${36} />
        <div class="me" title=${state.account.jid}>${state.account.jid}</div>
        <button class="icon" aria-label="New chat" title="New chat" onClick=${() => setPanel("new")}>✎</button>
        <button class="icon" aria-label="New group" title="New group" onClick=${() => setPanel("group")}>👥</button>
        <button class="icon" aria-label="Contacts" title="Contacts" onClick=${() => setPanel("contacts")}>☰${reqs ? html`<span class="dot" aria-label=${reqs + " requests"}>${reqs}</span>` : ""}</button>
        <button class="icon" aria-label="Settings" title="Settings" onClick=${() => setPanel("settings")}>⚙</button>
        <button class="icon" aria-label="Sign out" title="Sign out" onClick=${() => setPanel("signout")}>⎋</button>
      </header>
      <${Banner} />
      <${GroupNotice} />
      ${panel === "new" && html`<${NewChat} close=${() => setPanel(null)} />`}
      ${panel === "group" && html`<${NewGroup} close=${() => setPanel(null)} />`}
      ${panel === "contacts" && html`<${Contacts} close=${() => setPanel(null)} />`}
      ${panel === "signout" && html`<${SignOut} close=${() => setPanel(null)} />`}
      ${panel === "settings" && html`<${Settings} close=${() => setPanel(null)} Avatar=${Avatar} />`}
      <ul class="chats" aria-label="Chats">
        ${chats.length === 0 && html`<li class="empty">No chats yet. Start one with ✎.</li>`}
        ${chats.map((c) => html`
          <li key=${c.jid}>
            <button class=${"chat" + (state.open === c.jid ? " active" : "")} data-jid=${c.jid} onClick=${() => core.openChat(c.jid)}>
              ${c.group ? html`<${GroupAvatar} jid=${c.jid} size=${46} />` : html`<${Avatar} jid=${c.jid} size=${46} />`}
              <div class="meta">
                <div class="top"><span class="name">${c.group ? groupName(c) : nameOf(c.jid)}</span><span class="time">${listTime(c.lastTs)}</span></div>
                <div class="bottom">
                  <span class="preview">
                    ${state.typing.get(c.jid) ? html`<em class="typing">typing…</em>` : html`${c.lastDir === "out" && c.lastTick && html`<${Tick} tick=${c.lastTick} />`} ${c.lastText || ""}`}
                  </span>
                  ${c.unread > 0 && html`<span class="unread" data-unread=${c.unread} aria-label=${c.unread + " unread"}>${c.unread}</span>`}
                </div>
              </div>
            </button>
          </li>`)}
      </ul>
    </aside>`;
}

function NewChat({ close }) {
  const [addr, setAddr] = useState("");
  const [err, setErr] = useState("");
  return html`<form class="panel" aria-label="New chat" onSubmit=${async (e) => {
    e.preventDefault();
    const msg = await core.newChat(addr);
    if (msg) setErr(msg);
    else close();
  }}>
    <label for="newchat">Chat with (user name or address)</label>
    <div class="row">
      <input id="newchat" value=${addr} onInput=${(e) => setAddr(e.target.value)} placeholder="bob or bob@example.com" autofocus />
      <button type="submit" class="primary">Start</button>
      <button type="button" onClick=${close}>Cancel</button>
    </div>
    ${err && html`<p class="error" role="alert">${err}</p>`}
  </form>`;
}

function Contacts({ close }) {
  const contacts = [...state.roster.values()].sort((a, b) => a.jid.localeCompare(b.jid));
  return html`<section class="panel" aria-label="Contacts">
    <div class="row spread"><strong>Contacts</strong><button onClick=${close}>Close</button></div>
    ${[...state.requests].map((j) => html`<div class="req" key=${j}>
      <span><strong>${j}</strong> wants to see when you are online.</span>
      <div class="row">
        <button class="primary" onClick=${() => core.answerRequest(j, true)}>Accept</button>
        <button onClick=${() => core.answerRequest(j, false)}>Refuse</button>
      </div>
    </div>`)}
    ${contacts.length === 0 && html`<p class="fine">No contacts yet.</p>`}
    <ul class="contacts">
      ${contacts.map((r) => html`<li key=${r.jid}><button class="link" onClick=${() => { core.newChat(r.jid); close(); }}>${r.name || r.jid}</button>
        <span class="fine">${r.subscription === "both" ? "" : r.ask ? "request sent" : r.subscription}</span></li>`)}
    </ul>
  </section>`;
}

function SignOut({ close }) {
  const [wipe, setWipe] = useState(false);
  return html`<section class="panel" aria-label="Sign out">
    <p>Sign out of ${state.account.jid} on this device?</p>
    <label class="check"><input type="checkbox" checked=${wipe} onChange=${(e) => setWipe(e.target.checked)} /> Also delete the chats and messages kept on this device</label>
    <div class="row">
      <button class="danger" onClick=${() => core.signOut(wipe)}>Sign out</button>
      <button onClick=${close}>Cancel</button>
    </div>
  </section>`;
}

// ---- the open chat -------------------------------------------------------------

function ChatPane() {
  const jid = state.open;
  const [text, setText] = useState("");
  const [dropping, setDropping] = useState(false);
  const [recording, setRecording] = useState(false);
  const ta = useRef(null);
  actions.compose.setText = setText;
  actions.compose.focus = () => ta.current?.focus();
  if (!jid) {
    return html`<section class="main empty-main"><div>
      <div class="logo big" aria-hidden="true">✓✓</div>
      <h1>Bluetick Web</h1>
      <p>Pick a chat on the left, or start a new one.</p>
    </div></section>`;
  }
  const p = state.presence.get(jid);
  const status = state.typing.get(jid) ? "typing…" : p?.online ? "online" : p?.lastSeen ? lastSeen(p.lastSeen) : "";
  const send = () => {
    if (!text.trim()) return;
    actions.send(jid, text);
    setText("");
  };
  return html`
    <section class=${"main" + (dropping ? " dropping" : "")} aria-label=${"Chat with " + nameOf(jid)} ...${mediaUI.dropProps(jid, setDropping)}>
      <header class="bar">
        <button class="icon back" aria-label="Back to chats" onClick=${() => core.openChat(null)}>←</button>
        <${Avatar} jid=${jid} size=${40} />
        <div class="who">
          <div class="name">${nameOf(jid)}</div>
          <div class="status" data-status=${status}>${status}</div>
        </div>
        <${omemoUI.Lock} jid=${jid} />
        <${SearchButton} jid=${jid} />
        <${ChatMenu} jid=${jid} />
      </header>
      <${SearchBar} jid=${jid} />
      <${Banner} />
      <${omemoUI.Warning} jid=${jid} />
      <${MessageList} jid=${jid} />
      <${BlockedNote} jid=${jid} />
      <${ComposeBar} jid=${jid} />
      <${mediaUI.Notice} />
      <form class="composer" onSubmit=${(e) => { e.preventDefault(); send(); }}>
        <${mediaUI.Recorder} chat=${jid} active=${recording} setActive=${setRecording} />
        ${!recording && html`<${EmojiButton} insert=${(e) => setText(insertAt(ta.current, e))} />
        <${mediaUI.Attach} chat=${jid} />
        <textarea
          ref=${ta}
          rows="1"
          aria-label="Message"
          placeholder="Type a message"
          value=${text}
          onInput=${(e) => { setText(e.target.value); core.typed(jid); }}
          onKeyDown=${(e) => { if (composerKeys(e, text)) return; if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); send(); } }}
          onPaste=${mediaUI.pasteHandler(jid)}
        ></textarea>
        <button type="submit" class="send" aria-label="Send">➤</button>`}
      </form>
    </section>`;
}

// ---- the app -----------------------------------------------------------------------

function App() {
  const [panel, setPanel] = useState(null);
  if (state.phase === "loading") return html`<div class="loading">Loading…</div>`;
  if (state.phase === "signin") return html`<${SignIn} />`;
  return html`<div class=${"app" + (state.open ? " has-chat" : "")}>
    <${Sidebar} panel=${panel} setPanel=${setPanel} />
    ${state.chats.get(state.open)?.group ? html`<${GroupPane} />` : html`<${ChatPane} />`}
    <${mediaUI.Viewer} />
    <${omemoUI.Sheet} />
  </div>`;
}

// Escape closes the open chat (back to the list on a phone).
addEventListener("keydown", (e) => {
  if (e.key === "Escape" && state.open && !e.defaultPrevented) core.openChat(null);
});

// Every change of the state draws the app again (Preact diffs it). The
// subscription is made here, before boot() runs, rather than in an effect:
// an effect runs after the first paint, and a change made before it (the
// local store read fast) would be missed.
const root = document.getElementById("app");
const draw = () => {
  render(html`<${App} />`, root);
  let unread = 0;
  for (const c of state.chats.values()) unread += c.unread || 0;
  document.title = unread ? `(${unread}) Bluetick` : "Bluetick";
};
core.subscribe(draw);
draw();
core.boot().catch((e) => {
  console.warn("boot:", e);
  state.phase = "signin";
  state.error = String(e?.message ?? e);
  core.changed();
});

if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/sw.js").catch((e) => console.info("service worker:", e?.message ?? e));
}
