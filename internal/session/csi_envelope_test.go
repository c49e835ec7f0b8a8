package session

import (
	"testing"

	"bluetick/internal/xmlstream"
)

// A chat state as it really reaches a session: the server has stamped a
// XEP-0359 <stanza-id/>, the sender may add <origin-id/> and a XEP-0334
// hint. It is still noise to hold; anything with content is not.
func TestHoldableChatStateWithEnvelope(t *testing.T) {
	state := func(extra ...*xmlstream.Element) *xmlstream.Element {
		m := xmlstream.New(xmlstream.NSClient, "message", "from", "alice@x/pc", "type", "chat")
		m.Append(xmlstream.New(nsChatStates, "composing"))
		return m.Append(extra...)
	}
	for _, m := range []*xmlstream.Element{
		state(xmlstream.New(nsSID, "stanza-id", "id", "S1", "by", "bob@x")),
		state(xmlstream.New(nsSID, "origin-id", "id", "o1"), xmlstream.New(nsHints, "no-store")),
		state(xmlstream.New(xmlstream.NSClient, "thread").AppendText("t1")),
	} {
		if k, ok := holdable(m); !ok || k.kind != "chatstate" {
			t.Errorf("%s not held as a chat state", m)
		}
	}
	for _, m := range []*xmlstream.Element{
		state(xmlstream.New(xmlstream.NSClient, "body").AppendText("hi")),
		state(xmlstream.New("urn:xmpp:receipts", "received", "id", "x")),
		xmlstream.New(xmlstream.NSClient, "message", "from", "alice@x/pc").Append(xmlstream.New(nsSID, "stanza-id", "id", "S2")),
		xmlstream.New(xmlstream.NSClient, "message", "from", "alice@x/pc").Append(xmlstream.New(xmlstream.NSClient, "thread").AppendText("t")),
	} {
		if _, ok := holdable(m); ok {
			t.Errorf("%s held, but it is not only a chat state", m)
		}
	}
}
