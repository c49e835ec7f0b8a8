// Around the composer: the reply / edit bar, the emoji picker (a compact
// built-in list: no emoji data fetched from anywhere), and the search in
// the open chat (the local store, ui/messages.js shows the hits).
import { h } from "preact";
import { useLayoutEffect, useRef, useState } from "preact/hooks";
import htm from "htm";
import * as core from "../core.js";
import * as actions from "../actions.js";
import * as history from "../history.js";
import { view, jumpTo } from "./messages.js";

const html = htm.bind(h);
const { state } = core;
const nameOf = (j) => state.roster.get(j)?.name || j.split("@")[0];

// ComposeBar says what the composer is doing: replying to a message or
// editing one; × (or Escape in the composer) goes back to a new message.
export function ComposeBar({ jid }) {
  const { reply, edit } = actions.compose;
  if (reply && reply.chat === jid) {
    return html`<div class="compose-bar" role="status" data-mode="reply">
      <div class="quote in-bar"><span class="qwho">${reply.dir === "out" ? "You" : nameOf(jid)}</span><span class="qtext">${reply.media?.aesgcm ? reply.preview : reply.body}</span></div>
      <button type="button" class="icon" aria-label="Cancel reply" onClick=${actions.cancelCompose}>×</button>
    </div>`;
  }
  if (edit && edit.chat === jid) {
    return html`<div class="compose-bar" role="status" data-mode="edit">
      <div class="quote in-bar"><span class="qwho">Editing message</span><span class="qtext">${edit.body}</span></div>
      <button type="button" class="icon" aria-label="Cancel edit" onClick=${actions.cancelCompose}>×</button>
    </div>`;
  }
  return null;
}

// composerKeys: Escape leaves reply / edit; ArrowUp in an empty composer
// edits your last message.
export function composerKeys(e, text) {
  if (e.key === "Escape" && (actions.compose.reply || actions.compose.edit)) {
    e.preventDefault();
    actions.cancelCompose();
    return true;
  }
  if (e.key === "ArrowUp" && !text) {
    const m = actions.lastOwn();
    if (m && !m.media) { // a file (media.js) is not edited
      e.preventDefault();
      actions.startEdit(m);
      return true;
    }
  }
  return false;
}

const EMOJI = (
  "😀 😃 😄 😁 😆 😅 😂 🤣 😊 😇 🙂 🙃 😉 😌 😍 🥰 😘 😋 😛 😜 🤪 😎 🤩 🥳 😏 😒 😞 😔 😟 😕 🙁 😣 😖 😫 😩 🥺 😢 😭 😤 😠 😡 🤯 😳 🥵 🥶 😱 😨 😰 😓 🤗 🤔 🤭 🤫 😶 😐 😑 😬 🙄 😯 😮 😲 🥱 😴 🤤 😪 😵 🤐 🤢 🤮 🤧 😷 🤒 🤕 🤑 🤠 😈 👻 💀 🤖 🎃 " +
  "👍 👎 👌 ✌️ 🤞 🤟 🤘 🤙 👈 👉 👆 👇 ✋ 👋 👏 🙌 🙏 💪 🤝 ✍️ " +
  "❤️ 🧡 💛 💚 💙 💜 🖤 🤍 💔 💕 💖 💯 ✨ 🔥 ⭐ 🌟 ⚡ 🎉 🎊 🎁 🎂 🍕 🍔 🍟 ☕ 🍺 🍷 🥂 ⚽ 🏆 🚗 ✈️ 🏠 🌍 ☀️ 🌧️ 🌈 ❄️ 🌹 🌻 🐶 🐱 🦄 📷 🎵 💻 📱 ⏰ ✅ ❌ ❓ ❗"
).split(" ");

// EmojiButton opens a grid of common emoji; a pick goes in at the caret.
export function EmojiButton({ insert }) {
  const [open, setOpen] = useState(false);
  const ref = useRef(null);
  useLayoutEffect(() => {
    if (!open) return;
    ref.current?.querySelector(".grid button")?.focus();
    const away = (e) => { if (!ref.current?.contains(e.target)) setOpen(false); };
    const esc = (e) => {
      if (e.key !== "Escape") return;
      e.preventDefault();
      e.stopPropagation();
      setOpen(false);
      ref.current?.querySelector(".emoji-toggle")?.focus();
    };
    document.addEventListener("pointerdown", away);
    document.addEventListener("keydown", esc, true);
    return () => {
      document.removeEventListener("pointerdown", away);
      document.removeEventListener("keydown", esc, true);
    };
  }, [open]);
  const keys = (e) => {
    const dx = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: 8, ArrowUp: -8 }[e.key];
    if (!dx) return;
    const items = [...ref.current.querySelectorAll(".grid button")];
    const i = items.indexOf(document.activeElement);
    if (i < 0) return;
    e.preventDefault();
    items[Math.min(items.length - 1, Math.max(0, i + dx))].focus();
  };
  return html`<div class="emoji-wrap" ref=${ref} onKeyDown=${keys}>
    <button type="button" class="icon emoji-toggle" aria-label="Emoji" aria-expanded=${open} onClick=${() => setOpen(!open)}>☺</button>
    ${open && html`<div class="emoji-picker" role="dialog" aria-label="Emoji">
      <div class="grid">${EMOJI.map((e) => html`<button type="button" class="emoji" aria-label=${e} onClick=${() => insert(e)}>${e}</button>`)}</div>
    </div>`}
  </div>`;
}

// insertAt puts s into a textarea at its caret and returns the new value.
export function insertAt(ta, s) {
  if (!ta) return s;
  const a = ta.selectionStart ?? ta.value.length;
  const b = ta.selectionEnd ?? a;
  const v = ta.value.slice(0, a) + s + ta.value.slice(b);
  requestAnimationFrame(() => {
    ta.focus();
    ta.selectionStart = ta.selectionEnd = a + s.length;
  });
  return v;
}

// ---- search in the open chat ------------------------------------------------------

const search = { open: false, q: "", hits: [], at: 0, chat: null };

export function SearchButton({ jid }) {
  if (search.chat !== jid) {
    closeSearch(false);
    search.chat = jid;
  }
  return html`<button type="button" class="icon" aria-label="Search in this chat" aria-expanded=${search.open} onClick=${() => { search.open = !search.open; search.chat = jid; if (!search.open) closeSearch(); core.changed(); }}>⌕</button>`;
}

function closeSearch(redraw = true) {
  search.open = false;
  search.q = "";
  search.hits = [];
  search.at = 0;
  view.query = "";
  view.highlight = "";
  if (redraw) core.changed();
}

let seq = 0;
async function run(jid, q) {
  const n = ++seq;
  search.q = q;
  view.query = q.trim().toLowerCase();
  const hits = await history.search(jid, q);
  if (n !== seq) return;
  search.hits = hits;
  search.at = 0;
  if (hits.length) await jumpTo(hits[0]);
  else {
    view.highlight = "";
    core.changed();
  }
}

function step(d) {
  if (!search.hits.length) return;
  search.at = (search.at + d + search.hits.length) % search.hits.length;
  jumpTo(search.hits[search.at]);
}

export function SearchBar({ jid }) {
  const timer = useRef(null);
  if (!search.open || search.chat !== jid) return null;
  const n = search.hits.length;
  return html`<div class="search-bar" role="search">
    <input type="search" aria-label="Search messages" placeholder="Search messages" value=${search.q} autofocus
      onInput=${(e) => { const v = e.target.value; search.q = v; clearTimeout(timer.current); timer.current = setTimeout(() => run(jid, v), 150); }}
      onKeyDown=${(e) => {
        if (e.key === "Enter") { e.preventDefault(); clearTimeout(timer.current); if (search.q !== view.query || !n) run(jid, search.q); else step(e.shiftKey ? -1 : 1); }
        if (e.key === "Escape") { e.preventDefault(); closeSearch(); }
      }} />
    <span class="search-count" aria-live="polite" data-hits=${n}>${search.q.trim() ? (n ? `${search.at + 1} of ${n}${n >= 200 ? "+" : ""}` : "No results") : ""}</span>
    <button type="button" class="icon" aria-label="Older result" disabled=${!n} onClick=${() => step(1)}>↑</button>
    <button type="button" class="icon" aria-label="Newer result" disabled=${!n} onClick=${() => step(-1)}>↓</button>
    <button type="button" class="icon" aria-label="Close search" onClick=${() => closeSearch()}>×</button>
  </div>`;
}
