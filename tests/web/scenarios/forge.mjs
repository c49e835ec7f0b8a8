// A third party (a plain @xmpp/client in Node, run with
// --experimental-websocket by actions.mjs): signs in as USER and sends TO a
// retraction and a correction of a message someone else wrote (ID), then a
// plain message, so the receiving app has handled the forged ones when the
// plain one shows. Prints "sent" when done.
import { createRequire } from "node:module";
import { join } from "node:path";

const [cfgJSON, user, to, id] = process.argv.slice(2);
const cfg = JSON.parse(cfgJSON);
const require = createRequire(join(cfg.webDir, "package.json"));
const { client, xml } = require("@xmpp/client");

const meta = await (await fetch(new URL("/.well-known/host-meta.json", cfg.url))).json();
const service = meta.links.find((l) => l.rel === "urn:xmpp:alt-connections:websocket").href;
const c = client({ service, domain: cfg.domain, username: user, password: cfg.users[user], timeout: 10000 });
c.on("error", (e) => process.stderr.write(`forge: ${e?.message ?? e}\n`));
const killer = setTimeout(() => {
  process.stderr.write("forge: timed out\n");
  process.exit(2);
}, 30000);
await c.start();
await c.send(xml("message", { to, type: "chat", id: "forged-retract-1" },
  xml("retract", { xmlns: "urn:xmpp:message-retract:1", id }),
  xml("fallback", { xmlns: "urn:xmpp:fallback:0", for: "urn:xmpp:message-retract:1" }),
  xml("body", {}, "This person attempted to retract a previous message, but it's unsupported by your client.")));
await c.send(xml("message", { to, type: "chat", id: "forged-edit-1" },
  xml("body", {}, "forged edit"),
  xml("replace", { xmlns: "urn:xmpp:message-correct:0", id })));
await c.send(xml("message", { to, type: "chat", id: "plain-1" }, xml("body", {}, "carol was here")));
await c.stop();
clearTimeout(killer);
process.stdout.write("sent\n");
