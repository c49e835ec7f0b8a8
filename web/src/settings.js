// Settings and profile: the server's last-seen setting, the block list
// (XEP-0191), the profile name (XEP-0172 in PEP) and avatar (XEP-0084 in
// PEP), contacts' names and avatars from PEP notifications (XEP-0115 caps
// with +notify), browser notifications and Web Push through the server's
// built-in gateway (XEP-0050 register-push-webpush + XEP-0357 enable).
import { xml } from "@xmpp/client";
import * as core from "./core.js";
import * as store from "./db.js";

const NS = {
  lastseen: "urn:bluetick:lastseen:0",
  blocking: "urn:xmpp:blocking",
  pubsub: "http://jabber.org/protocol/pubsub",
  event: "http://jabber.org/protocol/pubsub#event",
  nick: "http://jabber.org/protocol/nick",
  avData: "urn:xmpp:avatar:data",
  avMeta: "urn:xmpp:avatar:metadata",
  disco: "http://jabber.org/protocol/disco#info",
  caps: "http://jabber.org/protocol/caps",
  commands: "http://jabber.org/protocol/commands",
  data: "jabber:x:data",
  push: "urn:xmpp:push:0",
};

const { state, changed } = core;
const bare = (j) => String(j).split("/")[0].toLowerCase();

// What the settings page shows; kept beside core.state.
export const prefs = {
  lastSeen: "", // everyone | contacts | nobody ("" = not known yet)
  blocked: new Set(), // bare JIDs
  nicks: new Map(), // bare JID -> nickname (ours too)
  avatars: new Map(), // bare JID -> {id, url}
  previews: false, // show the message text in notifications
  permission: typeof Notification === "undefined" ? "unsupported" : Notification.permission,
  push: { state: "off", message: "" }, // off | busy | on | unavailable | error
  loaded: false,
};

export const nickOf = (j) => prefs.nicks.get(j) || "";
export const avatarURL = (j) => prefs.avatars.get(j)?.url || "";
export const isBlocked = (j) => prefs.blocked.has(j);

const iq = (type, child, to) => {
  const c = core.client_();
  if (!c || state.status !== "online") return Promise.reject(new Error("You are offline."));
  return c.iqCaller.request(xml("iq", to ? { type, to } : { type }, child), 15000);
};
const errText = (e) => e?.text || e?.condition || e?.message || String(e);

// ---- the local copy, read at start ---------------------------------------------

async function load() {
  for (const a of await store.allAvatars()) {
    prefs.avatars.set(a.jid, { id: a.id, url: URL.createObjectURL(a.blob) });
  }
  for (const [j, n] of Object.entries((await store.kvGet("nicks")) ?? {})) prefs.nicks.set(j, n);
  for (const j of (await store.kvGet("blocked")) ?? []) prefs.blocked.add(j);
  prefs.previews = Boolean(await store.kvGet("notify-previews"));
  prefs.push = (await store.kvGet("push"))?.node ? { state: "on", message: "" } : prefs.push;
  prefs.owner = (await store.kvGet("account"))?.jid ?? "";
  prefs.loaded = true;
  changed();
  // The permission can change in the browser's own settings.
  const st = await navigator.permissions?.query({ name: "notifications" }).catch(() => null);
  if (st) {
    st.onchange = () => {
      prefs.permission = typeof Notification === "undefined" ? "unsupported" : Notification.permission;
      changed();
    };
  }
}
load().catch((e) => console.info("settings: local store:", e?.message ?? e));

const saveNicks = () => store.kvSet("nicks", Object.fromEntries(prefs.nicks));
const saveBlocked = () => store.kvSet("blocked", [...prefs.blocked]);

// ---- entity capabilities: ask for nick and avatar notifications ----------------

const IDENTITY = { category: "client", type: "web", name: "Bluetick Web" };
const CAPS_NODE = "https://bluetick.example/web";
const FEATURES = [
  NS.disco, NS.caps, "jabber:iq:last", "urn:xmpp:receipts", "urn:xmpp:chat-markers:0",
  "http://jabber.org/protocol/chatstates", NS.avMeta + "+notify", NS.nick + "+notify",
  "eu.siacs.conversations.axolotl.devicelist+notify", // OMEMO device lists (omemo.js)
].sort();
let ver = null;
async function capsVer() {
  if (ver) return ver;
  // XEP-0115 §5.1: identities, then features, each followed by "<".
  const s = `${IDENTITY.category}/${IDENTITY.type}//${IDENTITY.name}<` + FEATURES.map((f) => f + "<").join("");
  const h = new Uint8Array(await crypto.subtle.digest("SHA-1", new TextEncoder().encode(s)));
  ver = btoa(String.fromCharCode(...h));
  return ver;
}

core.hooks.presence.push(async () => xml("c", { xmlns: NS.caps, hash: "sha-1", node: CAPS_NODE, ver: await capsVer() }));

core.hooks.client.push((c) => {
  c.iqCallee.get(NS.disco, "query", async (ctx) => {
    const node = ctx.stanza.getChild("query").attrs.node;
    return xml("query", node ? { xmlns: NS.disco, node } : { xmlns: NS.disco },
      xml("identity", IDENTITY), ...FEATURES.map((v) => xml("feature", { var: v })));
  });
  // The server tells every resource of a change to the block list.
  c.iqCallee.set(NS.blocking, "block", (ctx) => {
    for (const it of ctx.element.getChildren("item")) prefs.blocked.add(bare(it.attrs.jid));
    saveBlocked();
    changed();
    return true;
  });
  c.iqCallee.set(NS.blocking, "unblock", (ctx) => {
    const items = ctx.element.getChildren("item");
    if (items.length === 0) prefs.blocked.clear();
    for (const it of items) prefs.blocked.delete(bare(it.attrs.jid));
    saveBlocked();
    changed();
    return true;
  });
  c.on("stanza", (st) => {
    if (c !== core.client_() || !st.is("message")) return;
    const ev = st.getChild("event", NS.event);
    if (ev) onEvent(bare(st.attrs.from || state.account.jid), ev).catch((e) => console.info("pep event:", e?.message ?? e));
  });
});

core.hooks.online.push(() => {
  // Signed in as someone else on this page (the store was wiped): forget
  // the previous account's names and photos.
  if (prefs.loaded && prefs.owner && prefs.owner !== state.account.jid) {
    for (const a of prefs.avatars.values()) URL.revokeObjectURL(a.url);
    prefs.avatars.clear();
    prefs.nicks.clear();
    prefs.blocked.clear();
  }
  prefs.owner = state.account.jid;
  refreshBlocked();
  refreshLastSeen();
});

async function onEvent(from, ev) {
  const items = ev.getChild("items");
  if (!items) return;
  const item = items.getChildren("item").at(-1);
  if (items.attrs.node === NS.nick) {
    const n = item?.getChildText("nick", NS.nick) ?? "";
    if (n) prefs.nicks.set(from, n);
    else prefs.nicks.delete(from);
    await saveNicks();
    changed();
  } else if (items.attrs.node === NS.avMeta) {
    const meta = item?.getChild("metadata", NS.avMeta);
    const info = meta?.getChildren("info").find((i) => !i.attrs.url);
    if (!info) {
      dropAvatar(from);
      return;
    }
    if (prefs.avatars.get(from)?.id === info.attrs.id) return; // cached
    await fetchAvatar(from, info.attrs.id, info.attrs.type || "image/png");
  }
}

async function fetchAvatar(jid, id, type) {
  const res = await iq("get", xml("pubsub", { xmlns: NS.pubsub }, xml("items", { node: NS.avData }, xml("item", { id }))), jid === state.account.jid ? undefined : jid);
  const b64 = res.getChild("pubsub", NS.pubsub)?.getChild("items")?.getChild("item")?.getChildText("data", NS.avData);
  if (!b64) return;
  const bytes = Uint8Array.from(atob(b64.replace(/\s+/g, "")), (ch) => ch.charCodeAt(0));
  if ((await sha1hex(bytes)) !== id) {
    console.info(`avatar of ${jid}: the data does not match its id`);
    return;
  }
  const blob = new Blob([bytes], { type });
  await store.putAvatar({ jid, id, type, blob });
  setAvatar(jid, id, blob);
}

function setAvatar(jid, id, blob) {
  const old = prefs.avatars.get(jid);
  if (old) URL.revokeObjectURL(old.url);
  prefs.avatars.set(jid, { id, url: URL.createObjectURL(blob) });
  changed();
}

function dropAvatar(jid) {
  const old = prefs.avatars.get(jid);
  if (!old) return;
  URL.revokeObjectURL(old.url);
  prefs.avatars.delete(jid);
  store.delAvatar(jid);
  changed();
}

async function sha1hex(bytes) {
  const h = new Uint8Array(await crypto.subtle.digest("SHA-1", bytes));
  return [...h].map((b) => b.toString(16).padStart(2, "0")).join("");
}

// ---- last seen -------------------------------------------------------------------

async function refreshLastSeen() {
  try {
    const res = await iq("get", xml("visibility", { xmlns: NS.lastseen }));
    prefs.lastSeen = res.getChild("visibility", NS.lastseen)?.attrs.value || "contacts";
    changed();
  } catch (e) {
    console.info("last-seen setting:", errText(e));
  }
}

// setLastSeen returns "" or an error to show.
export async function setLastSeen(value) {
  try {
    await iq("set", xml("visibility", { xmlns: NS.lastseen, value }));
    prefs.lastSeen = value;
    changed();
    return "";
  } catch (e) {
    return `Not changed: ${errText(e)}`;
  }
}

// ---- block list --------------------------------------------------------------------

async function refreshBlocked() {
  try {
    const res = await iq("get", xml("blocklist", { xmlns: NS.blocking }));
    prefs.blocked = new Set(res.getChild("blocklist", NS.blocking).getChildren("item").map((i) => bare(i.attrs.jid)));
    await saveBlocked();
    changed();
  } catch (e) {
    console.info("block list:", errText(e));
  }
}

export async function block(jid, yes) {
  try {
    await iq("set", xml(yes ? "block" : "unblock", { xmlns: NS.blocking }, xml("item", { jid })));
    if (yes) prefs.blocked.add(jid);
    else prefs.blocked.delete(jid);
    await saveBlocked();
    changed();
    return "";
  } catch (e) {
    return `Not changed: ${errText(e)}`;
  }
}

// ---- profile: name and photo -------------------------------------------------------

export async function setNick(name) {
  name = name.trim();
  try {
    await iq("set", xml("pubsub", { xmlns: NS.pubsub },
      xml("publish", { node: NS.nick }, xml("item", { id: "current" }, xml("nick", { xmlns: NS.nick }, name)))));
    if (name) prefs.nicks.set(state.account.jid, name);
    else prefs.nicks.delete(state.account.jid);
    await saveNicks();
    changed();
    return "";
  } catch (e) {
    return `Not saved: ${errText(e)}`;
  }
}

export const AVATAR_SIZE = 192;

// setAvatar draws the picked image into a 192×192 square (cropped to the
// middle), encodes it as PNG and publishes data then metadata (XEP-0084).
export async function publishAvatar(file) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    return "That file is not an image this browser can read.";
  }
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = AVATAR_SIZE;
  const g = canvas.getContext("2d");
  const side = Math.min(bitmap.width, bitmap.height);
  g.drawImage(bitmap, (bitmap.width - side) / 2, (bitmap.height - side) / 2, side, side, 0, 0, AVATAR_SIZE, AVATAR_SIZE);
  bitmap.close?.();
  const blob = await new Promise((ok) => canvas.toBlob(ok, "image/png"));
  const bytes = new Uint8Array(await blob.arrayBuffer());
  const id = await sha1hex(bytes);
  let b64 = "";
  for (let i = 0; i < bytes.length; i += 0x8000) b64 += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  b64 = btoa(b64);
  try {
    await iq("set", xml("pubsub", { xmlns: NS.pubsub },
      xml("publish", { node: NS.avData }, xml("item", { id }, xml("data", { xmlns: NS.avData }, b64)))));
    await iq("set", xml("pubsub", { xmlns: NS.pubsub },
      xml("publish", { node: NS.avMeta }, xml("item", { id }, xml("metadata", { xmlns: NS.avMeta },
        xml("info", { id, bytes: String(bytes.length), type: "image/png", width: String(AVATAR_SIZE), height: String(AVATAR_SIZE) }))))));
  } catch (e) {
    return `Not saved: ${errText(e)}`;
  }
  await store.putAvatar({ jid: state.account.jid, id, type: "image/png", blob });
  setAvatar(state.account.jid, id, blob);
  return "";
}

// ---- notifications --------------------------------------------------------------------

export async function setPreviews(on) {
  prefs.previews = on;
  await store.kvSet("notify-previews", on);
  changed();
}

// Browser notifications while the app is open but not looked at: the
// title names the sender; the text only when previews are allowed.
core.hooks.stored.push(async (m) => {
  if (prefs.permission !== "granted" || typeof Notification === "undefined" || Notification.permission !== "granted") return;
  if (document.visibilityState === "visible" && document.hasFocus()) return;
  if (prefs.blocked.has(m.chat)) return;
  const name = state.roster.get(m.chat)?.name || prefs.nicks.get(m.chat) || m.chat.split("@")[0];
  try {
    const reg = await navigator.serviceWorker.ready;
    await reg.showNotification(`New message from ${name}`, {
      body: prefs.previews ? (m.media?.aesgcm ? m.preview : m.body) : "", // an encrypted file: "📷 Photo", not its link
      tag: "chat:" + m.chat,
      data: { chat: m.chat },
      icon: "/icon-192.png",
    });
  } catch (e) {
    console.info("notification:", e?.message ?? e);
  }
});

// The service worker tells the page which chat a clicked notification is for.
if ("serviceWorker" in navigator) {
  navigator.serviceWorker.addEventListener("message", (e) => {
    if (e.data?.type === "open-chat" && typeof e.data.chat === "string" && state.phase === "app") core.openChat(e.data.chat);
  });
}

// enableNotifications runs from a click (browsers ask for the permission
// only from a user gesture): permission, then Web Push if the browser has
// a push service.
export async function enableNotifications() {
  if (typeof Notification === "undefined") {
    prefs.permission = "unsupported";
    changed();
    return;
  }
  prefs.permission = await Notification.requestPermission();
  changed();
  if (prefs.permission !== "granted") return;
  await enablePush();
}

function pushState(s, message = "") {
  prefs.push = { state: s, message };
  changed();
}

const b64url = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
function fromB64url(s) {
  s = s.replace(/-/g, "+").replace(/_/g, "/");
  return Uint8Array.from(atob(s + "=".repeat((4 - (s.length % 4)) % 4)), (ch) => ch.charCodeAt(0));
}

function formValues(x) {
  const out = {};
  for (const f of x?.getChildren("field") ?? []) out[f.attrs.var] = f.getChildText("value") ?? "";
  return out;
}

function command(gateway, node, fields) {
  const form = fields && xml("x", { xmlns: NS.data, type: "submit" },
    ...Object.entries(fields).map(([k, v]) => xml("field", { var: k }, xml("value", {}, v))));
  return iq("set", xml("command", { xmlns: NS.commands, node, action: "execute" }, form || undefined), gateway);
}

export async function enablePush() {
  if (!("serviceWorker" in navigator) || !("PushManager" in window)) {
    pushState("unavailable", "This browser has no Web Push: notifications show only while Bluetick is open in a tab.");
    return;
  }
  pushState("busy", "Turning on push…");
  const gateway = "push." + state.account.domain;
  let key;
  try {
    const res = await command(gateway, "register-push-webpush");
    key = formValues(res.getChild("command", NS.commands)?.getChild("x", NS.data))["application-server-key"];
    if (!key) throw new Error("the server's push gateway gave no key");
  } catch (e) {
    pushState("unavailable", `This server does not offer Web Push (${errText(e)}): notifications show only while Bluetick is open in a tab.`);
    return;
  }
  let sub;
  try {
    const reg = await navigator.serviceWorker.ready;
    sub = await reg.pushManager.getSubscription();
    if (sub && b64url(sub.options.applicationServerKey) !== key.replace(/=+$/, "")) {
      await sub.unsubscribe();
      sub = null;
    }
    const opts = { userVisibleOnly: true, applicationServerKey: fromB64url(key) };
    if (!sub && (await reg.pushManager.permissionState(opts)) === "denied") {
      // A private window (Chrome has no push there) or push blocked for
      // this site: subscribing would only fail.
      pushState("unavailable", "This browser does not allow Web Push here (a private window, or push blocked for this site), so it has no push service to subscribe to. Notifications show only while Bluetick is open in a tab.");
      return;
    }
    // Debian's chromium has no push service: its subscribe never answers.
    sub ??= await Promise.race([
      reg.pushManager.subscribe(opts),
      new Promise((_, fail) => setTimeout(() => fail(new Error("no answer from the push service in 10 s")), 10000)),
    ]);
  } catch (e) {
    // Debian's chromium, for one, has no push service to subscribe to.
    console.info("push subscribe:", e?.name, e?.message);
    pushState("unavailable", `This browser could not subscribe to its push service (${e?.message || e?.name || e}). Notifications show only while Bluetick is open in a tab.`);
    return;
  }
  try {
    const j = sub.toJSON();
    const res = await command(gateway, "register-push-webpush", {
      endpoint: j.endpoint, p256dh: j.keys.p256dh, auth: j.keys.auth, "device-id": await store.deviceId(),
    });
    const v = formValues(res.getChild("command", NS.commands)?.getChild("x", NS.data));
    if (!v.node || !v.secret) throw new Error("the gateway gave no node");
    await iq("set", xml("enable", { xmlns: NS.push, jid: v.jid || gateway, node: v.node },
      xml("x", { xmlns: NS.data, type: "submit" },
        xml("field", { var: "FORM_TYPE" }, xml("value", {}, "http://jabber.org/protocol/pubsub#publish-options")),
        xml("field", { var: "secret" }, xml("value", {}, v.secret)))));
    await store.kvSet("push", { node: v.node, jid: v.jid || gateway, endpoint: j.endpoint });
    pushState("on", "");
  } catch (e) {
    pushState("error", `Push could not be turned on: ${errText(e)}`);
  }
}

export async function disablePush() {
  const p = await store.kvGet("push");
  try {
    if (p?.node) {
      await iq("set", xml("disable", { xmlns: NS.push, jid: p.jid, node: p.node }));
      await command(p.jid, "unregister-push", { node: p.node }).catch(() => {});
    }
    const sub = await (await navigator.serviceWorker.ready).pushManager.getSubscription();
    await sub?.unsubscribe();
  } catch (e) {
    pushState("error", `Not turned off: ${errText(e)}`);
    return;
  }
  await store.kvDel("push");
  pushState("off", "");
}
