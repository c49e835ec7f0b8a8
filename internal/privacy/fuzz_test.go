package privacy

import (
	"errors"
	"testing"

	"bluetick/internal/stanza"
	"bluetick/internal/xmlstream"
)

// FuzzParseItems feeds arbitrary block/unblock payloads to the blocklist
// parser: no panic, every refusal a stanza error, every accepted item a
// valid JID whose own forms match it.
func FuzzParseItems(f *testing.F) {
	for _, s := range []string{
		`<block xmlns='urn:xmpp:blocking'><item jid='romeo@montague.net'/></block>`,
		`<unblock xmlns='urn:xmpp:blocking'/>`,
		`<block xmlns='urn:xmpp:blocking'><item jid='evil.example'/><item jid='a@b/c'/><item jid='b/c'/><item/></block>`,
		`<block xmlns='urn:xmpp:blocking'><item jid='@@'/></block>`,
		`<visibility xmlns='urn:bluetick:lastseen:0' value='nobody'/>`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		el, err := xmlstream.Parse(data, xmlstream.Limits{})
		if err != nil {
			return
		}
		items, err := ParseItems(el)
		var se *stanza.Error
		if err != nil && !errors.As(err, &se) {
			t.Fatalf("non-stanza error %v", err)
		}
		if len(items) > MaxItems {
			t.Fatalf("%d items", len(items))
		}
		for _, j := range items {
			if !Matches(j.String(), j) {
				t.Fatalf("%s does not match itself", j)
			}
		}
		if _, err := ParseVisibility(el); err != nil && !errors.As(err, &se) {
			t.Fatalf("visibility: non-stanza error %v", err)
		}
	})
}
