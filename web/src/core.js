// The app's state and its XMPP side: connection (SASL2 + FAST token +
// Bind2 + XEP-0198 resumption, all from @xmpp/client), the outgoing queue,
// receipts and markers, roster, presence, last seen and chat states.
import { client, xml, jid as parseJID } from "@xmpp/client";
import * as store from "./db.js";
import * as history from "./history.js";

const NS = {
  receipts: "urn:xmpp:receipts",
  markers: "urn:xmpp:chat-markers:0",
  sid: "urn:xmpp:sid:0",
  states: "http://jabber.org/protocol/chatstates",
  roster: "jabber:iq:roster",
  last: "jabber:iq:last",
  register: "jabber:iq:register",
  regFeature: "http://jabber.org/features/iq-register",
  delay: "urn:xmpp:delay",
};

export const TICKS = ["pending", "sent", "delivered", "read"];

// Extension points for features kept in their own files (settings.js,
// actions.js, groups.js, ...), so they keep their protocol code there:
//   client(c)                    a new @xmpp/client instance, before it starts (iq handlers, listeners)
//   presence()                   async; returns an element to add to the initial presence, or null
//   online(c)                    the session is up (not on a resumption)
//   resumed(c)                   a session was resumed
//   received(c, st)              -> true when it handled a stanza (before the 1:1 handling)
//   stored(m)                    a new incoming message was stored
//   incoming(c, st, chat, from)  -> true when it consumed a <message/>
//   decorate(st, m)              adds fields to a new incoming message
//   compose(m)                   -> the stanza to send for a queued message, null to keep
//                                   it queued for now, undefined for the 1:1 default
//   outgoing(m, kids)            -> the body to send; may push children
//   stanza(row)                  -> the stanza of an outbox row that is no message
//   seal(m, st)                  async; -> the stanza to send instead of st (encrypted:
//                                   omemo.js), null to keep the message queued for now
//   unseal(c, st)                async; before anything reads a received stanza (decrypts
//                                   in place); -> true when it consumed the stanza
export const hooks = {
  client: [], presence: [], online: [], resumed: [], received: [], stored: [],
  incoming: [], decorate: [], compose: [], outgoing: [], stanza: [], seal: [], unseal: [],
};
export const connection = () => (state.status === "online" ? xmpp : null);
const rank = (t) => TICKS.indexOf(t);

// ---- state and subscriptions ----------------------------------------------

export const state = {
  phase: "loading", // loading | signin | app
  account: null, // {jid, domain, ws}
  status: "offline", // offline | connecting | online
  retryIn: 0,
  error: "",
  notice: "",
  chats: new Map(), // jid -> chat
  open: null, // bare JID of the open chat
  messages: [], // of the open chat
  hasOlder: false, // the store has older messages of the open chat than state.messages
  hasNewer: false, // ... and newer ones (the window was scrolled back)
  unreadMark: null, // {count, ts}: where "N unread messages" goes in the open chat
  typing: new Map(), // jid -> bool
  presence: new Map(), // jid -> {online, lastSeen}
  roster: new Map(), // jid -> {jid, name, subscription, ask}
  requests: new Set(), // bare JIDs asking to see our presence
};

export const client_ = () => xmpp; // the current client, or null
const runHooks = (name, ...a) => {
  for (const f of hooks[name]) {
    try {
      f(...a);
    } catch (e) {
      console.warn(name + " hook:", e);
    }
  }
};

const subs = new Set();
let queued = false;
export function subscribe(fn) {
  subs.add(fn);
  return () => subs.delete(fn);
}
export function changed() {
  if (queued) return;
  queued = true;
  queueMicrotask(() => {
    queued = false;
    for (const fn of subs) fn();
  });
}

const bare = (j) => String(j).split("/")[0].toLowerCase();

export function sortedChats() {
  return [...state.chats.values()].sort((a, b) => (b.lastTs || 0) - (a.lastTs || 0));
}

// ---- start-up: the local store first, then the network ----------------------

export async function boot() {
  const t0 = performance.now();
  const slow = setTimeout(() => console.warn("boot: the local store has not opened after 5 s"), 5000);
  const account = await store.kvGet("account");
  clearTimeout(slow);
  console.info(`boot: local store read in ${Math.round(performance.now() - t0)} ms`);
  if (!account) {
    state.phase = "signin";
    changed();
    return;
  }
  state.account = account;
  for (const c of await store.allChats()) state.chats.set(c.jid, c);
  for (const r of (await store.kvGet("roster")) ?? []) state.roster.set(r.jid, r);
  state.phase = "app";
  changed();
  connect(null);
}

// ---- discovery ---------------------------------------------------------------

async function discover() {
  const res = await fetch("/.well-known/host-meta.json", { cache: "no-store" });
  if (!res.ok) throw new Error(`host-meta: HTTP ${res.status}`);
  const meta = await res.json();
  const link = (meta.links ?? []).find((l) => l.rel === "urn:xmpp:alt-connections:websocket");
  if (!link) throw new Error("the server offers no WebSocket endpoint");
  let ws = link.href;
  // A page served over https may only open wss.
  if (location.protocol === "https:" && ws.startsWith("ws:")) ws = "wss:" + ws.slice(3);
  return ws;
}

async function serverDomain() {
  try {
    const res = await fetch("/config.json", { cache: "no-store" });
    if (res.ok) {
      const c = await res.json();
      if (c.domain) return c.domain;
    }
  } catch {}
  return location.hostname;
}

// ---- the connection ------------------------------------------------------------

let xmpp = null;
let pending = null; // {password, register} for the next authentication only
let backoff = 1000;
let retryTimer = null;
const inflight = new Set(); // message keys sent on the current stream, not yet acked

function setStatus(s) {
  state.status = s;
  changed();
}

// signIn is the sign-in / sign-up form's action.
export async function signIn(address, password, register) {
  state.error = "";
  state.notice = "";
  changed();
  address = address.trim();
  let domain, local;
  if (address.includes("@")) {
    [local, domain] = address.split("@");
  } else {
    local = address;
    domain = await serverDomain();
  }
  local = local.trim().toLowerCase();
  domain = domain.trim().toLowerCase();
  if (!local || !domain) {
    state.error = "Enter your user name or address.";
    changed();
    return;
  }
  let ws;
  try {
    ws = await discover();
  } catch (e) {
    state.error = `Cannot find the server: ${e.message}`;
    changed();
    return;
  }
  const account = { jid: `${local}@${domain}`, domain, ws };
  const prev = await store.kvGet("account");
  if (prev && prev.jid !== account.jid) {
    // Another account's data must not show under this one.
    await store.wipe();
    state.chats.clear();
    state.roster.clear();
    state.open = null;
    state.messages = [];
  }
  await store.kvDel("token");
  state.account = account;
  const ok = await connect({ password, register });
  if (ok) {
    await store.kvSet("account", account);
    state.phase = "app";
    changed();
  }
}

// connect starts a client; creds is null to sign in with the stored FAST
// token. It resolves true once online.
async function connect(creds) {
  clearTimeout(retryTimer);
  if (xmpp) {
    const old = xmpp;
    xmpp = null;
    old.reconnect.stop();
    old.stop().catch(() => {});
  }
  pending = creds;
  const { jid, domain, ws } = state.account;
  const local = jid.split("@")[0];
  const uaId = await store.deviceId();
  const c = client({ service: ws, domain, username: local, credentials: authenticate, timeout: 10000 });
  xmpp = c;
  c.streamManagement.requestAckDebounce = 10;
  c.streamManagement.requestAckInterval = 15000;
  c.fast.fetchToken = () => store.kvGet("token");
  c.fast.saveToken = (t) => store.kvSet("token", t);
  c.fast.deleteToken = () => store.kvDel("token");
  runHooks("client", c);

  // @xmpp/client 0.14 leaves iq results and errors out of its XEP-0198
  // count: its iq caller takes the replies it waits for before the
  // stream-management middleware sees them. The server then takes the
  // stanzas after them as never received, and an offline drain to this
  // session waited forever for their ack, holding every later message
  // (tests/web offline: smMiscounts). Count such a reply here, before the
  // middleware runs, while the caller still waits for it.
  c.prependListener("element", (el) => {
    const sm = c.streamManagement;
    if (sm.enabled && el.name === "iq" && (el.attrs.type === "result" || el.attrs.type === "error") && c.iqCaller.handlers.has(el.attrs.id)) {
      sm.inbound += 1;
    }
  });
  let features = null;
  c.on("element", (el) => {
    if (el.is("features", "http://etherx.jabber.org/streams")) features = el;
  });
  async function authenticate(done, mechanisms) {
    const creds = pending;
    if (creds?.register) {
      if (!features?.getChild("register", NS.regFeature)) {
        throw new UserError("This server does not allow signing up here (in-band registration is closed). Ask its administrator to create your account.");
      }
      await registerAccount(c, local, creds.password);
    }
    const token = await c.fast.fetch();
    if (!token && !creds?.password) throw new NeedPassword();
    const ua = xml("user-agent", { id: uaId }, xml("software", {}, "Bluetick Web"), xml("device", {}, navigator.platform || "browser"));
    const mechanism = mechanisms.find((m) => m !== "PLAIN") ?? mechanisms[0];
    await done({ username: local, password: creds?.password ?? "", token }, mechanism, ua);
  }

  c.on("status", (s) => {
    if (c !== xmpp) return;
    if (s === "connecting" || s === "connect" || s === "opening" || s === "open") setStatus("connecting");
    if (s === "disconnect" || s === "offline") {
      setStatus("offline");
      state.presence.clear();
      state.typing.clear();
    }
  });
  c.on("error", (e) => {
    if (c !== xmpp) return;
    console.info("xmpp:", e?.condition ?? e?.message ?? e);
  });
  c.on("online", async () => {
    if (c !== xmpp) return;
    pending = null;
    backoff = 1000;
    inflight.clear(); // a new stream: whatever was unacked goes again
    setStatus("online");
    await afterOnline(c);
  });
  c.streamManagement.on("resumed", () => {
    if (c !== xmpp) return;
    backoff = 1000;
    setStatus("online");
    sendDisplayed();
    flushOutbox();
    runHooks("resumed", c);
  });
  c.streamManagement.on("ack", (st) => c === xmpp && onAck(st));
  c.streamManagement.on("fail", (st) => {
    const id = st.getChild("origin-id", NS.sid)?.attrs.id;
    if (id) inflight.delete(store.msgKey(bare(st.attrs.to), "out", id));
  });
  c.on("stanza", (st) => c === xmpp && onStanza(c, st).catch((e) => console.warn("stanza:", e)));
  c.iqCallee.set(NS.roster, "query", (ctx) => {
    onRosterPush(ctx.stanza);
    return {};
  });
  c.iqCallee.get(NS.last, "query", () => xml("query", { xmlns: NS.last, seconds: "0" }));
  c.reconnect.delay = backoff;
  c.reconnect.on("reconnecting", () => {
    backoff = Math.min(backoff * 2, 8000);
    c.reconnect.delay = backoff;
  });

  setStatus("connecting");
  try {
    await c.start();
    return true;
  } catch (e) {
    if (c !== xmpp) return false;
    if (e instanceof NeedPassword || e?.condition === "not-authorized" || e?.condition === "credentials-expired") {
      // The token was refused (revoked, expired) or the password is wrong.
      c.reconnect.stop();
      c.stop().catch(() => {});
      xmpp = null;
      setStatus("offline");
      await store.kvDel("token");
      const signedIn = state.phase === "app";
      state.phase = "signin";
      state.error = creds?.password
        ? "Wrong user name or password."
        : "Your session has ended. Enter your password to sign in again.";
      if (signedIn) state.notice = state.account.jid;
      changed();
      return false;
    }
    if (e instanceof UserError || creds?.register) {
      c.reconnect.stop();
      c.stop().catch(() => {});
      xmpp = null;
      setStatus("offline");
      state.error = e.message;
      changed();
      return false;
    }
    if (creds) {
      c.reconnect.stop();
      c.stop().catch(() => {});
      xmpp = null;
      setStatus("offline");
      state.error = `Cannot connect: ${e?.message ?? e}`;
      changed();
      return false;
    }
    // No network or the server is away: try again with backoff.
    setStatus("offline");
    scheduleRetry();
    return false;
  }
}

function scheduleRetry() {
  clearTimeout(retryTimer);
  const wait = backoff;
  backoff = Math.min(backoff * 2, 8000);
  state.retryIn = Math.round(wait / 1000);
  changed();
  retryTimer = setTimeout(() => {
    if (state.phase === "app" && state.status === "offline") connect(null);
  }, wait);
}

export function retryNow() {
  if (state.phase !== "app") return;
  if (!xmpp || state.status === "offline") {
    backoff = 1000;
    connect(null);
  }
}
addEventListener("online", retryNow);

class NeedPassword extends Error {
  constructor() {
    super("password needed");
  }
}
class UserError extends Error {}

async function registerAccount(c, local, password) {
  const id = "reg-" + crypto.randomUUID();
  const answer = new Promise((resolve) => {
    const on = (el) => {
      if (el.is("iq") && el.attrs.id === id) {
        c.removeListener("element", on);
        resolve(el);
      }
    };
    c.on("element", on);
  });
  await c.send(
    xml("iq", { type: "set", id }, xml("query", { xmlns: NS.register }, xml("username", {}, local), xml("password", {}, password))),
  );
  const res = await answer;
  if (res.attrs.type === "result") return;
  const err = res.getChild("error");
  const text = err?.getChildText("text", "urn:ietf:params:xml:ns:xmpp-stanzas");
  const cond = err?.children.find((x) => x.name && x.name !== "text")?.name;
  throw new UserError(cond === "conflict" ? "That user name is taken." : `Sign-up refused: ${text || cond || "unknown error"}`);
}

// Leaving the page ends the session cleanly, so contacts see "last seen"
// now rather than when the server gives up on a resumable session.
addEventListener("pagehide", () => {
  const c = xmpp;
  if (c && state.status === "online") {
    c.send(xml("presence", { type: "unavailable" })).catch(() => {});
  }
});

export async function signOut(wipe) {
  clearTimeout(retryTimer);
  const c = xmpp;
  xmpp = null;
  if (c) {
    c.reconnect.stop();
    await c.stop().catch(() => {});
  }
  if (wipe) {
    await store.wipe();
  } else {
    await store.kvDel("token");
  }
  location.reload();
}

// ---- after the session starts ---------------------------------------------------

async function afterOnline(c) {
  const extra = (await Promise.all(hooks.presence.map((f) => f().catch(() => null)))).filter(Boolean);
  await c.send(xml("presence", {}, ...extra));
  runHooks("online", c);
  try {
    const res = await c.iqCaller.get(xml("query", { xmlns: NS.roster }));
    state.roster.clear();
    for (const it of res.getChildren("item")) addRosterItem(it);
    await saveRoster();
  } catch (e) {
    console.info("roster:", e?.message ?? e);
  }
  await flushOutbox();
  sendDisplayed();
  if (state.open) queryLast(state.open);
}

function addRosterItem(it) {
  const j = bare(it.attrs.jid);
  if (it.attrs.subscription === "remove") {
    state.roster.delete(j);
    return;
  }
  state.roster.set(j, { jid: j, name: it.attrs.name || "", subscription: it.attrs.subscription || "none", ask: it.attrs.ask || "" });
}

function onRosterPush(iq) {
  const from = iq.attrs.from;
  if (from && bare(from) !== state.account.jid) return;
  for (const it of iq.getChild("query").getChildren("item")) addRosterItem(it);
  saveRoster();
  changed();
}

const saveRoster = () => store.kvSet("roster", [...state.roster.values()]);

// ---- sending -----------------------------------------------------------------

export async function sendText(chat, text, extra = {}) {
  text = text.trim();
  if (!text) return;
  const id = crypto.randomUUID();
  const m = { ...extra, key: store.msgKey(chat, "out", id), chat, dir: "out", id, body: text, ts: Date.now(), tick: "pending" };
  await store.enqueue(m);
  typingSent.delete(chat);
  await touchChat(chat, m, false);
  if (state.open === chat && !state.hasNewer) {
    state.messages = [...state.messages, m];
    changed();
  }
  flushOutbox();
}

// flush sends what waits in the outgoing queue (when online).
export const flush = () => flushOutbox();

let flushing = null;
export async function flushOutbox() {
  if (flushing) return flushing.then(() => flushOutbox());
  flushing = (async () => {
    const c = xmpp;
    if (!c || state.status !== "online") return;
    for (const row of await store.outbox()) {
      if (c !== xmpp || state.status !== "online") return;
      if (inflight.has(row.key)) continue;
      if (row.action) {
        // An edit, a retraction or reactions (actions.js): sent once, acked like a message.
        let st = hooks.stanza.map((f) => f(row)).find(Boolean);
        if (!st) {
          await store.dequeue(row.key);
          continue;
        }
        inflight.add(row.key);
        if (!(st = await seal(row, st))) {
          inflight.delete(row.key);
          continue;
        }
        await c.send(st).catch(() => inflight.delete(row.key));
        continue;
      }
      const m = await store.getMessage(row.key);
      if (!m || m.retracted) {
        // Deleted for everyone before it left: it never goes (the retraction does, harmlessly).
        await store.dequeue(row.key);
        continue;
      }
      let el;
      for (const f of hooks.compose) if ((el = f(m)) !== undefined) break;
      if (el === null) continue;
      inflight.add(row.key);
      const kids = [];
      let body = m.body;
      for (const f of hooks.outgoing) body = f(m, kids, body) ?? body;
      el = await seal(m, el ??
        xml(
          "message",
          { type: "chat", to: m.chat, id: m.id },
          xml("body", {}, body),
          ...kids,
          xml("origin-id", { xmlns: NS.sid, id: m.id }),
          xml("request", { xmlns: NS.receipts }),
          xml("markable", { xmlns: NS.markers }),
          xml("active", { xmlns: NS.states }),
        ));
      if (!el) {
        inflight.delete(row.key);
        continue;
      }
      await c.send(el).catch(() => inflight.delete(row.key));
    }
  })();
  try {
    await flushing;
  } finally {
    flushing = null;
  }
}

async function onAck(st) {
  if (!st.is("message")) return;
  const id = st.getChild("origin-id", NS.sid)?.attrs.id;
  if (!id) return;
  const key = store.msgKey(bare(st.attrs.to), "out", id);
  inflight.delete(key);
  await store.dequeue(key);
  await setTick(key, "sent");
}

// showUpdated puts the new copy of a stored message in the open chat's
// window, if it is there.
export function showUpdated(m) {
  const i = state.messages.findIndex((x) => x.key === m.key);
  if (i >= 0) {
    state.messages = state.messages.slice();
    state.messages[i] = m;
  }
}

async function setTick(key, tick) {
  const m = await store.getMessage(key);
  if (!m || m.tick === "failed" || rank(m.tick) >= rank(tick)) return;
  m.tick = tick;
  await store.putMessage(m);
  if (tick !== "sent") await store.dequeue(key); // a receipt also proves the server has it
  showUpdated(m);
  const chat = state.chats.get(m.chat);
  if (chat && chat.lastKey === key) {
    chat.lastTick = tick;
    await store.putChat(chat);
  }
  changed();
}

// ---- receiving ----------------------------------------------------------------

// seal passes a stanza through the seal hooks (encryption); null keeps
// the message queued, a throw marks it failed.
async function seal(m, st) {
  for (const f of hooks.seal) {
    try {
      if (!(st = await f(m, st))) return null;
    } catch (e) {
      console.warn("seal:", e);
      if (!m.action) await failMessage(m.key, String(e?.message ?? e));
      else await store.dequeue(m.key);
      return null;
    }
  }
  return st;
}

async function failMessage(key, why) {
  await store.dequeue(key);
  const m = await store.getMessage(key);
  if (!m) return;
  m.tick = "failed";
  m.failure = why;
  await store.putMessage(m);
  showUpdated(m);
  changed();
}

async function onStanza(c, st) {
  for (const f of hooks.unseal) if (await f(c, st)) return;
  if (hooks.received.some((f) => f(c, st))) return;
  if (st.is("message")) return onMessage(c, st);
  if (st.is("presence")) return onPresence(c, st);
}

// receive handles a 1:1 <message/> as if it came from the network (a
// carbon copy's inner message: carbons.js).
export const receive = (c, st) => onMessage(c, st);

// storeSent stores a message this account sent from another of its
// devices (a "sent" carbon copy): shown as ours, ✓ (the server has it).
export async function storeSent(st) {
  const chat = bare(st.attrs.to || "");
  const body = st.getChildText("body");
  if (!chat || chat === state.account.jid || body === null || st.attrs.type === "groupchat") return;
  const id = st.getChild("origin-id", NS.sid)?.attrs.id || st.attrs.id;
  if (!id) return;
  const key = store.msgKey(chat, "out", id);
  if (await store.getMessage(key)) return;
  await keep(st, { key, chat, dir: "out", id, body, ts: sentAt(st), tick: "sent" }, false);
}

// sentAt: a message's time, its delay stamp when it has one (never later than now).
function sentAt(st) {
  const stamp = st.getChild("delay", NS.delay)?.attrs.stamp;
  return stamp ? Math.min(Date.parse(stamp) || Date.now(), Date.now()) : Date.now();
}

// keep stores a new message from the network, with its lock and what
// the decorate hooks add, and shows it when its chat is open.
async function keep(st, m, incoming) {
  if (st.e2e) m.e2e = st.e2e;
  for (const f of hooks.decorate) f(st, m);
  await store.putMessage(m);
  await touchChat(m.chat, m, incoming);
  if (state.open === m.chat && !state.hasNewer) {
    state.messages = [...state.messages, m].sort((a, b) => a.ts - b.ts);
    changed();
  }
}

async function onMessage(c, st) {
  const from = st.attrs.from;
  // Groups and headlines are not in the app yet; errors are not messages.
  if (!from || ["error", "groupchat", "headline"].includes(st.attrs.type)) return;
  const chat = bare(from);
  if (chat === state.account.jid) return;
  const received = st.getChild("received", NS.receipts);
  if (received?.attrs.id) await setTick(store.msgKey(chat, "out", received.attrs.id), "delivered");
  const displayed = st.getChild("displayed", NS.markers);
  if (displayed?.attrs.id) await markRead(chat, displayed.attrs.id);

  const cs = st.getChildByAttr("xmlns", NS.states);
  const body = st.getChildText("body");
  if (cs || body !== null) {
    const typing = cs?.name === "composing";
    if (state.typing.get(chat) !== typing) {
      state.typing.set(chat, typing);
      changed();
    }
  }
  for (const f of hooks.incoming) if (await f(c, st, chat, from)) return;
  if (body === null) return;

  const id = st.getChild("origin-id", NS.sid)?.attrs.id || st.attrs.id || crypto.randomUUID();
  if (st.getChild("request", NS.receipts) && st.attrs.id) {
    c.send(xml("message", { to: from, id: crypto.randomUUID() }, xml("received", { xmlns: NS.receipts, id: st.attrs.id }))).catch(() => {});
  }
  const key = store.msgKey(chat, "in", id);
  if (await store.getMessage(key)) return; // a repeat (resent after a reconnect): shown once
  const m = {
    key, chat, dir: "in", id, body, ts: sentAt(st),
    markable: Boolean(st.getChild("markable", NS.markers)),
    markId: st.attrs.id || id,
    displayedSent: false,
  };
  await keep(st, m, true);
  runHooks("stored", m);
  sendDisplayed();
}

async function markRead(chat, id) {
  // XEP-0333: displayed covers that message and every earlier one.
  const target = await store.getMessage(store.msgKey(chat, "out", id));
  if (!target) return;
  for (const key of (await history.unreadOut(chat, target.ts)).reverse()) await setTick(key, "read");
  if (target.tick !== "read") await setTick(target.key, "read");
}

export async function touchChat(jid, m, incoming) {
  let chat = state.chats.get(jid) ?? (await store.getChat(jid)) ?? { jid, unread: 0 };
  if (!chat.lastTs || m.ts >= chat.lastTs) {
    chat.lastTs = m.ts;
    const text = m.preview ?? m.body; // a file's preview: "📷 Photo" (media.js)
    chat.lastText = m.from ? `${m.from}: ${text}` : text; // a group's "Name: text"
    chat.lastDir = m.dir;
    chat.lastKey = m.key;
    chat.lastTick = m.tick;
  }
  if (incoming && !chatVisible(jid)) chat.unread = (chat.unread || 0) + 1;
  if (incoming && !chatVisible(jid) && !chat.firstUnreadTs) chat.firstUnreadTs = m.ts;
  chat = { ...chat };
  state.chats.set(jid, chat);
  await store.putChat(chat);
  changed();
}

// ---- markers: only for a chat a person is looking at ------------------------

export function chatVisible(jid) {
  return state.open === jid && document.visibilityState === "visible" && document.hasFocus();
}

let displaying = false;
export async function sendDisplayed() {
  const jid = state.open;
  if (!jid || !chatVisible(jid) || displaying) return;
  displaying = true;
  try {
    const chat = state.chats.get(jid);
    if (chat?.unread) {
      const c2 = { ...chat, unread: 0, firstUnreadTs: 0 };
      state.chats.set(jid, c2);
      await store.putChat(c2);
      changed();
    }
    const c = xmpp;
    if (!c || state.status !== "online") return;
    const unseen = state.messages.filter((m) => m.dir === "in" && !m.displayedSent);
    const last = [...unseen].reverse().find((m) => m.markable);
    if (last && !chat?.group) {
      await c.send(xml("message", { to: jid, type: "chat", id: crypto.randomUUID() }, xml("displayed", { xmlns: NS.markers, id: last.markId })));
    }
    for (const m of unseen) {
      m.displayedSent = true;
      await store.putMessage(m);
    }
  } catch (e) {
    console.info("displayed:", e?.message ?? e);
  } finally {
    displaying = false;
  }
}
document.addEventListener("visibilitychange", sendDisplayed);
addEventListener("focus", sendDisplayed);

// ---- chats ------------------------------------------------------------------------

export const PAGE = 80; // messages read from the store at a time

export async function openChat(jid) {
  state.open = jid;
  // The last page only (a long chat is read page by page as it scrolls: ui/messages.js).
  state.messages = jid ? await store.chatMessages(jid, PAGE) : [];
  state.hasNewer = false;
  state.hasOlder = state.messages.length >= PAGE;
  const ch = jid && state.chats.get(jid);
  state.unreadMark = ch?.unread ? { count: ch.unread, ts: ch.firstUnreadTs || 0 } : null;
  changed();
  if (!jid) return;
  sendDisplayed();
  if (!state.presence.get(jid)?.online && !state.chats.get(jid)?.group) queryLast(jid);
}

// newChat opens a chat by address and asks for the contact's presence, so
// "online" and "last seen" work.
export async function newChat(address) {
  address = address.trim().toLowerCase();
  if (!address) return "Enter an address.";
  if (!address.includes("@")) address += "@" + state.account.domain;
  try {
    const j = parseJID(address);
    if (!j.local) throw new Error("no user name");
    address = j.bare().toString();
  } catch {
    return "That is not a valid address.";
  }
  if (address === state.account.jid) return "That is your own address.";
  if (!state.chats.has(address)) {
    const chat = { jid: address, unread: 0, lastTs: Date.now(), lastText: "" };
    state.chats.set(address, chat);
    await store.putChat(chat);
  }
  askPresence(address);
  await openChat(address);
  return "";
}

function askPresence(j) {
  const r = state.roster.get(j);
  if (r && (r.subscription === "to" || r.subscription === "both" || r.ask)) return;
  xmpp?.send(xml("presence", { to: j, type: "subscribe" })).catch(() => {});
}

export async function answerRequest(j, accept) {
  state.requests.delete(j);
  changed();
  if (!xmpp) return;
  await xmpp.send(xml("presence", { to: j, type: accept ? "subscribed" : "unsubscribed" }));
  if (accept) askPresence(j);
}

// ---- presence, last seen, typing ----------------------------------------------------

async function onPresence(c, st) {
  const from = bare(st.attrs.from || "");
  if (!from || from === state.account.jid) return;
  const type = st.attrs.type;
  if (type === "subscribe") {
    const r = state.roster.get(from);
    // Already approved, or someone we asked to see: approve at once (a
    // chat started from either side ends with both seeing each other).
    if (r && (r.subscription !== "none" || r.ask)) {
      c.send(xml("presence", { to: from, type: "subscribed" })).catch(() => {});
    } else {
      state.requests.add(from);
    }
    changed();
    return;
  }
  if (type === "unavailable") {
    const stamp = st.getChild("delay", NS.delay)?.attrs.stamp;
    state.presence.set(from, { online: false, lastSeen: stamp ? Date.parse(stamp) : Date.now() });
    state.typing.set(from, false);
    changed();
    return;
  }
  if (!type) {
    state.presence.set(from, { online: true });
    changed();
  }
}

async function queryLast(j) {
  const c = xmpp;
  if (!c || state.status !== "online") return;
  try {
    const res = await c.iqCaller.request(xml("iq", { type: "get", to: j }, xml("query", { xmlns: NS.last })), 8000);
    const secs = Number(res.getChild("query", NS.last)?.attrs.seconds);
    if (Number.isFinite(secs) && !state.presence.get(j)?.online) {
      // 0 is also "connected now", but then presence (we are subscribed)
      // says online, and presence wins.
      state.presence.set(j, { online: false, lastSeen: Date.now() - secs * 1000 });
      changed();
    }
  } catch {
    // Hidden (privacy setting) or not subscribed: show nothing.
  }
}

const typingSent = new Map(); // chat -> "composing" | "paused"
let pauseTimer = null;
export function typed(chat) {
  const c = xmpp;
  if (!c || state.status !== "online") return;
  clearTimeout(pauseTimer);
  if (typingSent.get(chat) !== "composing") {
    typingSent.set(chat, "composing");
    c.send(xml("message", { to: chat, type: "chat" }, xml("composing", { xmlns: NS.states }))).catch(() => {});
  }
  pauseTimer = setTimeout(() => {
    if (typingSent.get(chat) === "composing" && xmpp) {
      typingSent.set(chat, "paused");
      xmpp.send(xml("message", { to: chat, type: "chat" }, xml("paused", { xmlns: NS.states }))).catch(() => {});
    }
  }, 4000);
}
