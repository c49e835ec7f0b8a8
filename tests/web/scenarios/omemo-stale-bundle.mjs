// Publishes USER's OMEMO bundles again with only their first one-time
// prekey, as USER (a plain @xmpp/client in Node, another resource of the
// account). Two senders who fetch such a bundle build their sessions on
// the same prekey: what happens in a real group when several members
// write to a device that is offline (it cannot republish meanwhile), or
// within seconds of each other. Prints "trimmed <device ids>" when done.
import { createRequire } from "node:module";
import { join } from "node:path";

const [cfgJSON, user] = process.argv.slice(2);
const cfg = JSON.parse(cfgJSON);
const require = createRequire(join(cfg.webDir, "package.json"));
const { client, xml } = require("@xmpp/client");

const NS = "eu.siacs.conversations.axolotl";
const PUBSUB = "http://jabber.org/protocol/pubsub";
const meta = await (await fetch(new URL("/.well-known/host-meta.json", cfg.url))).json();
const service = meta.links.find((l) => l.rel === "urn:xmpp:alt-connections:websocket").href;
const c = client({ service, domain: cfg.domain, username: user, password: cfg.users[user], resource: "stale", timeout: 10000 });
c.on("error", (e) => process.stderr.write(`omemo-stale-bundle: ${e?.message ?? e}\n`));
const killer = setTimeout(() => {
  process.stderr.write("omemo-stale-bundle: timed out\n");
  process.exit(2);
}, 30000);
await c.start();
const items = async (node) => (await c.iqCaller.request(xml("iq", { type: "get" }, xml("pubsub", { xmlns: PUBSUB }, xml("items", { node })))))
  .getChild("pubsub", PUBSUB).getChild("items").getChildren("item");
const ids = items(NS + ".devicelist").then((it) => it[0].getChild("list", NS).getChildren("device").map((d) => d.attrs.id));
const trimmed = [];
for (const id of await ids) {
  const item = (await items(`${NS}.bundles:${id}`)).at(-1);
  const prekeys = item.getChild("bundle", NS).getChild("prekeys");
  prekeys.children = prekeys.getChildren("preKeyPublic").slice(0, 1);
  await c.iqCaller.request(xml("iq", { type: "set" }, xml("pubsub", { xmlns: PUBSUB }, xml("publish", { node: `${NS}.bundles:${id}` }, item))));
  trimmed.push(id);
}
await c.stop();
clearTimeout(killer);
process.stdout.write(`trimmed ${trimmed.join(" ")}\n`);
