// Sends captured OMEMO <encrypted/> elements again, as USER (a plain
// @xmpp/client in Node, another resource of the sender's account): each
// argument after TO is one element's XML, sent in a new <message/> with a
// new id. e2e.mjs uses it for a replay (the element as it was) and a
// forgery (a byte of its payload changed). Prints "sent" when done.
import { createRequire } from "node:module";
import { join } from "node:path";

const [cfgJSON, user, to, ...elements] = process.argv.slice(2);
const cfg = JSON.parse(cfgJSON);
const require = createRequire(join(cfg.webDir, "package.json"));
const { client } = require("@xmpp/client");

const meta = await (await fetch(new URL("/.well-known/host-meta.json", cfg.url))).json();
const service = meta.links.find((l) => l.rel === "urn:xmpp:alt-connections:websocket").href;
const c = client({ service, domain: cfg.domain, username: user, password: cfg.users[user], resource: "forger", timeout: 10000 });
c.on("error", (e) => process.stderr.write(`omemo-forge: ${e?.message ?? e}\n`));
const killer = setTimeout(() => {
  process.stderr.write("omemo-forge: timed out\n");
  process.exit(2);
}, 30000);
await c.start();
let i = 0;
for (const el of elements) {
  const id = `forged-${++i}`;
  await c.write(`<message xmlns="jabber:client" to="${to}" type="chat" id="${id}">${el}<body>fallback</body><origin-id xmlns="urn:xmpp:sid:0" id="${id}"/><store xmlns="urn:xmpp:hints"/></message>`);
}
await c.stop();
clearTimeout(killer);
process.stdout.write("sent\n");
