// The open chat's messages: a window of a few pages of a chat of any
// length (read from the store by (chat, time) as it scrolls, the rest never
// in the DOM), the unread separator, search hits, and each message's
// actions menu (reply, edit, delete for everyone, reactions).
// Everything a person wrote is rendered as text.
import { h } from "preact";
import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import htm from "htm";
import * as core from "../core.js";
import * as history from "../history.js";
import * as omemo from "../omemo.js";
import * as actions from "../actions.js";
import * as store from "../db.js";
import { MediaBody } from "./media.js";

const html = htm.bind(h);
const { state } = core;

const MAX = 3 * core.PAGE; // messages kept on screen at most
const EDGE = 400; // px from either end that reads the next page

// ---- the window -------------------------------------------------------------------

export const view = { highlight: "", query: "", anchor: null, jump: null, bottom: true };

let loading = false;

async function loadOlder(chat) {
  if (loading || !state.hasOlder || !state.messages.length) return;
  loading = true;
  try {
    const first = state.messages[0];
    const got = await history.older(chat, first, core.PAGE);
    if (state.open !== chat || state.messages[0] !== first) return;
    let msgs = [...got, ...state.messages];
    if (msgs.length > MAX) {
      msgs = msgs.slice(0, MAX);
      state.hasNewer = true;
    }
    view.anchor = first.key;
    state.hasOlder = got.length === core.PAGE;
    state.messages = msgs;
    core.changed();
  } finally {
    loading = false;
  }
}

async function loadNewer(chat) {
  if (loading || !state.hasNewer || !state.messages.length) return;
  loading = true;
  try {
    const last = state.messages[state.messages.length - 1];
    const got = await history.newer(chat, last, core.PAGE);
    if (state.open !== chat || state.messages[state.messages.length - 1] !== last) return;
    let msgs = [...state.messages, ...got];
    if (msgs.length > MAX) {
      msgs = msgs.slice(msgs.length - MAX);
      state.hasOlder = true;
    }
    view.anchor = last.key;
    state.hasNewer = got.length === core.PAGE;
    state.messages = msgs;
    core.changed();
  } finally {
    loading = false;
  }
}

// jumpTo shows a page around m (a search hit) and scrolls it to the middle.
export async function jumpTo(m) {
  const chat = m.chat;
  if (!state.messages.some((x) => x.key === m.key)) {
    const half = Math.floor(core.PAGE / 2);
    const [before, after] = await Promise.all([history.older(chat, m, half), history.newer(chat, m, half)]);
    if (state.open !== chat) return;
    state.messages = [...before, m, ...after];
    state.hasOlder = before.length === half;
    state.hasNewer = after.length === half;
  }
  view.jump = m.key;
  view.highlight = m.key;
  core.changed();
}

// toLatest goes back to the chat's last page.
export async function toLatest() {
  const chat = state.open;
  const got = await store.chatMessages(chat, core.PAGE);
  if (state.open !== chat) return;
  state.messages = got;
  state.hasOlder = got.length >= core.PAGE;
  state.hasNewer = false;
  view.bottom = true;
  view.jump = null;
  core.changed();
}

// ---- formatting ---------------------------------------------------------------------

const pad = (n) => String(n).padStart(2, "0");
const hhmm = (d) => `${pad(d.getHours())}:${pad(d.getMinutes())}`;
const sameDay = (a, b) => a.toDateString() === b.toDateString();
const nameOf = (j) => state.roster.get(j)?.name || j.split("@")[0];

// Marked: the text with the search term's occurrences in <mark> (as text).
function Marked({ text, q }) {
  if (!q) return text;
  const lower = text.toLowerCase();
  const parts = [];
  let i = 0;
  for (;;) {
    const j = lower.indexOf(q, i);
    if (j < 0) break;
    parts.push(text.slice(i, j), html`<mark>${text.slice(j, j + q.length)}</mark>`);
    i = j + q.length;
  }
  parts.push(text.slice(i));
  return parts;
}

const TICK_LABEL = { pending: "waiting to send", sent: "sent", delivered: "delivered", read: "read" };
function Tick({ tick }) {
  const glyph = tick === "pending" ? "🕐" : tick === "sent" ? "✓" : "✓✓";
  return html`<span class=${"tick tick-" + tick} data-tick=${tick} title=${TICK_LABEL[tick]} aria-label=${TICK_LABEL[tick]}>${glyph}</span>`;
}

// ---- one message ----------------------------------------------------------------------

function Quote({ m }) {
  const [q, setQ] = useState(null);
  useEffect(() => {
    let live = true;
    actions.quoted(m).then((x) => live && setQ(x ?? null));
    return () => (live = false);
  }, [m.key, m.reply?.id, state.messages]);
  const who = m.reply.dir === "out" ? "You" : nameOf(m.chat);
  const text = q ? (q.retracted ? "This message was deleted" : q.media?.aesgcm ? q.preview : q.body) : m.reply.text;
  return html`<button type="button" class=${"quote " + m.reply.dir} data-reply-to=${m.reply.id} aria-label=${"Reply to " + who + ": " + text} onClick=${() => q && jumpTo(q)}>
    <span class="qwho">${who}</span><span class="qtext">${text}</span>
  </button>`;
}

function Menu({ m, close }) {
  const ref = useRef(null);
  useLayoutEffect(() => {
    ref.current?.querySelector("button")?.focus();
    const away = (e) => { if (!ref.current?.contains(e.target)) close(); };
    // Escape closes the menu wherever the focus is (not the chat behind it).
    const esc = (e) => {
      if (e.key !== "Escape") return;
      e.preventDefault();
      e.stopPropagation();
      close(true);
    };
    document.addEventListener("pointerdown", away);
    document.addEventListener("keydown", esc, true);
    return () => {
      document.removeEventListener("pointerdown", away);
      document.removeEventListener("keydown", esc, true);
    };
  }, []);
  const own = m.dir === "out";
  const canEdit = own && !m.media && actions.lastOwn()?.key === m.key; // a file is not edited
  const act = (f) => () => { close(); f(); };
  const keys = (e) => {
    if (e.key !== "ArrowDown" && e.key !== "ArrowUp" && e.key !== "ArrowLeft" && e.key !== "ArrowRight") return;
    const items = [...ref.current.querySelectorAll("button")];
    const i = items.indexOf(document.activeElement);
    const step = e.key === "ArrowDown" || e.key === "ArrowRight" ? 1 : -1;
    items[(i + step + items.length) % items.length]?.focus();
    e.preventDefault();
  };
  return html`<div class="menu" role="menu" aria-label="Message actions" ref=${ref} onKeyDown=${keys}>
    <div class="react-row" role="group" aria-label="React">
      ${actions.QUICK.map((e) => html`<button type="button" role="menuitem" class="emoji" aria-label=${"React " + e} onClick=${act(() => actions.react(m, e))}>${e}</button>`)}
    </div>
    <button type="button" role="menuitem" onClick=${act(() => actions.startReply(m))}>Reply</button>
    ${canEdit && html`<button type="button" role="menuitem" onClick=${act(() => actions.startEdit(m))}>Edit</button>`}
    ${own && html`<button type="button" role="menuitem" class="danger-text" onClick=${act(() => actions.retract(m))}>Delete for everyone</button>`}
  </div>`;
}

// Unreadable: why an encrypted message could not be decrypted, and the way
// back (a new session, and the sender's device asked to send it again).
function Unreadable({ m }) {
  const [asked, setAsked] = useState("");
  const ask = () => omemo.repair(m).then(() => setAsked("Asked the sender's device to send it again."), (e) => setAsked(String(e?.message ?? e)));
  return html`<div class="unreadable" role="note">
    <small>${m.e2e.why}.</small>
    ${m.dir === "in" && (asked ? html`<small class="asked">${asked}</small>` : html`<button type="button" class="link" onClick=${ask}>Fix the session and ask to send again</button>`)}
  </div>`;
}

function Message({ m, menu, setMenu, q }) {
  const d = new Date(m.ts);
  const open = menu === m.key;
  const btn = useRef(null);
  const reacts = m.retracted ? [] : actions.tally(m);
  return html`<li key=${m.key} class=${"msg " + m.dir + (view.highlight === m.key ? " hit" : "")} data-id=${m.id} data-key=${m.key} data-e2e=${m.e2e ? (m.e2e.ok ? "ok" : "failed") : "none"}>
    <div class=${"bubble" + (m.retracted ? " deleted" : "")}>
      ${!m.retracted && m.reply && html`<${Quote} m=${m} />`}
      ${m.retracted
        ? html`<span class="text retracted">🚫 This message was deleted</span>`
        : m.media
          ? html`<${MediaBody} m=${m} />`
          : html`<span class="text"><${Marked} text=${m.body} q=${q} /></span>`}
      ${m.e2e?.ok === false && html`<${Unreadable} m=${m} />`}
      ${m.tick === "failed" && m.failure && html`<div class="msg-error" role="alert">Not sent: ${m.failure}</div>`}
      <span class="stamp">${m.e2e?.ok && html`<span class="lock" title="End-to-end encrypted" aria-label="end-to-end encrypted">🔒 </span>`}${m.edited && !m.retracted ? html`<span class="edited">edited </span>` : ""}${hhmm(d)}${m.dir === "out" && html` <${Tick} tick=${m.tick} />`}</span>
      ${!m.retracted && html`<button type="button" class="more" ref=${btn} aria-label="Message actions" aria-haspopup="menu" aria-expanded=${open} onClick=${() => setMenu(open ? null : m.key)}>⌄</button>`}
      ${open && html`<${Menu} m=${m} close=${(refocus) => { setMenu(null); if (refocus) btn.current?.focus(); }} />`}
    </div>
    ${reacts.length > 0 && html`<div class="reactions" aria-label="Reactions">
      ${reacts.map((r) => html`<button type="button" class=${"reaction" + (r.mine ? " mine" : "")} data-emoji=${r.emoji} data-count=${r.count} aria-pressed=${r.mine} title=${r.who.map((j) => (j === state.account.jid ? "You" : nameOf(j))).join(", ")} aria-label=${`${r.emoji} ${r.count}: ${r.mine ? "take yours back" : "add yours"}`} onClick=${() => actions.react(m, r.emoji)}>${r.emoji}${r.count > 1 ? html` <span>${r.count}</span>` : ""}</button>`)}
    </div>`}
  </li>`;
}

// ---- the list ---------------------------------------------------------------------------

export function MessageList({ jid }) {
  const list = useRef(null);
  const [menu, setMenu] = useState(null);
  const msgs = state.messages;
  const last = msgs[msgs.length - 1];
  const prev = useRef({ jid: null, last: null });
  const anchorTop = useRef(null);

  // Before a page is added, where the anchor message was on screen.
  if (view.anchor && list.current && anchorTop.current === null) {
    const el = list.current.querySelector(`[data-key="${CSS.escape(view.anchor)}"]`);
    anchorTop.current = el ? el.getBoundingClientRect().top : null;
  }

  useLayoutEffect(() => {
    const el = list.current;
    if (!el) return;
    const p = prev.current;
    if (view.anchor) {
      // A page was added at one end: keep what was on screen where it was.
      const a = el.querySelector(`[data-key="${CSS.escape(view.anchor)}"]`);
      if (a && anchorTop.current !== null) el.scrollTop += a.getBoundingClientRect().top - anchorTop.current;
      view.anchor = null;
      anchorTop.current = null;
    } else if (view.jump) {
      el.querySelector(`[data-key="${CSS.escape(view.jump)}"]`)?.scrollIntoView({ block: "center" });
      view.jump = null;
    } else if (p.jid !== jid) {
      const sep = el.querySelector(".unread-sep");
      if (sep) sep.scrollIntoView({ block: "start" });
      else el.scrollTop = el.scrollHeight;
    } else if (last && p.last !== last.key && !state.hasNewer && (view.bottom || last.dir === "out")) {
      el.scrollTop = el.scrollHeight;
    }
    prev.current = { jid, last: last?.key };
  });

  const onScroll = () => {
    const el = list.current;
    if (!el) return;
    view.bottom = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
    if (el.scrollTop < EDGE) loadOlder(jid);
    else if (el.scrollHeight - el.scrollTop - el.clientHeight < EDGE) loadNewer(jid);
  };

  // Where "N unread messages" goes: before the first unread incoming one.
  let sepKey = null;
  const mark = state.unreadMark;
  if (mark) {
    if (mark.ts) sepKey = msgs.find((m) => m.dir === "in" && m.ts >= mark.ts)?.key;
    else sepKey = msgs.filter((m) => m.dir === "in").at(-mark.count)?.key;
  }
  const q = view.query;
  let day = "";
  return html`<div class="messages-wrap">
    <ol class="messages" ref=${list} aria-live="polite" onScroll=${onScroll} data-older=${state.hasOlder} data-newer=${state.hasNewer}>
      ${state.hasOlder && html`<li class="day more-above" key="older"><span>Scroll up for older messages</span></li>`}
      ${msgs.map((m) => {
        const d = new Date(m.ts);
        const dl = d.toDateString();
        const sep = dl !== day;
        day = dl;
        return html`
          ${sep && html`<li class="day" key=${"d" + dl + m.key}><span>${sameDay(d, new Date()) ? "Today" : d.toLocaleDateString()}</span></li>`}
          ${sepKey === m.key && html`<li class="unread-sep" key="unread" data-count=${mark.count}><span>${mark.count} unread message${mark.count === 1 ? "" : "s"}</span></li>`}
          <${Message} key=${m.key} m=${m} menu=${menu} setMenu=${setMenu} q=${q} />`;
      })}
    </ol>
    ${state.hasNewer && html`<button type="button" class="to-latest" aria-label="Go to the latest messages" onClick=${toLatest}>↓</button>`}
  </div>`;
}
