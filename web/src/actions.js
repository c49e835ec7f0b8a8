// Message actions: reply with a quote (XEP-0461 + XEP-0428 fallback), edit
// the last message (XEP-0308), delete for everyone (XEP-0424 with a
// fallback body) and reactions (XEP-0444). What we send goes through the
// outgoing queue (so it survives a reload and waits for the connection);
// what others send is applied to the stored message, so a reload shows it.
//
// Only a message's sender may change it: an incoming edit or retraction is
// looked up under the sender's own chat and direction (chat|in|id), so one
// from anybody else finds nothing and is dropped.
import { xml } from "@xmpp/client";
import * as core from "./core.js";
import * as store from "./db.js";

const { state } = core;

export const NS = {
  reply: "urn:xmpp:reply:0",
  fallback: "urn:xmpp:fallback:0",
  correct: "urn:xmpp:message-correct:0",
  retract: "urn:xmpp:message-retract:1",
  reactions: "urn:xmpp:reactions:0",
  hints: "urn:xmpp:hints",
  sid: "urn:xmpp:sid:0",
};

export const QUICK = ["👍", "❤️", "😂", "😮", "😢", "🙏"];
const RETRACT_FALLBACK = "This person attempted to retract a previous message, but it's unsupported by your client.";

// The composer's mode: a reply to a message, or the edit of one.
export const compose = { reply: null, edit: null, setText: null, focus: null };

export function startReply(m) {
  compose.edit = null;
  compose.reply = m;
  core.changed();
  compose.focus?.();
}

export function startEdit(m) {
  compose.reply = null;
  compose.edit = m;
  compose.setText?.(m.body);
  core.changed();
  compose.focus?.();
}

export function cancelCompose() {
  if (compose.edit) compose.setText?.("");
  compose.reply = null;
  compose.edit = null;
  core.changed();
}

// lastOwn is the open chat's last message of ours that can be edited.
export function lastOwn() {
  for (let i = state.messages.length - 1; i >= 0; i--) {
    const m = state.messages[i];
    if (m.dir === "out" && !m.retracted) return state.hasNewer ? null : m;
  }
  return null;
}

// send is the composer's action: an edit, a reply or a plain message.
export async function send(chat, text) {
  text = text.trim();
  if (!text) return;
  const edit = compose.edit;
  const reply = compose.reply;
  compose.edit = null;
  compose.reply = null;
  if (edit && edit.chat === chat) return correct(edit, text);
  const extra = {};
  if (reply && reply.chat === chat) {
    extra.reply = { id: reply.id, dir: reply.dir, text: snippet(reply.media?.aesgcm ? reply.preview : reply.body) }; // never an aesgcm link (its key)
  }
  if (state.hasNewer && state.open === chat) {
    // Scrolled back in a long chat: show the latest, where this one goes.
    const last = await store.chatMessages(chat, core.PAGE);
    if (state.open === chat) {
      state.messages = last;
      state.hasNewer = false;
      state.hasOlder = last.length >= core.PAGE;
    }
  }
  return core.sendText(chat, text, extra);
}

const snippet = (s) => (s.length > 120 ? s.slice(0, 119) + "…" : s);

// ---- the stored message and the window on screen ----------------------------

async function update(key, fn) {
  const m = await store.getMessage(key);
  if (!m) return null;
  fn(m);
  await store.putMessage(m);
  core.showUpdated(m);
  const chat = state.chats.get(m.chat);
  if (chat && chat.lastKey === key) {
    const c2 = { ...chat, lastText: m.retracted ? "This message was deleted" : m.body };
    state.chats.set(m.chat, c2);
    await store.putChat(c2);
  }
  core.changed();
  return m;
}

// queue puts an action in the outgoing queue (with the message queue's
// order and its "until the server acks it" rule) and sends it.
async function queue(chat, action) {
  const id = crypto.randomUUID();
  const d = await store.db();
  await d.add("outbox", { key: store.msgKey(chat, "out", id), chat, id, action });
  core.flush();
}

// ---- ours -------------------------------------------------------------------------

async function correct(m, text) {
  if (m.body === text) return;
  await update(m.key, (x) => {
    x.body = text;
    x.edited = true;
  });
  await queue(m.chat, { kind: "edit", target: m.id, body: text });
}

export async function retract(m) {
  if (m.dir !== "out") return;
  await update(m.key, (x) => {
    x.retracted = true;
    x.body = "";
    x.reply = null;
  });
  await queue(m.chat, { kind: "retract", target: m.id });
}

// react toggles our reaction on a message; XEP-0444 sends the whole set.
export async function react(m, emoji) {
  const me = state.account.jid;
  let mine = [];
  await update(m.key, (x) => {
    const r = { ...(x.reactions || {}) };
    const cur = r[me] || [];
    mine = cur.includes(emoji) ? cur.filter((e) => e !== emoji) : [...cur, emoji];
    if (mine.length) r[me] = mine;
    else delete r[me];
    x.reactions = r;
  });
  await queue(m.chat, { kind: "react", target: m.id, emojis: mine });
}

// The stanza for an action row of the outbox (core's flushOutbox).
core.hooks.stanza.push((row) => {
  const a = row.action;
  const kids = [];
  let body = null;
  if (a.kind === "edit") {
    body = a.body;
    kids.push(xml("replace", { xmlns: NS.correct, id: a.target }));
  } else if (a.kind === "retract") {
    body = RETRACT_FALLBACK;
    kids.push(xml("retract", { xmlns: NS.retract, id: a.target }), xml("fallback", { xmlns: NS.fallback, for: NS.retract }), xml("store", { xmlns: NS.hints }));
  } else if (a.kind === "react") {
    kids.push(xml("reactions", { xmlns: NS.reactions, id: a.target }, ...a.emojis.map((e) => xml("reaction", {}, e))), xml("store", { xmlns: NS.hints }));
  } else {
    return null;
  }
  return xml(
    "message",
    { type: "chat", to: row.chat, id: row.id },
    ...(body !== null ? [xml("body", {}, body)] : []),
    ...kids,
    xml("origin-id", { xmlns: NS.sid, id: row.id }),
  );
});

// A reply carries <reply/> and, for clients without XEP-0461, the quote
// at the start of the body, marked as a fallback (XEP-0428) to strip.
core.hooks.outgoing.push((m, kids, body) => {
  if (!m.reply) return body;
  const quote = m.reply.text.split("\n").map((l) => "> " + l).join("\n") + "\n";
  const to = m.reply.dir === "out" ? state.account.jid : m.chat;
  kids.push(
    xml("reply", { xmlns: NS.reply, to, id: m.reply.id }),
    xml("fallback", { xmlns: NS.fallback, for: NS.reply }, xml("body", { start: "0", end: String([...quote].length) })),
  );
  return quote + body;
});

// ---- theirs -----------------------------------------------------------------------

// The message of chat with that id, ours or theirs.
async function find(chat, id) {
  return (await store.getMessage(store.msgKey(chat, "in", id))) ?? (await store.getMessage(store.msgKey(chat, "out", id)));
}

core.hooks.incoming.push(async (c, st, chat) => {
  const replace = st.getChild("replace", NS.correct);
  if (replace?.attrs.id) {
    const body = st.getChildText("body");
    // Their own message only: looked up under their chat, incoming.
    if (body !== null) {
      await update(store.msgKey(chat, "in", replace.attrs.id), (x) => {
        if (x.retracted) return;
        x.body = body;
        x.edited = true;
      });
    }
    return true;
  }
  const retract = st.getChild("retract", NS.retract);
  if (retract?.attrs.id) {
    await update(store.msgKey(chat, "in", retract.attrs.id), (x) => {
      x.retracted = true;
      x.body = "";
      x.reply = null;
      x.reactions = {};
    });
    return true;
  }
  const reactions = st.getChild("reactions", NS.reactions);
  if (reactions?.attrs.id) {
    const target = await find(chat, reactions.attrs.id);
    if (target && !target.retracted) {
      const emojis = [...new Set(reactions.getChildren("reaction").map((r) => r.text().trim()).filter(Boolean))].slice(0, 20);
      await update(target.key, (x) => {
        const r = { ...(x.reactions || {}) };
        if (emojis.length) r[chat] = emojis;
        else delete r[chat];
        x.reactions = r;
      });
    }
    return true;
  }
  return false;
});

// An incoming reply: keep what it answers, and strip the fallback quote.
core.hooks.decorate.push((st, m) => {
  const reply = st.getChild("reply", NS.reply);
  if (!reply?.attrs.id) return;
  const me = state.account.jid;
  const dir = String(reply.attrs.to || "").split("/")[0].toLowerCase() === me ? "out" : "in";
  let quoted = "";
  for (const fb of st.getChildren("fallback", NS.fallback)) {
    if (fb.attrs.for !== NS.reply) continue;
    const b = fb.getChild("body");
    const start = Number(b?.attrs.start ?? 0);
    const end = Number(b?.attrs.end ?? 0);
    const cps = [...m.body];
    if (b && end > start && end <= cps.length) {
      quoted = cps.slice(start, end).join("").replace(/^> ?/gm, "").trim();
      m.body = (cps.slice(0, start).join("") + cps.slice(end).join("")).trim();
    }
  }
  m.reply = { id: reply.attrs.id, dir, text: snippet(quoted) };
});

// The quoted message as it is now (edited, deleted), else the quote sent.
export async function quoted(m) {
  if (!m.reply) return null;
  const q = await store.getMessage(store.msgKey(m.chat, m.reply.dir, m.reply.id));
  return q;
}

// Reactions on a message: [{emoji, count, mine}] in first-seen order.
export function tally(m) {
  const me = state.account?.jid;
  const out = new Map();
  for (const [who, list] of Object.entries(m.reactions || {})) {
    for (const e of list) {
      const t = out.get(e) ?? { emoji: e, count: 0, mine: false, who: [] };
      t.count++;
      t.who.push(who);
      if (who === me) t.mine = true;
      out.set(e, t);
    }
  }
  return [...out.values()];
}
