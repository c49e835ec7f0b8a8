// Message Carbons (XEP-0280): what this account sends and receives on its
// other devices (a phone, another browser) shows here too, as WhatsApp's
// linked devices do. Enabled on every new session; a copy is accepted
// only from our own bare JID (anyone else could forge one). "sent" copies
// are stored as our messages; "received" ones go through the normal
// receiving path (deduped by id when this device got the message too).
// Encrypted copies are decrypted before this runs (omemo.js unwraps
// carbons: the sender encrypts for its own other devices).
import { xml } from "@xmpp/client";
import * as core from "./core.js";

export const NS = "urn:xmpp:carbons:2";
const FORWARD = "urn:xmpp:forward:0";

// copyOf returns {kind, msg} for a carbon copy from our own account.
export function copyOf(st) {
  if (!st.is("message")) return null;
  const jid = core.state.account?.jid;
  if (!jid || String(st.attrs.from || "").toLowerCase() !== jid) return null;
  for (const kind of ["sent", "received"]) {
    const msg = st.getChild(kind, NS)?.getChild("forwarded", FORWARD)?.getChild("message");
    if (msg) return { kind, msg };
  }
  return null;
}

core.hooks.online.push((c) => {
  c.iqCaller.request(xml("iq", { type: "set" }, xml("enable", { xmlns: NS })), 10000).catch((e) => console.info("carbons:", e?.message ?? e));
});

core.hooks.received.push((c, st) => {
  const copy = copyOf(st);
  if (!copy) return st.is("message") && Boolean(st.getChild("sent", NS) || st.getChild("received", NS)); // forged copies: dropped
  const done = copy.kind === "sent" ? core.storeSent(copy.msg) : core.receive(c, copy.msg);
  done.catch((e) => console.warn("carbon:", e));
  return true;
});
