// Strophe.js (the library under Converse.js and many web clients) against
// bluetick over BOSH (XEP-0124/XEP-0206), in Node.
//
// Usage: node bosh_client.mjs 'JSON-CONFIG'
// Config: {http, domain, users, args: {user, to, body}}
// Logs in (Strophe picks the strongest SASL mechanism offered), sends
// presence and one chat message to args.to, waits for a reply from it.
// Prints JSON lines on stdout; XML in and out goes to stderr. Exits on its
// own within cfg.timeout seconds (default 20).

// Node has no XMLHttpRequest: Strophe's BOSH transport needs one. xhr2
// has no responseXML, and Strophe 5's fallback for that case parses the
// text but then returns nothing, so the shim parses it the way a browser
// does for a text/xml answer.
import XMLHttpRequest from "xhr2";
import { DOMParser } from "@xmldom/xmldom";
class XHR extends XMLHttpRequest {
  get responseXML() {
    if (this.readyState !== 4 || !this.responseText) return null;
    return new DOMParser().parseFromString(this.responseText, "text/xml");
  }
}
globalThis.XMLHttpRequest = XHR;

const { Strophe, $pres, $msg } = await import("strophe.js");

const cfg = JSON.parse(process.argv[2]);
const args = cfg.args ?? {};
const emit = (event, fields = {}) =>
  process.stdout.write(JSON.stringify({ event, ...fields }) + "\n");
const log = (...a) => process.stderr.write(a.join(" ") + "\n");

const total = (cfg.timeout ?? 20) * 1000;
setTimeout(() => {
  emit("timeout", { after: total / 1000 });
  process.exit(3);
}, total);

const user = args.user ?? "alice";
const url = `http://127.0.0.1:${cfg.http}/http-bind`;
const conn = new Strophe.Connection(url);
conn.xmlInput = (el) => log(`${user} RECV`, Strophe.serialize(el));
conn.xmlOutput = (el) => log(`${user} SEND`, Strophe.serialize(el));

conn.addHandler(
  (st) => {
    const body = st.getElementsByTagName("body")[0];
    if (!body) return true;
    const sid = st.getElementsByTagName("stanza-id")[0];
    emit("received", {
      from: st.getAttribute("from"),
      body: Strophe.getText(body),
      stanza_id_by: sid?.getAttribute("by") ?? null,
    });
    conn.disconnect("done");
    return false;
  },
  null,
  "message",
);

conn.connect(`${user}@${cfg.domain}/strophe`, cfg.users[user], (status, cond) => {
  const name = Object.keys(Strophe.Status).find((k) => Strophe.Status[k] === status);
  log(`${user} status ${name} ${cond ?? ""}`);
  switch (status) {
    case Strophe.Status.CONNECTED:
      emit("login", { jid: conn.jid, mechanism: conn._sasl_mechanism?.mechname ?? null, sid: conn._proto?.sid ?? null });
      conn.send($pres());
      if (args.to) {
        conn.send($msg({ to: args.to, type: "chat", id: "bosh1" }).c("body").t(args.body ?? "hello over BOSH"));
        emit("sent", { to: args.to });
      }
      break;
    case Strophe.Status.AUTHFAIL:
    case Strophe.Status.CONNFAIL:
    case Strophe.Status.ERROR:
      emit("error", { status: name, condition: cond ?? null });
      process.exit(1);
    case Strophe.Status.DISCONNECTED:
      emit("done");
      process.exit(0);
  }
});
