package portable

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"hash"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"bluetick/internal/store"
)

// The files under testdata are what the real exporters wrote for the
// same accounts (tests/migration makes them again from live servers):
// alice (password pw-alice) has bob (group Friends, asked to subscribe)
// and carol@elsewhere.example (groups Work, Friends) in her roster, a
// vCard with FN "Alice Liddell" and private XML; bob (pw-bob) has alice's
// pending request and, on ejabberd, her offline message.

func readAll(t *testing.T, path string) (map[string]*Account, []string) {
	t.Helper()
	accs := map[string]*Account{}
	var notices []string
	err := ReadPath(path, Visitor{
		Account: func(a *Account) error { accs[a.Name] = a; return nil },
		Notice:  func(m string) { notices = append(notices, m) },
	})
	if err != nil {
		t.Fatal(err)
	}
	return accs, notices
}

// checkPassword reports whether c verifies password, by the RFC 5802 key
// derivation: what a SCRAM login will check.
func checkPassword(t *testing.T, c store.Credential, password string) bool {
	t.Helper()
	h := map[string]func() hash.Hash{"SCRAM-SHA-1": sha1.New, "SCRAM-SHA-256": sha256.New}[c.Mechanism]
	salted, err := pbkdf2.Key(h, password, c.Salt, c.Iterations, h().Size())
	if err != nil {
		t.Fatal(err)
	}
	m := hmac.New(h, salted)
	m.Write([]byte("Client Key"))
	d := h()
	d.Write(m.Sum(nil))
	return hmac.Equal(d.Sum(nil), c.StoredKey)
}

func TestReadPeerExports(t *testing.T) {
	for _, tc := range []struct {
		dir     string
		iter    int
		vcard   bool // vcard-temp (ejabberd) or a vCard4 PEP node (Prosody's vcard_legacy)
		offline int
	}{
		{"prosody", 10000, false, 0},
		{"ejabberd", 4096, true, 1},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			accs, notices := readAll(t, filepath.Join("testdata", tc.dir))
			if len(accs) != 2 || len(notices) != 0 {
				t.Fatalf("accounts %v, notices %v", accs, notices)
			}
			for name, a := range accs {
				if a.Host != "old.example" || a.NoPassword != "" || len(a.Creds) != 1 {
					t.Fatalf("%s: %+v", name, a)
				}
				c := a.Creds[0]
				if c.Mechanism != "SCRAM-SHA-1" || c.Iterations != tc.iter || !checkPassword(t, c, "pw-"+name) || checkPassword(t, c, "pw-x") {
					t.Fatalf("%s: credential %+v does not verify pw-%s", name, c, name)
				}
			}
			alice, bob := accs["alice"], accs["bob"]
			if len(alice.Roster) != 2 {
				t.Fatalf("alice's roster: %+v", alice.Roster)
			}
			for _, it := range alice.Roster {
				switch it.Contact {
				case "bob@old.example":
					if !it.PendingOut || it.Name != "Bobby" || it.Subscription != "none" || strings.Join(it.Groups, ",") != "Friends" || !it.InRoster {
						t.Fatalf("bob item: %+v", it)
					}
				case "carol@elsewhere.example":
					if it.PendingOut || len(it.Groups) != 2 {
						t.Fatalf("carol item: %+v", it)
					}
				default:
					t.Fatalf("item %+v", it)
				}
			}
			if len(bob.Roster) != 1 || bob.Roster[0].Contact != "alice@old.example" || !bob.Roster[0].PendingIn || bob.Roster[0].InRoster {
				t.Fatalf("bob's pending request: %+v", bob.Roster)
			}
			if len(alice.Private) != 1 || alice.Private[0].Text() != "rabbit hole" {
				t.Fatalf("private: %v", alice.Private)
			}
			if tc.vcard {
				if alice.VCard == nil || alice.VCard.ChildText(nsVCard, "FN") != "Alice Liddell" {
					t.Fatalf("vcard: %v", alice.VCard)
				}
			} else if len(alice.PEP) != 1 || alice.PEP[0].Node != "urn:xmpp:vcard4" || len(alice.PEP[0].Items) != 1 || alice.PEP[0].Form == nil {
				t.Fatalf("vcard4 node: %+v", alice.PEP)
			}
			if len(bob.Offline) != tc.offline {
				t.Fatalf("offline: %v", bob.Offline)
			}
			for _, m := range bob.Offline {
				if m.Space != nsClient || m.ChildText(nsClient, "body") != "hello bob, from the old server" {
					t.Fatalf("offline message %s", m)
				}
			}
		})
	}
}

func TestReadFormats(t *testing.T) {
	for _, tc := range []struct {
		name, doc, want string // want: "" = reads, else part of the error
		check           func(t *testing.T, a []*Account)
	}{
		{name: "legacy namespace, plaintext password", doc: `<server-data xmlns='http://www.xmpp.org/extensions/xep-0227.html#ns'><host jid='h'><user name='Juliet' password='s3crEt'/></host></server-data>`,
			check: func(t *testing.T, a []*Account) {
				if len(a) != 1 || a[0].Name != "juliet" || len(a[0].Creds) != 2 || !checkPassword(t, a[0].Creds[0], "s3crEt") || !checkPassword(t, a[0].Creds[1], "s3crEt") {
					t.Fatalf("%+v", a[0])
				}
			}},
		{name: "hashed password attribute", doc: `<server-data xmlns='urn:xmpp:pie:0'><host jid='h'><user name='a' password='==SCRAM==,x,y,z,4096'/></host></server-data>`,
			check: func(t *testing.T, a []*Account) {
				if len(a[0].Creds) != 0 || !strings.Contains(a[0].NoPassword, "hash") {
					t.Fatalf("%+v", a[0])
				}
			}},
		{name: "no credentials", doc: `<server-data xmlns='urn:xmpp:pie:0'><host jid='h'><user name='a'/></host></server-data>`,
			check: func(t *testing.T, a []*Account) {
				if !strings.Contains(a[0].NoPassword, "neither") {
					t.Fatalf("%+v", a[0])
				}
			}},
		{name: "SCRAM-SHA-512", doc: `<server-data xmlns='urn:xmpp:pie:0'><host jid='h'><user name='a'><scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-512'><iter-count>4096</iter-count><salt>AAAA</salt><server-key>AAAA</server-key><stored-key>AAAA</stored-key></scram-credentials></user></host></server-data>`,
			check: func(t *testing.T, a []*Account) {
				if !strings.Contains(a[0].NoPassword, "SCRAM-SHA-512") {
					t.Fatalf("%+v", a[0])
				}
			}},
		{name: "SHA-256 keys labelled SCRAM-SHA-1", doc: `<server-data xmlns='urn:xmpp:pie:0'><host jid='h'><user name='a'><scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-1'><iter-count>4096</iter-count><salt>c2FsdA==</salt><server-key>` + strings.Repeat("A", 43) + `=</server-key><stored-key>` + strings.Repeat("A", 43) + `=</stored-key></scram-credentials></user></host></server-data>`,
			check: func(t *testing.T, a []*Account) {
				if len(a[0].Creds) != 1 || a[0].Creds[0].Mechanism != "SCRAM-SHA-256" {
					t.Fatalf("%+v", a[0])
				}
			}},
		{name: "bad account name", doc: `<server-data xmlns='urn:xmpp:pie:0'><host jid='h'><user name='a@b' password='x'/><user name='ok' password='x'/></host></server-data>`,
			check: func(t *testing.T, a []*Account) {
				if len(a) != 2 || a[0].Invalid == "" || a[1].Invalid != "" {
					t.Fatalf("%+v", a)
				}
			}},
		{name: "privacy lists", doc: `<server-data xmlns='urn:xmpp:pie:0'><host jid='h'><user name='a' password='x'><query xmlns='jabber:iq:privacy'><default name='Blocked contacts'/><list name='Blocked contacts'><item value='spammer@evil.example' type='jid' order='0' action='deny'/><item value='evil.example' type='jid' order='1' action='deny'/><item value='friends' type='group' order='2' action='deny'/><item value='x@y' type='jid' order='3' action='deny'><message/></item></list><list name='other'><item type='jid' value='z@z' action='deny' order='0'/></list></query></user></host></server-data>`,
			check: func(t *testing.T, a []*Account) {
				if strings.Join(a[0].Blocked, " ") != "spammer@evil.example evil.example" || len(a[0].Skipped) != 2 {
					t.Fatalf("blocked %v, skipped %v", a[0].Blocked, a[0].Skipped)
				}
			}},
		{name: "user outside host", doc: `<server-data xmlns='urn:xmpp:pie:0'><user name='a'/></server-data>`, want: "outside any <host"},
		{name: "not XEP-0227", doc: `<html/>`, want: "not a XEP-0227"},
		{name: "not XML", doc: `<server-data xmlns='urn:xmpp:pie:0'><host jid='h'>`, want: "unexpected EOF"},
		{name: "entity", doc: `<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><server-data xmlns='urn:xmpp:pie:0'><host jid='h'><user name='a' password='&e;'/></host></server-data>`, want: "invalid character entity"},
		{name: "include from a stream", doc: `<server-data xmlns='urn:xmpp:pie:0' xmlns:xi='http://www.w3.org/2001/XInclude'><xi:include href='x.xml'/></server-data>`, want: "give the file's path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []*Account
			err := Read(strings.NewReader(tc.doc), Visitor{Account: func(a *Account) error { got = append(got, a); return nil }})
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("error %v, want %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, got)
		})
	}
}

// TestIncludeStaysInside: an include may not reach outside the directory
// of the file the operator named.
func TestIncludeStaysInside(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "secret.xml"), []byte(`<host xmlns='urn:xmpp:pie:0' jid='h'><user name='x' password='y'/></host>`), 0o600)
	sub := filepath.Join(dir, "export")
	os.Mkdir(sub, 0o700)
	os.WriteFile(filepath.Join(sub, "main.xml"), []byte(`<server-data xmlns='urn:xmpp:pie:0' xmlns:xi='http://www.w3.org/2001/XInclude'><xi:include href='../secret.xml'/></server-data>`), 0o600)
	err := ReadPath(sub, Visitor{Account: func(*Account) error { t.Fatal("read an account outside"); return nil }})
	if err == nil || !strings.Contains(err.Error(), "only files under") {
		t.Fatalf("err %v", err)
	}
}
