// Another client (a plain @xmpp/client in Node, run with
// --experimental-websocket by encmedia.mjs) that shares files the way
// XEP-0454 clients do: signs in as USER, and for each file of the
// manifest (made by encmedia_test.go: ciphertext encrypted by Go's
// crypto/cipher AES-GCM, key and IV in hex) asks the server's upload
// service for a slot, PUTs the ciphertext, and sends TO a message whose
// body is only the aesgcm:// link (no OOB, no file metadata; not
// OMEMO-encrypted here: the app handles a decrypted body the same way).
// A manifest entry with "link" is sent as that body without an upload.
// LIST (5th argument) names the manifest's list to send, "files" if none.
// Prints one JSON line per file: {name, link}.
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { join } from "node:path";

const [cfgJSON, user, to, manifestPath, list = "files"] = process.argv.slice(2);
const cfg = JSON.parse(cfgJSON);
const require = createRequire(join(cfg.webDir, "package.json"));
const { client, xml } = require("@xmpp/client");
const manifest = JSON.parse(readFileSync(manifestPath, "utf8"));

const killer = setTimeout(() => {
  process.stderr.write("encmedia-peer: timed out\n");
  process.exit(2);
}, 40000);
const meta = await (await fetch(new URL("/.well-known/host-meta.json", cfg.url))).json();
const service = meta.links.find((l) => l.rel === "urn:xmpp:alt-connections:websocket").href;
const c = client({ service, domain: cfg.domain, username: user, password: cfg.users[user], timeout: 10000 });
c.on("error", (e) => process.stderr.write(`encmedia-peer: ${e?.message ?? e}\n`));
await c.start();
await c.send(xml("presence"));

for (const f of manifest[list]) {
  let link = f.link;
  if (!link) {
    const body = readFileSync(f.cipher);
    const res = await c.iqCaller.request(
      xml("iq", { type: "get", to: cfg.domain },
        xml("request", { xmlns: "urn:xmpp:http:upload:0", filename: f.upload_name, size: String(body.length), "content-type": "application/octet-stream" })),
      10000,
    );
    const slot = res.getChild("slot", "urn:xmpp:http:upload:0");
    const put = slot.getChild("put");
    const headers = { "Content-Type": "application/octet-stream" };
    for (const h of put.getChildren("header")) headers[h.attrs.name] = h.text();
    const r = await fetch(put.attrs.url, { method: "PUT", headers, body });
    if (r.status !== 201 && r.status !== 200) throw new Error(`PUT ${f.upload_name}: HTTP ${r.status}`);
    const get = new URL(slot.getChild("get").attrs.url);
    link = "aesgcm://" + get.host + get.pathname + "#" + f.iv + f.key;
  }
  await c.send(xml("message", { to, type: "chat", id: "e2e-" + f.name }, xml("body", {}, link)));
  process.stdout.write(JSON.stringify({ name: f.name, link }) + "\n");
}
await c.stop();
clearTimeout(killer);
process.stdout.write("sent\n");
