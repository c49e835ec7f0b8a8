// Groups: the server's XEP-0045 rooms on groups.<domain> (docs/groups.md),
// WhatsApp-style. A group is a chat in the same local store as a 1:1 chat
// (chats row with group: true, its messages in messages), so the chat list,
// unread counts, the outgoing queue and the ✓ from the XEP-0198 ack are
// core.js's. What is here:
//   - create (instant members-only persistent room, then a mediated invite
//     per member: it makes them members and tells their apps);
//   - join on every new session, with <history maxstanzas='0'/>, then
//     catch-up from the room's archive (XEP-0313) after the last archive id
//     this device has, deduped by stanza-id (and origin-id for our own);
//   - members (muc#admin lists), add, remove, make admin, leave;
//   - "only admins can send" (urn:bluetick:muc:roomconfig#adminsonly);
//   - invite links (urn:bluetick:muc:invite:0) and joining by one.
import { xml } from "@xmpp/client";
import * as core from "./core.js";
import * as store from "./db.js";
import { e2e } from "./e2e.js";

export const NS = {
  muc: "http://jabber.org/protocol/muc",
  user: "http://jabber.org/protocol/muc#user",
  admin: "http://jabber.org/protocol/muc#admin",
  owner: "http://jabber.org/protocol/muc#owner",
  data: "jabber:x:data",
  invite: "urn:bluetick:muc:invite:0",
  mam: "urn:xmpp:mam:2",
  rsm: "http://jabber.org/protocol/rsm",
  forward: "urn:xmpp:forward:0",
  sid: "urn:xmpp:sid:0",
  delay: "urn:xmpp:delay",
  discoInfo: "http://jabber.org/protocol/disco#info",
  discoItems: "http://jabber.org/protocol/disco#items",
};
const ADMINS_ONLY = "urn:bluetick:muc:roomconfig#adminsonly";

const { state } = core;
const bare = (j) => String(j).split("/")[0].toLowerCase();
const resource = (j) => {
  const i = String(j).indexOf("/");
  return i < 0 ? "" : String(j).slice(i + 1);
};

// Live state of each group on this session (not stored): joined, my role
// and affiliation, who is in the room now.
export const live = new Map(); // room -> {joined, role, affiliation, occupants: Map nick -> {jid, role, affiliation}}
export const ui = { error: "" }; // an error to show once (a join by link refused, say)

function room(jid) {
  let r = live.get(jid);
  if (!r) {
    r = { joined: false, role: "", affiliation: "", occupants: new Map(), catching: false, liveLast: "" };
    live.set(jid, r);
  }
  return r;
}

export const service = () => "groups." + state.account.domain;
// Only rooms of this server's group service become groups here: a crafted
// invitation or link naming a person's address must not turn a 1:1 chat
// into a "group".
const onService = (jid) => /^[^@/]+@[^@/]+$/.test(jid) && jid.split("@")[1] === service();
export const isGroup = (jid) => Boolean(state.chats.get(jid)?.group);
const myNick = () => state.account.jid.split("@")[0];

export function canSend(jid) {
  const chat = state.chats.get(jid);
  if (!chat || chat.left) return false;
  const r = live.get(jid);
  // Before the room told us our role (offline, joining): let the person
  // write; the message waits in the queue and the room decides.
  return !r?.joined || r.role !== "visitor";
}
export const myAffiliation = (jid) => live.get(jid)?.affiliation || state.chats.get(jid)?.affiliation || "";
export const isAdmin = (jid) => ["owner", "admin"].includes(myAffiliation(jid));

async function saveChat(chat) {
  chat = { ...chat };
  state.chats.set(chat.jid, chat);
  await store.putChat(chat);
  core.changed();
  return chat;
}

function errorText(el) {
  const err = el?.getChild?.("error");
  const text = err?.getChildText("text", "urn:ietf:params:xml:ns:xmpp-stanzas");
  const cond = err?.children.find((x) => x.name && x.name !== "text")?.name;
  return { cond: cond || "", text: text || cond || "unknown error" };
}
const iqErr = (e) => e?.element ? errorText(e.element) : { cond: e?.condition || "", text: e?.text || e?.condition || e?.message || String(e) };

// ---- joining ------------------------------------------------------------------

const waiters = new Map(); // room -> {resolve, reject, timer}

// join enters the room (presence to room/nick); resolves with the status
// codes of our own presence, or throws {cond, text} when refused.
function enter(c, jid, password) {
  const r = room(jid);
  r.joined = false;
  const x = xml("x", { xmlns: NS.muc }, xml("history", { maxstanzas: "0" }));
  if (password) x.append(xml("password", {}, password));
  const p = new Promise((resolve, reject) => {
    const old = waiters.get(jid);
    if (old) old.reject({ cond: "superseded", text: "joining again" });
    const timer = setTimeout(() => {
      waiters.delete(jid);
      reject({ cond: "timeout", text: "the group did not answer" });
    }, 15000);
    waiters.set(jid, { resolve, reject, timer });
  });
  c.send(xml("presence", { to: `${jid}/${myNick()}` }, x)).catch(() => {});
  return p;
}

// joinAndCatchUp joins a group we are a member of, then fetches what the
// archive has after the last message this device stored.
async function joinAndCatchUp(c, jid, password) {
  const r = room(jid);
  r.catching = true;
  r.liveLast = "";
  try {
    await enter(c, jid, password);
    await catchUp(c, jid);
  } finally {
    r.catching = false;
  }
  core.flushOutbox(); // what waited for the join
}

// ---- the archive ---------------------------------------------------------------

const mamBuffers = new Map(); // queryid -> [forwarded message elements]
const PAGE = 100;
const MAX_PAGES = 50;

async function mamPage(c, jid, rsm) {
  const qid = crypto.randomUUID();
  const got = [];
  mamBuffers.set(qid, got);
  try {
    const res = await c.iqCaller.request(
      xml("iq", { type: "set", to: jid }, xml("query", { xmlns: NS.mam, queryid: qid }, xml("set", { xmlns: NS.rsm }, ...rsm))),
      20000,
    );
    await e2e.settled(); // the page's encrypted messages are decrypted in place
    const fin = res.getChild("fin", NS.mam);
    return { items: got, complete: fin?.attrs.complete === "true", last: fin?.getChild("set", NS.rsm)?.getChildText("last") || "" };
  } finally {
    mamBuffers.delete(qid);
  }
}

let catchUpCount = 0; // for tests and docs: archive messages fetched

async function catchUp(c, jid) {
  let chat = state.chats.get(jid);
  if (!chat) return;
  const r = room(jid);
  if (chat.cursor === undefined || chat.cursor === null) {
    // Joined by a link: start from now, as WhatsApp does (the archive's
    // last id, nothing stored). Created or invited: from the beginning.
    if (chat.fromNow) {
      const { items, last } = await mamPage(c, jid, [xml("max", {}, "1"), xml("before")]);
      chat = await saveChat({ ...state.chats.get(jid), cursor: last || items.at(-1)?.id || "", fromNow: false });
      return;
    }
    chat = await saveChat({ ...chat, cursor: "" });
  }
  let after = chat.cursor;
  for (let i = 0; i < MAX_PAGES; i++) {
    const rsm = [xml("max", {}, String(PAGE))];
    if (after) rsm.push(xml("after", {}, after));
    const page = await mamPage(c, jid, rsm);
    for (const it of page.items) {
      catchUpCount++;
      await storeMessage(jid, it.msg, it.stamp, it.id);
    }
    const next = page.last || page.items.at(-1)?.id || after;
    if (next !== after) {
      after = next;
      await saveChat({ ...state.chats.get(jid), cursor: after });
    }
    if (page.complete || page.items.length === 0) break;
  }
  // Live messages that came during the catch-up are newer than the archive
  // pages read before them.
  if (r.liveLast && r.liveLast !== after) await saveChat({ ...state.chats.get(jid), cursor: r.liveLast });
}

// ---- messages ------------------------------------------------------------------

// storeMessage keeps a groupchat message once: by stanza-id for others',
// by origin-id for ours (the room's reflection of what we sent).
async function storeMessage(jid, st, stamp, archiveId) {
  const body = st.getChildText("body");
  if (body === null) return;
  const chat = state.chats.get(jid);
  if (!chat) return;
  const nick = resource(st.attrs.from);
  const sid = archiveId || st.getChildren("stanza-id", NS.sid).find((e) => bare(e.attrs.by || "") === jid)?.attrs.id || "";
  const origin = st.getChild("origin-id", NS.sid)?.attrs.id || "";
  const mine = nick === (chat.nick || myNick());
  const r = room(jid);
  if (sid && !archiveId && !r.catching) {
    await saveChat({ ...state.chats.get(jid), cursor: sid });
  } else if (sid && !archiveId) {
    r.liveLast = sid;
  }
  const ts = stamp ? Math.min(Date.parse(stamp) || Date.now(), Date.now()) : Date.now();
  if (mine && origin) {
    const key = store.msgKey(jid, "out", origin);
    const m = await store.getMessage(key);
    if (m) {
      // The room's copy of what we sent: archived. ✓ (if the ack has not
      // said so already), and its archive id for dedupe.
      if (!m.sid && sid) {
        m.sid = sid;
        if (m.tick === "pending") m.tick = "sent";
        await store.putMessage(m);
        await store.dequeue(key);
        replaceShown(m);
        const chat = state.chats.get(jid);
        if (chat?.lastKey === key && chat.lastTick !== m.tick) await saveChat({ ...chat, lastTick: m.tick });
      }
      return;
    }
  }
  const id = mine ? origin || sid : sid || origin || crypto.randomUUID();
  const key = store.msgKey(jid, mine ? "out" : "in", id);
  if (await store.getMessage(key)) return;
  const m = mine
    ? { key, chat: jid, dir: "out", id, sid, body, ts, tick: "sent" }
    : { key, chat: jid, dir: "in", id, sid, from: nick, body, ts };
  if (st.e2e) m.e2e = st.e2e;
  await store.putMessage(m);
  await core.touchChat(jid, m, !mine);
  if (state.open === jid) {
    state.messages = [...state.messages, m].sort((a, b) => a.ts - b.ts);
    core.changed();
  }
  if (state.open === jid) core.sendDisplayed(); // clears the unread count when looked at
}

function replaceShown(m) {
  const i = state.messages.findIndex((x) => x.key === m.key);
  if (i >= 0) {
    state.messages = state.messages.slice();
    state.messages[i] = m;
    core.changed();
  }
}

// A message the room refused (type='error', our id): shown on it, not lost.
async function refused(jid, st) {
  const key = store.msgKey(jid, "out", st.attrs.id);
  const m = await store.getMessage(key);
  if (!m) return;
  const { cond, text } = errorText(st);
  m.tick = "failed";
  m.error = cond === "forbidden" ? "Not sent: only admins can send messages to this group." : `Not sent: ${text}`;
  await store.putMessage(m);
  await store.dequeue(key);
  replaceShown(m);
  const chat = state.chats.get(jid);
  if (chat?.lastKey === key) await saveChat({ ...chat, lastTick: "failed" });
}

// ---- stanzas from the network -----------------------------------------------------

core.hooks.received.push((c, st) => {
  const from = st.attrs.from || "";
  const jid = bare(from);
  if (st.is("message")) {
    const res = st.getChild("result", NS.mam);
    if (res && mamBuffers.has(res.attrs.queryid)) {
      const fwd = res.getChild("forwarded", NS.forward);
      const msg = fwd?.getChild("message");
      if (msg) mamBuffers.get(res.attrs.queryid).push({ id: res.attrs.id, stamp: fwd.getChild("delay", NS.delay)?.attrs.stamp, msg });
      return true;
    }
    const inv = st.getChild("x", NS.user)?.getChild("invite");
    if (inv && !resource(from) && onService(jid)) {
      invited(c, jid, inv).catch((e) => console.info("invite:", e?.message ?? e));
      return true;
    }
    if (!isGroup(jid)) return false;
    if (st.attrs.type === "error") {
      if (st.attrs.id) refused(jid, st).catch(() => {});
      return true;
    }
    const codes = st.getChild("x", NS.user)?.getChildren("status").map((s) => s.attrs.code) ?? [];
    if (codes.includes("104")) refreshInfo(c, jid);
    if (st.attrs.type === "groupchat" && resource(from)) {
      storeMessage(jid, st, st.getChild("delay", NS.delay)?.attrs.stamp).catch((e) => console.warn("group message:", e));
    }
    return true; // subjects, private messages: not shown
  }
  if (st.is("presence") && (isGroup(jid) || waiters.has(jid))) {
    onPresence(jid, st);
    return true;
  }
  return false;
});

function onPresence(jid, st) {
  const r = room(jid);
  const nick = resource(st.attrs.from);
  const x = st.getChild("x", NS.user);
  const item = x?.getChild("item");
  const codes = x?.getChildren("status").map((s) => s.attrs.code) ?? [];
  const self = codes.includes("110");
  if (st.attrs.type === "error") {
    const w = waiters.get(jid);
    if (w) {
      clearTimeout(w.timer);
      waiters.delete(jid);
      w.reject(errorText(st));
    }
    return;
  }
  if (st.attrs.type === "unavailable") {
    r.occupants.delete(nick);
    if (self) {
      r.joined = false;
      // Removed (321), banned (301) or the group was destroyed: no longer
      // a member. (A kick, 307, is only out of the room.)
      if (codes.includes("321") || codes.includes("301") || x?.getChild("destroy")) {
        const chat = state.chats.get(jid);
        if (chat && !chat.left) saveChat({ ...chat, left: true, leftWhy: codes.includes("301") ? "banned" : "removed", affiliation: "none" });
      }
    }
    core.changed();
    return;
  }
  r.occupants.set(nick, { jid: bare(item?.attrs.jid || ""), role: item?.attrs.role || "", affiliation: item?.attrs.affiliation || "" });
  if (self) {
    r.joined = true;
    r.role = item?.attrs.role || "";
    r.affiliation = item?.attrs.affiliation || "";
    const chat = state.chats.get(jid);
    if (chat && chat.affiliation !== r.affiliation) saveChat({ ...chat, affiliation: r.affiliation });
    const w = waiters.get(jid);
    if (w) {
      clearTimeout(w.timer);
      waiters.delete(jid);
      w.resolve(codes);
    }
  } else if (r.members) {
    // Someone's affiliation changed (made admin): the member list follows.
    const m = r.members.find((x) => x.jid === bare(item?.attrs.jid || ""));
    if (m && item?.attrs.affiliation && m.affiliation !== item.attrs.affiliation) m.affiliation = item.attrs.affiliation;
  }
  core.changed();
}

async function refreshInfo(c, jid) {
  try {
    const res = await c.iqCaller.request(xml("iq", { type: "get", to: jid }, xml("query", { xmlns: NS.discoInfo })), 10000);
    const name = res.getChild("query", NS.discoInfo)?.getChild("identity")?.attrs.name;
    const chat = state.chats.get(jid);
    if (name && chat && chat.name !== name) await saveChat({ ...chat, name });
    return name;
  } catch {
    return "";
  }
}

// An invitation (mediated, from the room): we are a member now.
async function invited(c, jid, inv) {
  if (state.chats.get(jid)?.group && !state.chats.get(jid).left) return;
  await addGroup(c, jid, { invitedBy: bare(inv.attrs.from || "") });
}

async function addGroup(c, jid, extra = {}) {
  const old = state.chats.get(jid);
  const chat = await saveChat({
    jid, unread: 0, lastTs: Date.now(), lastText: "",
    ...old, group: true, nick: myNick(), name: old?.name || jid.split("@")[0], left: false, ...extra,
  });
  await refreshInfo(c, jid);
  await joinAndCatchUp(c, jid, extra.password).catch((e) => console.info("join", jid, e?.text ?? e));
  return chat;
}

// ---- the session ------------------------------------------------------------------

// A connection that dropped may come back as the same session (XEP-0198
// resumption: still in every room) or as a new one (out of every room until
// it joins again). Until we know which, group messages wait.
let suspect = false;
core.subscribe(() => {
  if (state.status !== "online") suspect = true;
});
core.hooks.resumed.push(() => {
  suspect = false;
  core.flushOutbox();
});

core.hooks.compose.push((m) => {
  if (!isGroup(m.chat)) return undefined;
  if (suspect || !live.get(m.chat)?.joined) return null; // sent after the join
  return xml(
    "message",
    { type: "groupchat", to: m.chat, id: m.id },
    xml("body", {}, m.body),
    xml("origin-id", { xmlns: NS.sid, id: m.id }),
  );
});

core.hooks.online.push(async (c) => {
  for (const r of live.values()) {
    r.joined = false;
    r.occupants.clear();
  }
  suspect = false;
  // The groups we are a member of, also those this device never heard of.
  try {
    const res = await c.iqCaller.request(xml("iq", { type: "get", to: service() }, xml("query", { xmlns: NS.discoItems })), 10000);
    for (const it of res.getChild("query", NS.discoItems)?.getChildren("item") ?? []) {
      const jid = bare(it.attrs.jid);
      if (!onService(jid)) continue;
      const old = state.chats.get(jid);
      if (!old) {
        await saveChat({ jid, group: true, nick: myNick(), name: it.attrs.name || jid.split("@")[0], unread: 0, lastTs: Date.now(), lastText: "" });
      } else if (old.group && old.left) {
        await saveChat({ ...old, left: false, leftWhy: "" }); // added again
      }
    }
  } catch (e) {
    console.info("groups:", iqErr(e).text);
  }
  const joins = [];
  for (const chat of state.chats.values()) {
    if (chat.group && !chat.left) joins.push(joinAndCatchUp(c, chat.jid).catch((e) => onJoinError(chat.jid, e)));
  }
  await Promise.all(joins);
  await joinFromLink();
});

function onJoinError(jid, e) {
  // No longer a member (removed while we were away): say so in the chat.
  if (e?.cond === "registration-required" || e?.cond === "forbidden" || e?.cond === "item-not-found") {
    const chat = state.chats.get(jid);
    if (chat) saveChat({ ...chat, left: true, leftWhy: "removed", affiliation: "none" });
  } else {
    console.info("join", jid, e?.text ?? e);
  }
}

// ---- actions (the UI's) ------------------------------------------------------------

const need = () => {
  const c = core.connection();
  if (!c) throw new Error("You are offline.");
  return c;
};
const jidOf = (s) => {
  s = s.trim().toLowerCase();
  return s.includes("@") ? s : `${s}@${state.account.domain}`;
};
const field = (v, ...vals) => xml("field", { var: v }, ...vals.map((x) => xml("value", {}, x)));

// createGroup makes the room (instant, then configured), invites the
// members and opens it.
export async function createGroup(name, members) {
  const c = need();
  name = name.trim();
  if (!name) throw new Error("Give the group a name.");
  const jids = [...new Set(members.map(jidOf).filter((j) => j && j !== state.account.jid))];
  const local = "g" + [...crypto.getRandomValues(new Uint8Array(8))].map((b) => b.toString(16).padStart(2, "0")).join("");
  const jid = `${local}@${service()}`;
  await saveChat({ jid, group: true, nick: myNick(), name, unread: 0, lastTs: Date.now(), lastText: "", cursor: "", affiliation: "owner" });
  try {
    const codes = await enter(c, jid);
    if (!codes.includes("201")) throw { text: "a group with that address exists already" };
    await c.iqCaller.request(
      xml("iq", { type: "set", to: jid }, xml("query", { xmlns: NS.owner },
        xml("x", { xmlns: NS.data, type: "submit" },
          field("FORM_TYPE", "http://jabber.org/protocol/muc#roomconfig"),
          field("muc#roomconfig_roomname", name),
          field("muc#roomconfig_persistentroom", "1"),
          field("muc#roomconfig_membersonly", "1"),
          field("muc#roomconfig_whois", "anyone"),
          field("muc#roomconfig_publicroom", "0"),
          field("muc#roomconfig_allowinvites", "0"),
        ))),
      15000,
    );
  } catch (e) {
    state.chats.delete(jid);
    const db = await store.db();
    await db.delete("chats", jid);
    core.changed();
    throw new Error(`The group was not created: ${e?.text ?? iqErr(e).text}`);
  }
  for (const j of jids) await invite(c, jid, j);
  await core.openChat(jid);
  return jid;
}

// A mediated invitation (XEP-0045 §7.8.2): on this server it makes the
// invitee a member and reaches them even when they are offline.
function invite(c, jid, who) {
  return c.send(xml("message", { to: jid, id: crypto.randomUUID() }, xml("x", { xmlns: NS.user }, xml("invite", { to: who }))));
}

export async function addMember(jid, who) {
  const c = need();
  const j = jidOf(who);
  // Affiliation first (an error comes back on the IQ), then the invitation
  // that tells their app.
  await adminSet(c, jid, j, "member");
  await invite(c, jid, j);
  await loadMembers(jid);
}

async function adminSet(c, jid, who, affiliation) {
  try {
    await c.iqCaller.request(xml("iq", { type: "set", to: jid }, xml("query", { xmlns: NS.admin }, xml("item", { jid: who, affiliation }))), 15000);
  } catch (e) {
    throw new Error(iqErr(e).text);
  }
}

export async function removeMember(jid, who) {
  await adminSet(need(), jid, who, "none");
  await loadMembers(jid);
}

export async function makeAdmin(jid, who) {
  await adminSet(need(), jid, who, "admin");
  await loadMembers(jid);
}

// loadMembers reads the member list (owners, admins, members) into live.
export async function loadMembers(jid) {
  const c = need();
  const r = room(jid);
  const members = [];
  for (const affiliation of ["owner", "admin", "member"]) {
    const res = await c.iqCaller.request(xml("iq", { type: "get", to: jid }, xml("query", { xmlns: NS.admin }, xml("item", { affiliation }))), 15000);
    for (const it of res.getChild("query", NS.admin)?.getChildren("item") ?? []) {
      members.push({ jid: bare(it.attrs.jid), affiliation, nick: it.attrs.nick || "" });
    }
  }
  r.members = members;
  core.changed();
  return members;
}

// adminsOnly reads (value undefined) or sets the switch; owners only (the
// room's configuration form is theirs).
export async function adminsOnly(jid, value) {
  const c = need();
  const r = room(jid);
  if (value === undefined) {
    const res = await c.iqCaller.request(xml("iq", { type: "get", to: jid }, xml("query", { xmlns: NS.owner })), 15000);
    const f = res.getChild("query", NS.owner)?.getChild("x", NS.data)?.getChildren("field").find((f) => f.attrs.var === ADMINS_ONLY);
    r.adminsOnly = ["1", "true"].includes(f?.getChildText("value"));
  } else {
    const before = r.adminsOnly;
    r.adminsOnly = value; // the switch follows the hand; put back if refused
    core.changed();
    await c.iqCaller.request(
      xml("iq", { type: "set", to: jid }, xml("query", { xmlns: NS.owner },
        xml("x", { xmlns: NS.data, type: "submit" }, field("FORM_TYPE", "http://jabber.org/protocol/muc#roomconfig"), field(ADMINS_ONLY, value ? "1" : "0")))),
      15000,
    ).catch((e) => {
      r.adminsOnly = before;
      core.changed();
      throw new Error(iqErr(e).text);
    });
    r.adminsOnly = value;
  }
  core.changed();
  return r.adminsOnly;
}

// Invite links: the server's token, turned into an address of this app.
export function appLink(uri) {
  const m = /^xmpp:([^?]+)\?join;password=(.+)$/.exec(uri || "");
  if (!m) return "";
  const token = decodeURIComponent(m[2].replace(/\+/g, " "));
  return `${location.origin}/#join=${encodeURIComponent(m[1])}&token=${encodeURIComponent(token)}`;
}

export async function listLinks(jid) {
  const c = need();
  const res = await c.iqCaller.request(xml("iq", { type: "get", to: jid }, xml("list", { xmlns: NS.invite })), 15000);
  const links = (res.getChild("list", NS.invite)?.getChildren("invite") ?? []).map((i) => ({ token: i.attrs.token, url: appLink(i.attrs.uri) }));
  room(jid).links = links;
  core.changed();
  return links;
}

export async function createLink(jid) {
  const c = need();
  await c.iqCaller.request(xml("iq", { type: "set", to: jid }, xml("create", { xmlns: NS.invite })), 15000).catch((e) => { throw new Error(iqErr(e).text); });
  return listLinks(jid);
}

export async function revokeLink(jid, token) {
  const c = need();
  await c.iqCaller.request(xml("iq", { type: "set", to: jid }, xml("revoke", { xmlns: NS.invite, token })), 15000).catch((e) => { throw new Error(iqErr(e).text); });
  return listLinks(jid);
}

// leave: out of the room and off the member list; the chat and its
// history stay on this device.
export async function leave(jid) {
  const c = need();
  await adminSet(c, jid, state.account.jid, "none");
  await c.send(xml("presence", { to: `${jid}/${myNick()}`, type: "unavailable" })).catch(() => {});
  room(jid).joined = false;
  await saveChat({ ...state.chats.get(jid), left: true, leftWhy: "left", affiliation: "none" });
}

// ---- join by link: http://host/#join=<room>&token=<T> ------------------------------

function linkInHash() {
  const h = new URLSearchParams(location.hash.replace(/^#/, ""));
  const jid = h.get("join");
  const token = h.get("token");
  return jid && token ? { jid: bare(jid), token } : null;
}

let linkBusy = false;
async function joinFromLink() {
  const link = linkInHash();
  const c = core.connection();
  if (!link || !c || linkBusy) return;
  linkBusy = true;
  history.replaceState(null, "", location.pathname + location.search);
  try {
    if (!onService(link.jid)) {
      ui.error = "This link is not an invitation to a group on this server.";
      core.changed();
      return;
    }
    const old = state.chats.get(link.jid);
    if (old?.group && !old.left && live.get(link.jid)?.joined) {
      await core.openChat(link.jid);
      return;
    }
    const name = (await refreshInfo(c, link.jid)) || link.jid.split("@")[0];
    const had = Boolean(old);
    await saveChat({ jid: link.jid, unread: 0, lastTs: Date.now(), lastText: "", ...old, group: true, nick: myNick(), name, left: false, ...(had ? {} : { fromNow: true }) });
    try {
      await joinAndCatchUp(c, link.jid, link.token);
    } catch (e) {
      if (!had) {
        state.chats.delete(link.jid);
        await (await store.db()).delete("chats", link.jid);
      } else {
        await saveChat({ ...state.chats.get(link.jid), left: old.left });
      }
      ui.error = e?.cond === "not-authorized" ? "This invite link was revoked or is not valid." : e?.cond === "forbidden" ? "You cannot join this group." : `Could not join the group: ${e?.text ?? e}`;
      core.changed();
      return;
    }
    await core.openChat(link.jid);
  } finally {
    linkBusy = false;
  }
}
addEventListener("hashchange", () => joinFromLink());

export const stats = () => ({ catchUp: catchUpCount });
