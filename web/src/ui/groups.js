// Groups on screen: the new-group panel, the group chat (sender names,
// ✓ for our own messages, the admins-only notice) and the group info panel
// (members, admins, add / remove, make admin, only admins can send, invite
// links, leave). All user content is rendered as text.
import { h } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import htm from "htm";
import { Lock } from "./omemo.js";
import * as core from "../core.js";
import * as groups from "../groups.js";
import { Avatar, Tick } from "../main.js";

const html = htm.bind(h);
const { state } = core;
const pad = (n) => String(n).padStart(2, "0");
const hhmm = (d) => `${pad(d.getHours())}:${pad(d.getMinutes())}`;
const local = (j) => j.split("@")[0];
const COLORS = ["#1f7aec", "#d62976", "#06845f", "#b5651d", "#7f66ff", "#c0392b", "#008c9e", "#8e44ad"];
function nickColor(s) {
  let x = 0;
  for (const ch of s) x = (x * 31 + ch.charCodeAt(0)) >>> 0;
  return COLORS[x % COLORS.length];
}

export const groupName = (c) => c.name || local(c.jid);

// run wraps an action: busy while it runs, its error shown.
function useAction() {
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState("");
  const run = async (fn) => {
    setBusy(true);
    setErr("");
    try {
      await fn();
    } catch (e) {
      setErr(e?.message ?? String(e));
    } finally {
      setBusy(false);
    }
  };
  return [run, busy, err];
}

// ---- new group -------------------------------------------------------------------

export function NewGroup({ close }) {
  const [name, setName] = useState("");
  const [members, setMembers] = useState("");
  const [run, busy, err] = useAction();
  return html`<form class="panel" aria-label="New group" onSubmit=${(e) => {
    e.preventDefault();
    run(async () => {
      await groups.createGroup(name, members.split(/[\s,;]+/).filter(Boolean));
      close();
    });
  }}>
    <label for="gname">Group name</label>
    <input id="gname" value=${name} maxlength="100" onInput=${(e) => setName(e.target.value)} placeholder="Weekend trip" required autofocus />
    <label for="gmembers">Members (user names or addresses, separated by commas)</label>
    <input id="gmembers" value=${members} onInput=${(e) => setMembers(e.target.value)} placeholder="bob, carol@example.com" />
    <div class="row">
      <button type="submit" class="primary" disabled=${busy}>Create group</button>
      <button type="button" onClick=${close}>Cancel</button>
    </div>
    ${err && html`<p class="error" role="alert">${err}</p>`}
  </form>`;
}

// A group error with no panel of its own (a refused invite link).
export function GroupNotice() {
  if (!groups.ui.error) return null;
  return html`<div class="banner gnotice" role="alert"><span>${groups.ui.error}</span>
    <button class="link" onClick=${() => { groups.ui.error = ""; core.changed(); }}>Dismiss</button></div>`;
}

export function GroupAvatar({ jid, size = 40 }) {
  return html`<div class="avatar group-avatar" aria-hidden="true" style=${{ width: size + "px", height: size + "px", fontSize: Math.round(size * 0.5) + "px" }}>👥</div>`;
}

// ---- the group chat --------------------------------------------------------------------

export function GroupPane() {
  const jid = state.open;
  const chat = state.chats.get(jid);
  const live = groups.live.get(jid);
  const list = useRef(null);
  const [text, setText] = useState("");
  const [info, setInfo] = useState(false);
  const last = state.messages[state.messages.length - 1];
  useEffect(() => {
    const el = list.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [jid, state.messages.length, last?.key]);
  useEffect(() => setInfo(false), [jid]);
  if (!chat) return null;
  const present = live?.joined ? [...live.occupants.keys()].sort() : [];
  const subtitle = chat.left ? "" : present.length ? present.map((n) => (n === chat.nick ? "You" : n)).join(", ") : state.status === "online" ? "" : "";
  const send = () => {
    if (!text.trim()) return;
    core.sendText(jid, text);
    setText("");
  };
  let day = "";
  let prevFrom = "";
  return html`
    <section class=${"main" + (info ? " with-info" : "")} aria-label=${"Group " + groupName(chat)}>
      <header class="bar">
        <button class="icon back" aria-label="Back to chats" onClick=${() => core.openChat(null)}>←</button>
        <${GroupAvatar} jid=${jid} size=${40} />
        <button class="who who-button" aria-label="Group info" onClick=${() => setInfo(!info)}>
          <div class="name">${groupName(chat)}</div>
          <div class="status">${subtitle || "tap here for group info"}</div>
        </button>
        <${Lock} jid=${jid} />
      </header>
      <${Banner} />
      <ol class="messages" ref=${list} aria-live="polite">
        ${state.messages.map((m) => {
          const d = new Date(m.ts);
          const dl = d.toDateString();
          const sep = dl !== day;
          day = dl;
          const showFrom = m.dir === "in" && (m.from !== prevFrom || sep);
          prevFrom = m.dir === "in" ? m.from : "";
          return html`
            ${sep && html`<li class="day" key=${"d" + dl}><span>${dl === new Date().toDateString() ? "Today" : d.toLocaleDateString()}</span></li>`}
            <li key=${m.key} class=${"msg " + m.dir + (m.tick === "failed" ? " failed" : "")} data-id=${m.id} data-sid=${m.sid || ""} data-e2e=${m.e2e ? (m.e2e.ok ? "ok" : "failed") : "none"}>
              <div class="bubble">
                ${showFrom && html`<div class="from" style=${{ color: nickColor(m.from || "") }}>${m.from}</div>`}
                <span class="text">${m.body}</span>
                ${m.e2e?.ok === false && html`<div class="unreadable" role="note"><small>${m.e2e.why}.</small></div>`}
                <span class="stamp">${m.e2e?.ok && html`<span class="lock" title="End-to-end encrypted" aria-label="end-to-end encrypted">🔒 </span>`}${hhmm(d)}${m.dir === "out" && html` <${Tick} tick=${m.tick} />`}</span>
                ${m.error && html`<div class="msg-error" role="alert">${m.error}</div>`}
              </div>
            </li>`;
        })}
      </ol>
      ${chat.left
        ? html`<div class="composer-notice" data-notice="left">${chat.leftWhy === "left" ? "You left this group." : "You are no longer a member of this group."}</div>`
        : !groups.canSend(jid)
          ? html`<div class="composer-notice" data-notice="admins-only">Only admins can send messages.</div>`
          : html`<form class="composer" onSubmit=${(e) => { e.preventDefault(); send(); }}>
              <textarea rows="1" aria-label="Message" placeholder="Type a message" value=${text}
                onInput=${(e) => setText(e.target.value)}
                onKeyDown=${(e) => { if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); send(); } }}></textarea>
              <button type="submit" class="send" aria-label="Send">➤</button>
            </form>`}
    </section>
    ${info && html`<${GroupInfo} jid=${jid} close=${() => setInfo(false)} />`}`;
}

function Banner() {
  if (state.status === "online") return null;
  return html`<div class="banner" role="status" data-status=${state.status}><span>${state.status === "connecting" ? "Connecting…" : "Offline. Messages you write are kept and sent when you are back online."}</span></div>`;
}

// ---- group info --------------------------------------------------------------------------

function GroupInfo({ jid, close }) {
  const chat = state.chats.get(jid);
  const live = groups.live.get(jid);
  const online = state.status === "online";
  const aff = groups.myAffiliation(jid);
  const admin = !chat.left && (aff === "owner" || aff === "admin");
  const owner = !chat.left && aff === "owner";
  const [run, busy, err] = useAction();
  const [add, setAdd] = useState("");
  const [copied, setCopied] = useState("");
  useEffect(() => {
    if (!online || chat.left) return;
    run(async () => {
      await groups.loadMembers(jid);
      if (admin) await groups.listLinks(jid);
      if (owner) await groups.adminsOnly(jid);
    });
  }, [jid, online, aff, chat.left]);
  const members = [...(live?.members ?? [])].sort((a, b) => (a.jid === state.account.jid ? -1 : b.jid === state.account.jid ? 1 : a.jid.localeCompare(b.jid)));
  const badge = { owner: "Owner", admin: "Admin" };
  const copy = async (url) => {
    try {
      await navigator.clipboard.writeText(url);
      setCopied(url);
    } catch {
      setCopied("select");
    }
  };
  return html`<aside class="ginfo" aria-label="Group info">
    <header class="bar"><button class="icon" aria-label="Close group info" onClick=${close}>✕</button><strong>Group info</strong></header>
    <div class="ginfo-body">
      <div class="ghead">
        <${GroupAvatar} jid=${jid} size=${96} />
        <h2>${groupName(chat)}</h2>
        <div class="fine">Group · ${members.length || "…"} members</div>
      </div>
      ${err && html`<p class="error" role="alert">${err}</p>`}
      ${!online && html`<p class="fine">Offline: the member list and settings need the connection.</p>`}
      ${owner && online && html`<section class="gsect">
        <label class="check switch"><input type="checkbox" aria-label="Only admins can send messages" checked=${Boolean(live?.adminsOnly)} disabled=${busy}
          onChange=${(e) => run(() => groups.adminsOnly(jid, e.target.checked))} />
          <span><strong>Only admins can send messages</strong><br /><span class="fine">Members can read but not write.</span></span></label>
      </section>`}
      ${admin && online && html`<section class="gsect" aria-label="Invite links">
        <div class="row spread"><strong>Invite via link</strong>
          <button class="primary" disabled=${busy} onClick=${() => run(() => groups.createLink(jid))}>Create link</button></div>
        ${(live?.links ?? []).length === 0 && html`<p class="fine">No invite link yet. Anyone who has a link can join the group.</p>`}
        ${(live?.links ?? []).map((l) => html`<div class="glink" key=${l.token}>
          <input readonly class="link-url" aria-label="Invite link" value=${l.url} onFocus=${(e) => e.target.select()} />
          <div class="row">
            <button onClick=${() => copy(l.url)}>${copied === l.url ? "Copied" : "Copy"}</button>
            <button class="danger" disabled=${busy} onClick=${() => run(() => groups.revokeLink(jid, l.token))}>Revoke</button>
          </div>
        </div>`)}
        ${copied === "select" && html`<p class="fine">Select the link and copy it (the browser refused the clipboard).</p>`}
      </section>`}
      <section class="gsect" aria-label="Members">
        <strong>${members.length} members</strong>
        ${admin && online && html`<form class="row" onSubmit=${(e) => { e.preventDefault(); run(async () => { await groups.addMember(jid, add); setAdd(""); }); }}>
          <input aria-label="Add member" placeholder="Add member: user name or address" value=${add} onInput=${(e) => setAdd(e.target.value)} required />
          <button type="submit" class="primary" disabled=${busy}>Add</button>
        </form>`}
        <ul class="members">
          ${members.map((m) => {
            const me = m.jid === state.account.jid;
            const canRemove = online && !me && (owner ? m.affiliation !== "owner" : admin && m.affiliation === "member");
            return html`<li key=${m.jid} class="member" data-jid=${m.jid} data-affiliation=${m.affiliation}>
              <${Avatar} jid=${m.jid} size=${36} />
              <div class="mname"><span>${me ? "You" : m.nick || local(m.jid)}</span><span class="fine">${m.jid}</span></div>
              ${badge[m.affiliation] && html`<span class="badge">${badge[m.affiliation]}</span>`}
              ${owner && online && m.affiliation === "member" && html`<button class="link" disabled=${busy} onClick=${() => run(() => groups.makeAdmin(jid, m.jid))}>Make admin</button>`}
              ${canRemove && html`<button class="link danger-link" disabled=${busy} onClick=${() => run(() => groups.removeMember(jid, m.jid))}>Remove</button>`}
            </li>`;
          })}
        </ul>
      </section>
      ${!chat.left && online && html`<section class="gsect">
        <button class="danger" disabled=${busy} onClick=${() => run(() => groups.leave(jid))}>Exit group</button>
      </section>`}
    </div>
  </aside>`;
}
