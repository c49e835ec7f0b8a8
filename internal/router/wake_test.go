package router

import (
	"context"
	"testing"

	"bluetick/internal/jid"
	"bluetick/internal/stanza"
	"bluetick/internal/xmlstream"
)

// nopWriter is an attached connection that swallows everything.
type nopWriter struct{}

func (nopWriter) Write([]*xmlstream.Element) error { return nil }
func (nopWriter) Close(*stanza.StreamError)        {}

// TestOnUndelivered: the push hook fires for a message stored offline or
// queued only to sleeping sessions (hibernated, inactive), not when an
// awake session got it, and never for headlines, errors or groupchat.
func TestOnUndelivered(t *testing.T) {
	for _, durable := range []bool{false, true} {
		r := New(newMem(), exists)
		r.SetDurable(durable)
		var woke []string
		r.OnUndelivered = func(ctx context.Context, bare jid.JID, el *xmlstream.Element) {
			woke = append(woke, bare.String()+":"+el.Attr("id"))
		}
		ctx := context.Background()
		bob := jid.MustParse("bob@example.org")
		check := func(step string, want ...string) {
			t.Helper()
			if len(woke) != len(want) {
				t.Fatalf("durable=%v %s: woke %v, want %v", durable, step, woke, want)
			}
			for i := range want {
				if woke[i] != want[i] {
					t.Fatalf("durable=%v %s: woke %v, want %v", durable, step, woke, want)
				}
			}
			woke = nil
		}

		// Offline: stored and woken.
		if err := r.DeliverMessage(ctx, bob, chat("m1")); err != nil {
			t.Fatal(err)
		}
		check("offline", "bob@example.org:m1")

		// Awake session: delivered, no push.
		s := bind(t, r, "bob@example.org/phone", 0, true)
		s.Attach(nopWriter{})
		r.DeliverMessage(ctx, bob, chat("m2"))
		check("awake")

		// Inactive (XEP-0352): delivered and woken.
		s.SetInactive(true)
		r.DeliverMessage(ctx, bob, chat("m3"))
		check("inactive", "bob@example.org:m3")
		s.SetInactive(false)

		// Hibernated (XEP-0198, connection gone): queued and woken, also
		// when addressed to the full JID.
		s.Detach()
		r.DeliverMessage(ctx, bob, chat("m4"))
		r.DeliverMessage(ctx, jid.MustParse("bob@example.org/phone"), chat("m5"))
		check("hibernated", "bob@example.org:m4", "bob@example.org:m5")

		// Another awake session of the user: no push.
		s2 := bind(t, r, "bob@example.org/laptop", 0, true)
		s2.Attach(nopWriter{})
		r.DeliverMessage(ctx, bob, chat("m6"))
		check("one awake")

		// Not for headlines, errors, groupchat.
		for _, typ := range []string{"headline", "error", "groupchat"} {
			m := chat("x-" + typ)
			m.SetAttr("type", typ)
			r.DeliverMessage(ctx, jid.MustParse("carol@example.org"), m)
		}
		check("other types")
	}
}
