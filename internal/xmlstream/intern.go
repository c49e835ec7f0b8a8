package xmlstream

// internWords are the names, namespaces and attribute values nearly every
// stanza repeats. Returning these from one shared table instead of copying
// them out of the read buffer saves memory per retained stanza (offline
// queues, last presence) and makes comparisons against constants cheap. The
// table is read-only after init, so concurrent decoders share it safely.
var internWords = func() []string {
	words := []string{
		// namespaces
		NSStream, NSClient, NSServer, NSFraming, NSXML,
		"urn:ietf:params:xml:ns:xmpp-tls",
		"urn:ietf:params:xml:ns:xmpp-sasl",
		"urn:ietf:params:xml:ns:xmpp-bind",
		"urn:ietf:params:xml:ns:xmpp-session",
		"urn:ietf:params:xml:ns:xmpp-stanzas",
		"urn:ietf:params:xml:ns:xmpp-streams",
		"jabber:iq:roster", "jabber:iq:register", "jabber:iq:version",
		"jabber:iq:last", "jabber:iq:private", "jabber:x:data", "vcard-temp",
		"http://jabber.org/protocol/disco#info",
		"http://jabber.org/protocol/disco#items",
		"http://jabber.org/protocol/caps",
		"http://jabber.org/protocol/chatstates",
		"http://jabber.org/protocol/muc",
		"http://jabber.org/protocol/muc#user",
		"http://jabber.org/protocol/pubsub",
		"http://jabber.org/protocol/pubsub#event",
		"http://jabber.org/features/iq-register",
		"urn:xmpp:receipts", "urn:xmpp:ping", "urn:xmpp:sm:3", "urn:xmpp:delay",
		"urn:xmpp:sid:0", "urn:xmpp:carbons:2", "urn:xmpp:forward:0",
		"urn:xmpp:mam:2", "urn:xmpp:csi:0", "urn:xmpp:chat-markers:0",
		"urn:xmpp:hints", "urn:xmpp:time", "urn:xmpp:eme:0",
		"urn:xmpp:message-correct:0", "urn:xmpp:features:rosterver",
		"urn:xmpp:features:pre-approval", "urn:xmpp:blocking",
		"eu.siacs.conversations.axolotl",
		// element names
		"stream", "features", "error", "message", "presence", "iq", "body",
		"subject", "thread", "show", "status", "priority", "query", "item",
		"x", "c", "delay", "request", "received", "active", "composing",
		"paused", "inactive", "gone", "bind", "jid", "resource", "session",
		"enable", "enabled", "resume", "resumed", "r", "a", "auth",
		"starttls", "proceed", "mechanisms", "mechanism", "success",
		"failure", "challenge", "response", "abort", "ping", "stanza-id",
		"origin-id", "group", "identity", "feature", "time", "markable",
		"displayed", "store", "no-store", "register", "username", "password",
		"text", "open", "close", "required", "forwarded", "sent", "result",
		"fin", "set", "first", "last", "count", "before", "after", "max",
		"field", "value", "encrypted", "header", "key", "payload", "replace",
		"blocklist", "block", "unblock", "vCard", "ver", "sm", "csi",
		// attribute names
		"to", "from", "id", "type", "xml:lang", "version", "name",
		"subscription", "ask", "node", "hash", "category", "var", "h",
		"stamp", "by", "code", "approved", "xmlns", "lang", "previd",
		"location", "max", "queryid", "sid", "rid", "prekey", "label",
		// attribute values
		"chat", "groupchat", "normal", "headline", "get",
		"unavailable", "subscribe", "subscribed", "unsubscribe",
		"unsubscribed", "probe", "en", "1.0", "sha-1", "both", "none",
		"remove", "cancel", "modify", "wait", "continue", "true", "false",
		"0", "1", "client", "pc", "phone", "web", "bot", "away", "dnd", "xa",
		"PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256", "form", "submit", "hidden",
	}
	return words
}()

// internTable is an open-addressing hash table over internWords with a
// hash of a few bytes: cheaper than a map lookup, which hashes every byte
// and showed up at over a tenth of decode time.
const internSlots = 1024 // a power of two, about four times the word count

var internTable = func() (t [internSlots]string) {
	for _, w := range internWords {
		h := internHash([]byte(w))
		for t[h] != "" && t[h] != w {
			h = (h + 1) & (internSlots - 1)
		}
		t[h] = w
	}
	return t
}()

func internHash(b []byte) uint32 {
	n := len(b)
	h := uint32(n)*0x9E3779B1 ^ uint32(b[0])<<8 ^ uint32(b[n-1])<<16 ^ uint32(b[n/2])*0x85EBCA6B ^ uint32(b[n/3])<<3
	h ^= h >> 15
	return h & (internSlots - 1)
}

// intern returns the shared copy of b if the table holds it.
func intern(b []byte) (string, bool) {
	if len(b) == 0 {
		return "", true
	}
	if len(b) > 48 {
		return "", false
	}
	for h := internHash(b); ; h = (h + 1) & (internSlots - 1) {
		s := internTable[h]
		if s == "" {
			return "", false
		}
		if s == string(b) {
			return s, true
		}
	}
}
