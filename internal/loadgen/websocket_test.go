package loadgen

import (
	"reflect"
	"testing"
)

// The client's stream header becomes RFC 7395's <open/> (what it sends
// with the header, its own message), its end tag <close/>; the server's
// <open/> and <close/> become what the stream reader expects.
func TestWebSocketFraming(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='bench.local' version='1.0' xml:lang='en'>",
			[]string{"<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='bench.local' version='1.0' xml:lang='en'/>"}},
		{"<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='bench.local' from='u@bench.local' version='1.0' xml:lang='en'><authenticate/>",
			[]string{"<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='bench.local' from='u@bench.local' version='1.0' xml:lang='en'/>", "<authenticate/>"}},
		{"</stream:stream>", []string{"<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>"}},
		{"<presence/>", []string{"<presence xmlns='jabber:client'/>"}},
		{"<iq type='set' id='b'><bind/></iq>", []string{"<iq xmlns='jabber:client' type='set' id='b'><bind/></iq>"}},
		{"<message xmlns='jabber:client' to='a'/>", []string{"<message xmlns='jabber:client' to='a'/>"}},
		{"<r xmlns='urn:xmpp:sm:3'/>", []string{"<r xmlns='urn:xmpp:sm:3'/>"}},
		{"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>x</auth>", []string{"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>x</auth>"}},
	} {
		if got := translateOut(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("translateOut(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := string(translateIn([]byte(`<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" from="bench.local" id="x" version="1.0"/>`))); got != string(streamHeaderIn) {
		t.Errorf("server <open/> read as %q", got)
	}
	if got := string(translateIn([]byte(`<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>`))); got != "</stream:stream>" {
		t.Errorf("server <close/> read as %q", got)
	}
	if got := string(translateIn([]byte(`<message/>`))); got != "<message/>" {
		t.Errorf("a stanza read as %q", got)
	}
}
