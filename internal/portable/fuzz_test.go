package portable

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"bluetick/internal/xmlstream"
)

// FuzzRead feeds arbitrary documents to the reader. Oracle: it never
// panics, and every account it accepts survives being written out
// (accountElement) and read back with the same contents, so what an
// import stores is what a later export writes.
func FuzzRead(f *testing.F) {
	for _, dir := range []string{"prosody", "ejabberd"} {
		files, _ := filepath.Glob(filepath.Join("testdata", dir, "*.xml"))
		for _, p := range files {
			if b, err := os.ReadFile(p); err == nil {
				f.Add(b)
			}
		}
	}
	f.Add([]byte(`<server-data xmlns='urn:xmpp:pie:0'><host jid='h'><user name='a' password='p'><query xmlns='jabber:iq:roster'><item jid='b@h' subscription='both' ask='subscribe'><group>g</group></item></query><offline-messages><message xmlns='jabber:client' from='b@h'><body>x</body></message></offline-messages><blocklist xmlns='urn:xmpp:blocking'><item jid='e.example'/></blocklist></user><room xmlns='urn:bluetick:pie:muc:0' jid='r@groups.h'><config>{}</config><affiliation jid='a@h' affiliation='owner'/></room></host></server-data>`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		var accs []*Account
		err := Read(bytes.NewReader(doc), Visitor{Account: func(a *Account) error { accs = append(accs, a); return nil }})
		if err != nil && err.Error() == "" {
			t.Fatal("empty error")
		}
		for _, a := range accs {
			if a.Invalid != "" {
				continue
			}
			out := `<server-data xmlns='urn:xmpp:pie:0'><host jid='` + escape(a.Host) + `'>` + string(xmlstream.Append(nil, accountElement(a), NS)) + `</host></server-data>`
			var back []*Account
			if err := Read(strings.NewReader(out), Visitor{Account: func(b *Account) error { back = append(back, b); return nil }}); err != nil {
				t.Fatalf("re-reading %q: %v", out, err)
			}
			if len(back) != 1 {
				t.Fatalf("re-read %d accounts from %q", len(back), out)
			}
			b := back[0]
			if b.Name != a.Name || len(b.Creds) != len(a.Creds) || len(b.Offline) != len(a.Offline) || len(b.Private) != len(a.Private) ||
				len(b.PEP) != len(a.PEP) || len(b.Blocked) != len(a.Blocked) || (b.VCard == nil) != (a.VCard == nil) {
				t.Fatalf("round trip changed the account:\n%+v\n%+v\n%s", a, b, out)
			}
			for i := range a.Creds {
				if !bytes.Equal(a.Creds[i].StoredKey, b.Creds[i].StoredKey) || a.Creds[i].Mechanism != b.Creds[i].Mechanism {
					t.Fatalf("credential %d changed: %+v %+v", i, a.Creds[i], b.Creds[i])
				}
			}
		}
	})
}
