// @xmpp/client (xmpp.js) against bluetick: over WebSocket (RFC 7395) by
// default, or over TCP with STARTTLS or direct TLS.
//
// Usage: node ws_client.mjs 'JSON-CONFIG'
// Config: {ws, domain, users, args: {user, to, body, service}}
// Logs in with SCRAM-SHA-1 (the only SCRAM xmpp.js has), sends one chat
// message to args.to and waits for a reply from it. Prints JSON lines on
// stdout; all XML in and out goes to stderr. Exits on its own within
// cfg.timeout seconds (default 20).

// Node 20 has no global WebSocket: @xmpp/websocket uses globalThis.WebSocket.
import WebSocket from "ws";
globalThis.WebSocket ??= WebSocket;

const { client, xml } = await import("@xmpp/client");

const cfg = JSON.parse(process.argv[2]);
const args = cfg.args ?? {};
const emit = (event, fields = {}) =>
  process.stdout.write(JSON.stringify({ event, ...fields }) + "\n");
const log = (...a) => process.stderr.write(a.join(" ") + "\n");

const total = (cfg.timeout ?? 20) * 1000;
const killer = setTimeout(() => {
  emit("timeout", { after: total / 1000 });
  process.exit(3);
}, total);

const user = args.user ?? "alice";
let offered = [];
let chosen = null;

// args.service: ws://... (default), xmpp://host:port (STARTTLS) or
// xmpps://host:port (direct TLS). bluetick's certificate is self-signed.
const service = args.service ?? cfg.ws;
if (!service.startsWith("ws")) process.env.NODE_TLS_REJECT_UNAUTHORIZED = "0";

const xmpp = client({
  service,
  domain: cfg.domain,
  resource: "xmppjs",
  // A function receives the mechanisms the server offered and picks one:
  // SCRAM-SHA-1, never PLAIN.
  credentials: async (authenticate, mechanisms) => {
    offered = mechanisms;
    chosen = mechanisms.find((m) => m.startsWith("SCRAM-")) ?? null;
    if (!chosen) throw new Error("no SCRAM mechanism offered: " + mechanisms.join(","));
    await authenticate({ username: user, password: cfg.users[user] }, chosen);
  },
  timeout: 5000,
});
xmpp.reconnect.stop();

const t0 = Date.now();
const ts = () => ((Date.now() - t0) / 1000).toFixed(3);
xmpp.on("element", (el) => log(`[${ts()}] ${user} RECV`, el.toString()));
xmpp.on("send", (el) => log(`[${ts()}] ${user} SEND`, el.toString()));
xmpp.on("status", (st) => log(`[${ts()}] ${user} status`, st));
xmpp.on("error", (err) => {
  log(`[${user}] error`, err?.stack ?? String(err));
  emit("error", { error: String(err?.message ?? err), condition: err?.condition });
});

let resolveReply;
const reply = new Promise((r) => (resolveReply = r));
xmpp.on("stanza", (st) => {
  if (st.is("message") && st.getChildText("body") !== null) {
    resolveReply(st);
  }
});

async function main() {
  let address;
  try {
    address = await xmpp.start();
  } catch (err) {
    emit("error", { error: "login failed: " + String(err?.message ?? err), condition: err?.condition });
    process.exit(1);
  }
  // xmpp.js enables XEP-0198 right after "online" and resets its inbound
  // counter asynchronously on <enabled/>: a stanza that arrives in the same
  // read as <enabled/> is counted before the reset, so its first <a/> can
  // claim one stanza too many (bluetick then rightly ends the stream with
  // "handled count too high"). Sending nothing until SM is on avoids that
  // xmpp.js race; see README.md.
  const smDeadline = Date.now() + 3000;
  while (!xmpp.streamManagement.enabled && Date.now() < smDeadline) {
    await new Promise((r) => setTimeout(r, 20));
  }
  emit("login", {
    client: "xmpp.js",
    jid: address.toString(),
    mechanism: chosen,
    offered,
    transport: service.split(":")[0],
    tls: xmpp.socket?.socket?.getProtocol?.() ?? null,
    sm: Boolean(xmpp.streamManagement.enabled),
    sm_id: xmpp.streamManagement.id || null,
  });
  await xmpp.send(xml("presence"));
  if (args.to) {
    const id = "ws-" + Math.random().toString(36).slice(2, 10);
    await xmpp.send(
      xml("message", { type: "chat", to: args.to, id }, xml("body", {}, args.body ?? "hello from xmpp.js")),
    );
    emit("sent", { id, to: args.to });
    const st = await reply;
    const sid = st.getChild("stanza-id", "urn:xmpp:sid:0");
    emit("received", {
      from: st.attrs.from,
      to: st.attrs.to,
      body: st.getChildText("body"),
      stanza_id: sid?.attrs.id ?? null,
      stanza_id_by: sid?.attrs.by ?? null,
      xml: st.toString(),
    });
  }
  await xmpp.stop();
  emit("done");
  clearTimeout(killer);
  process.exit(0);
}

main().catch((err) => {
  emit("error", { error: String(err?.stack ?? err) });
  process.exit(1);
});
