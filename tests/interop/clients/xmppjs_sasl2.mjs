// @xmpp/client (xmpp.js) 0.14 against bluetick with SASL2 (XEP-0388),
// Bind2 (XEP-0386) and XEP-0198 enabled and resumed inline.
//
// Usage: node xmppjs_sasl2.mjs 'JSON-CONFIG'
// Config: {ws, domain, users, args: {service, ua_id}}
//
// alice (the client under test) logs in with a <user-agent/>; bob, a
// second xmpp.js client in this process, is her contact. alice sends bob a
// message and gets his reply; then her connection is cut without a word
// (the socket destroyed), bob writes to her meanwhile, and xmpp.js
// reconnects: its <authenticate/> carries <resume/>, and the message
// arrives on the resumed session. Prints JSON lines on stdout (facts), all
// XML on stderr. Exits on its own within cfg.timeout seconds (default 20).

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

const service = args.service ?? cfg.ws;
if (!service.startsWith("ws")) process.env.NODE_TLS_REJECT_UNAUTHORIZED = "0";
const t0 = Date.now();
const ts = () => ((Date.now() - t0) / 1000).toFixed(3);

function make(user, resource, userAgent) {
  const c = client({
    service,
    domain: cfg.domain,
    resource,
    username: user,
    password: cfg.users[user],
    userAgent,
    timeout: 5000,
  });
  c.on("element", (el) => log(`[${ts()}] ${user} RECV`, el.toString()));
  c.on("send", (el) => log(`[${ts()}] ${user} SEND`, el.toString()));
  c.on("status", (st) => log(`[${ts()}] ${user} status`, st));
  c.on("error", (err) => log(`[${user}] error`, err?.stack ?? String(err)));
  return c;
}

// until polls cond every 20 ms, for at most ms.
async function until(cond, ms, what) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out waiting for " + what);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// nextMessage resolves with the next <message/> with a body that c gets.
function nextMessage(c) {
  return new Promise((resolve) => {
    const on = (st) => {
      if (st.is("message") && st.getChildText("body") !== null) {
        c.removeListener("stanza", on);
        resolve(st);
      }
    };
    c.on("stanza", on);
  });
}

const ua = xml(
  "user-agent",
  { id: args.ua_id },
  xml("software", {}, "xmpp.js interop"),
  xml("device", {}, "bluetick test runner"),
);

// What alice sends and receives, in order, for the round-trip counts.
const wire = [];
async function main() {
  const bob = make("bob", "bot");
  bob.reconnect.stop();
  const bobJID = (await bob.start()).toString();
  await bob.send(xml("presence"));

  const alice = make("alice", "xmppjs", ua);
  alice.reconnect.delay = 200;
  alice.on("send", (el) => wire.push({ dir: "send", name: el.name, ns: el.attrs.xmlns ?? "", xml: el.toString() }));
  alice.on("element", (el) => wire.push({ dir: "recv", name: el.name, ns: el.attrs.xmlns ?? "", xml: el.toString() }));
  let resumedEvents = 0;
  alice.streamManagement.on("resumed", () => resumedEvents++);

  const aliceJID = (await alice.start()).toString();
  const auth1 = wire.find((w) => w.dir === "send" && w.name === "authenticate");
  const succ1 = wire.find((w) => w.dir === "recv" && w.name === "success");
  emit("login", {
    client: "xmpp.js",
    jid: aliceJID,
    transport: service.split(":")[0],
    authenticate: auth1?.xml ?? null,
    success: succ1?.xml ?? null,
    sasl2: succ1?.ns === "urn:xmpp:sasl:2",
    sm: Boolean(alice.streamManagement.enabled),
    sm_id: alice.streamManagement.id || null,
    // Anything between <success/> and "online" that asked for binding or SM
    // the old way.
    // FAST (XEP-0484): the token xmpp.js kept from <success/>, if any.
    token_mechanism: (await alice.fast.fetchToken())?.mechanism ?? null,
    legacy_after: wire
      .filter((w) => w.dir === "send" && (w.name === "enable" || (w.name === "iq" && w.xml.includes("xmpp-bind"))))
      .map((w) => w.xml),
  });

  await alice.send(xml("presence"));
  const gotReply = nextMessage(alice);
  const gotOne = nextMessage(bob);
  await alice.send(xml("message", { type: "chat", to: bobJID, id: "one" }, xml("body", {}, "one")));
  const one = await gotOne;
  await bob.send(xml("message", { type: "chat", to: one.attrs.from, id: "r1" }, xml("body", {}, "echo: one")));
  const reply = await gotReply;
  emit("exchanged", { bob_got_from: one.attrs.from, reply_from: reply.attrs.from, reply_body: reply.getChildText("body") });

  // Everything alice sent is acknowledged (XEP-0198), then her network goes.
  await until(() => alice.streamManagement.outbound_q.length === 0, 5000, "alice's acks");
  const smID = alice.streamManagement.id;
  const mark = wire.length;
  const raw = alice.socket?.socket;
  if (raw?.terminate) raw.terminate(); // ws: no close frame
  else if (raw?.destroy) raw.destroy(); // TCP / TLS: no </stream:stream>
  else throw new Error("no socket to cut");

  // bob writes while alice is away; bluetick holds it for her session.
  await new Promise((r) => setTimeout(r, 100));
  const away = nextMessage(alice);
  await bob.send(xml("message", { type: "chat", to: aliceJID, id: "away" }, xml("body", {}, "while you were away")));

  const msg = await Promise.race([away, new Promise((r) => setTimeout(() => r(null), 8000))]);
  await until(() => resumedEvents > 0 || msg === null, 3000, "the resumption");
  const after = wire.slice(mark);
  const auth2 = after.find((w) => w.dir === "send" && w.name === "authenticate");
  // The server's elements from the <authenticate/> on, up to the message.
  const i = after.indexOf(auth2);
  const recv = after.slice(i < 0 ? after.length : i).filter((w) => w.dir === "recv");
  const upto = recv.findIndex((w) => w.name === "message");
  emit("resumed", {
    resumed_events: resumedEvents,
    sm_id_before: smID,
    authenticate: auth2?.xml ?? null,
    server_elements: (upto < 0 ? recv : recv.slice(0, upto + 1)).map((w) => w.name),
    success: recv.find((w) => w.name === "success")?.xml ?? null,
    message: msg ? { id: msg.attrs.id, from: msg.attrs.from, body: msg.getChildText("body") } : null,
    jid: alice.jid?.toString() ?? null,
    sent_after: after.filter((w) => w.dir === "send").map((w) => w.name),
  });

  alice.reconnect.stop();
  await alice.stop();
  await bob.stop();
  emit("done");
  clearTimeout(killer);
  process.exit(0);
}

main().catch((err) => {
  emit("error", { error: String(err?.stack ?? err) });
  process.exit(1);
});
