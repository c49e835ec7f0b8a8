package xmlstream

import "testing"

func TestSharedSerializesLikeCopy(t *testing.T) {
	msg := New(NSClient, "message", "from", "room@groups.example.com/alice", "type", "groupchat", "id", "x&1")
	msg.Append(New(NSClient, "body").AppendText("hi <there> & 'you'\r\n"))
	msg.Append(New("urn:xmpp:sid:0", "stanza-id", "id", "abc", "by", "room@groups.example.com"))
	msg.AppendText("tail")
	sh := Share(msg)
	for _, to := range []string{"bob@example.com/phone", "carol@example.com/x"} {
		inst := sh.With("to", to)
		want := msg.Copy()
		want.SetAttr("to", to)
		for _, ns := range []string{NSClient, ""} {
			if got, w := string(Append(nil, inst, ns)), string(Append(nil, want, ns)); got != w {
				t.Fatalf("shared instance (scope %q)\n%s\nwant\n%s", ns, got, w)
			}
		}
		if inst.Attr("to") != to || msg.Attr("to") != "" {
			t.Fatalf("attributes leak between instances: %q %q", inst.Attr("to"), msg.Attr("to"))
		}
	}
	// A mutation of one instance affects neither the template nor others.
	a, b := sh.With("to", "a@x"), sh.With("to", "b@x")
	a.RemoveChildren("urn:xmpp:sid:0", "stanza-id")
	a.Append(New("urn:x", "extra"))
	if a.Child("urn:xmpp:sid:0", "stanza-id") != nil || a.Child("urn:x", "extra") == nil {
		t.Fatalf("mutation lost: %s", a)
	}
	want := msg.Copy()
	want.SetAttr("to", "b@x")
	if b.String() != want.String() || msg.Child("urn:xmpp:sid:0", "stanza-id") == nil {
		t.Fatalf("mutation of one instance leaked:\n%s\n%s", b, msg)
	}
	empty := Share(New(NSClient, "presence", "from", "r@x/n"))
	if got := empty.With("to", "u@x/r").String(); got != "<presence xmlns='jabber:client' from='r@x/n' to='u@x/r'/>" {
		t.Fatalf("empty shared: %s", got)
	}
}
