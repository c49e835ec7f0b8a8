package xmlstream

import "testing"

func TestIntern(t *testing.T) {
	for _, w := range internWords {
		if len(w) > 48 {
			t.Fatalf("%q is longer than intern looks up", w)
		}
		s, ok := intern([]byte(w))
		if !ok || s != w {
			t.Fatalf("intern(%q) = %q, %v", w, s, ok)
		}
	}
	for _, w := range []string{"mesage", "messagex", "jabber:clien", "urn:xmpp:receipt", "zzz"} {
		if _, ok := intern([]byte(w)); ok {
			t.Fatalf("intern(%q) found", w)
		}
	}
	if got := testing.AllocsPerRun(100, func() { intern([]byte("message")) }); got != 0 {
		t.Fatalf("%v allocations", got)
	}
}
