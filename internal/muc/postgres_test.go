package muc_test

import (
	"context"
	"strings"
	"testing"

	"bluetick/internal/config"
	"bluetick/internal/pgtest"
	"bluetick/internal/store/postgres"
	"bluetick/internal/xmlstream"
)

// TestGroupOnPostgres runs a group's life on the PostgreSQL store (cluster
// mode): creation, members, fan-out, the archive with paging, an invite
// link, and a restart of the service over the same database.
func TestGroupOnPostgres(t *testing.T) {
	dsn := pgtest.Start(t)
	open := func() *env {
		st, err := postgres.Open(context.Background(), dsn, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		cfg := config.Default()
		cfg.DataDir = t.TempDir()
		return newEnvOn(t, cfg, st)
	}
	e := open()
	alice := e.newGroup("bob@localhost")
	bob := e.login("bob@localhost/pc")
	bob.join(room, "Bob", "")
	for i := 0; i < 7; i++ {
		alice.send("<message xmlns='jabber:client' to='%s' type='groupchat'><body>p%d</body></message>", room, i)
	}
	for i := 0; i < 7; i++ {
		if m := bob.until(isGroupchat); m.ChildText(xmlstream.NSClient, "body") != "p"+string(rune('0'+i)) {
			t.Fatalf("message %d: %s", i, m)
		}
	}
	b, fin, _ := mamPage(t, bob, "", "<set xmlns='http://jabber.org/protocol/rsm'><max>5</max></set>")
	b2, fin2, _ := mamPage(t, bob, "", "<set xmlns='http://jabber.org/protocol/rsm'><max>5</max><after>"+rsmText(fin, "last")+"</after></set>")
	if strings.Join(append(b, b2...), ",") != "p0,p1,p2,p3,p4,p5,p6" || fin.Attr("complete") == "true" || fin2.Attr("complete") != "true" {
		t.Fatalf("archive pages %v %v", b, b2)
	}
	tok := mustOK(t, alice.iq(room, "set", "<create xmlns='urn:bluetick:muc:invite:0'/>")).FirstChild().Attr("token")
	alice.logout()
	bob.logout()
	e.st.Close()

	e2 := open()
	dave := e2.login("dave@localhost/x")
	if p := dave.join(room, "Dave", "<password>"+tok+"</password>"); item(p).Attr("affiliation") != "member" {
		t.Fatalf("invite link after restart: %s", p)
	}
	var hist []string
	for {
		el := dave.next()
		if el.Child(xmlstream.NSClient, "subject") != nil {
			break
		}
		if isGroupchat(el) {
			hist = append(hist, el.ChildText(xmlstream.NSClient, "body"))
		}
	}
	if strings.Join(hist, ",") != "p0,p1,p2,p3,p4,p5,p6" {
		t.Fatalf("history after restart: %v", hist)
	}
	wantError(t, e2.login("eve@localhost/x").join(room, "Eve", ""), "registration-required")
}
