package muc_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"bluetick/internal/config"
	"bluetick/internal/muc"
	"bluetick/internal/store"
	"bluetick/internal/xmlstream"
)

// mamPage runs one archive query and returns the bodies of the results,
// the fin element and the result ids.
func mamPage(t *testing.T, c *client, form, rsm string) (bodies []string, fin *xmlstream.Element, ids []string) {
	t.Helper()
	seq++
	qid := fmt.Sprintf("q%d", seq)
	res := c.iq(room, "set", "<query xmlns='urn:xmpp:mam:2' queryid='"+qid+"'>"+form+rsm+"</query>")
	if res.Attr("type") != "result" {
		return nil, res, nil
	}
	// Results precede the IQ result: collect what was skipped.
	c.w.mu.Lock()
	all := c.w.els[:c.seen]
	c.w.mu.Unlock()
	for _, el := range all {
		r := el.Child(muc.NSMAM, "result")
		if el.Name != "message" || r == nil || r.Attr("queryid") != qid {
			continue
		}
		fw := r.Child(muc.NSForward, "forwarded")
		if fw.Child(muc.NSDelay, "delay") == nil || el.Attr("from") != room {
			t.Fatalf("result without delay or from the room: %s", el)
		}
		m := fw.Child("", "message")
		bodies = append(bodies, m.ChildText("", "body"))
		ids = append(ids, r.Attr("id"))
	}
	return bodies, res.FirstChild(), ids
}

func rsmText(fin *xmlstream.Element, name string) string {
	return fin.Child(muc.NSRSM, "set").ChildText(muc.NSRSM, name)
}

// TestArchivePaging: an offline member catches up from the room archive
// (XEP-0313 with XEP-0059 paging), forward and backward, with filters.
func TestArchivePaging(t *testing.T) {
	e := newEnv(t)
	alice := e.newGroup("bob@localhost", "carol@localhost")
	carol := e.login("carol@localhost/tab")
	carol.join(room, "Carol", "")
	for i := 0; i < 25; i++ {
		from := alice
		if i%5 == 4 {
			from = carol
		}
		from.send("<message xmlns='jabber:client' to='%s' type='groupchat'><body>m%02d</body></message>", room, i)
	}
	// Chat states are not archived.
	alice.send("<message xmlns='jabber:client' to='%s' type='groupchat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>", room)
	bob := e.login("bob@localhost/pc") // never joined: was "offline"
	b, fin, ids := mamPage(t, bob, "", "<set xmlns='http://jabber.org/protocol/rsm'><max>10</max></set>")
	if strings.Join(b, ",") != "m00,m01,m02,m03,m04,m05,m06,m07,m08,m09" || fin.Attr("complete") == "true" {
		t.Fatalf("first page %v %s", b, fin)
	}
	if rsmText(fin, "first") != ids[0] || rsmText(fin, "last") != ids[9] {
		t.Fatalf("fin ids: %s vs %v", fin, ids)
	}
	b, fin, _ = mamPage(t, bob, "", "<set xmlns='http://jabber.org/protocol/rsm'><max>10</max><after>"+rsmText(fin, "last")+"</after></set>")
	if len(b) != 10 || b[0] != "m10" || fin.Attr("complete") == "true" {
		t.Fatalf("second page %v %s", b, fin)
	}
	b, fin, _ = mamPage(t, bob, "", "<set xmlns='http://jabber.org/protocol/rsm'><max>10</max><after>"+rsmText(fin, "last")+"</after></set>")
	if strings.Join(b, ",") != "m20,m21,m22,m23,m24" || fin.Attr("complete") != "true" {
		t.Fatalf("last page %v %s", b, fin)
	}
	// Backwards from the end, the way clients catch up.
	b, fin, _ = mamPage(t, bob, "", "<set xmlns='http://jabber.org/protocol/rsm'><max>5</max><before/></set>")
	if strings.Join(b, ",") != "m20,m21,m22,m23,m24" || fin.Attr("complete") == "true" {
		t.Fatalf("last page backwards %v %s", b, fin)
	}
	b, _, _ = mamPage(t, bob, "", "<set xmlns='http://jabber.org/protocol/rsm'><max>3</max><before>"+rsmText(fin, "first")+"</before></set>")
	if strings.Join(b, ",") != "m17,m18,m19" {
		t.Fatalf("page before %v", b)
	}
	form := "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field><field var='with'><value>carol@localhost</value></field></x>"
	b, fin, _ = mamPage(t, bob, form, "")
	if strings.Join(b, ",") != "m04,m09,m14,m19,m24" || fin.Attr("complete") != "true" {
		t.Fatalf("with filter %v", b)
	}
	_, fin, _ = mamPage(t, bob, "", "<set xmlns='http://jabber.org/protocol/rsm'><after>nope</after></set>")
	wantError(t, fin, "item-not-found") // an error IQ comes back as fin
	_, fin, _ = mamPage(t, bob, "<x xmlns='jabber:x:data' type='submit'><field var='start'><value>yesterday</value></field></x>", "")
	wantError(t, fin, "bad-request")
	_, fin, _ = mamPage(t, bob, "", "<set xmlns='http://jabber.org/protocol/rsm'><max>-1</max></set>")
	wantError(t, fin, "bad-request")
	b, fin, _ = mamPage(t, bob, "", "<set xmlns='http://jabber.org/protocol/rsm'><max>0</max></set>")
	if len(b) != 0 || fin.Attr("complete") == "true" {
		t.Fatalf("max 0: %v %s", b, fin)
	}
}

// TestHistoryOnJoin: a joining member gets the last messages with delay
// stamps (20 by default), or what <history/> asks for.
func TestHistoryOnJoin(t *testing.T) {
	e := newEnv(t)
	alice := e.newGroup("bob@localhost", "carol@localhost", "dave@localhost")
	for i := 0; i < 30; i++ {
		alice.send("<message xmlns='jabber:client' to='%s' type='groupchat'><body>h%02d</body></message>", room, i)
	}
	history := func(c *client, extra string) []string {
		c.join(room, strings.Split(c.full.Local(), "@")[0], extra)
		var out []string
		for {
			el := c.next()
			if el.Child(xmlstream.NSClient, "subject") != nil {
				return out // the subject ends the history (§7.2.16)
			}
			if isGroupchat(el) {
				if d := el.Child(muc.NSDelay, "delay"); d == nil || d.Attr("from") != room {
					t.Fatalf("history without delay: %s", el)
				}
				out = append(out, el.ChildText(xmlstream.NSClient, "body"))
			}
		}
	}
	if h := history(e.login("bob@localhost/pc"), ""); len(h) != 20 || h[0] != "h10" || h[19] != "h29" {
		t.Fatalf("default history %v", h)
	}
	if h := history(e.login("carol@localhost/pc"), "<history maxstanzas='3'/>"); strings.Join(h, ",") != "h27,h28,h29" {
		t.Fatalf("maxstanzas=3: %v", h)
	}
	if h := history(e.login("dave@localhost/pc"), "<history maxchars='0'/>"); len(h) != 0 {
		t.Fatalf("maxchars=0: %v", h)
	}
}

// TestPersistenceAcrossRestart: rooms, configuration, affiliations,
// subject, archive and invite links survive a restart of the service.
func TestPersistenceAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	e := newEnvAt(t, dir, nil)
	alice := e.newGroup("bob@localhost")
	mustOK(t, alice.iq(room, "set", "<query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'><field var='muc#roomconfig_roomname'><value>Persisted</value></field></x></query>"))
	mustOK(t, alice.iq(room, "set", "<query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='outcast' jid='mallory@localhost'/></query>"))
	alice.send("<message xmlns='jabber:client' to='%s' type='groupchat'><subject>Kept</subject></message>", room)
	alice.send("<message xmlns='jabber:client' to='%s' type='groupchat'><body>before restart</body></message>", room)
	tok := mustOK(t, alice.iq(room, "set", "<create xmlns='urn:bluetick:muc:invite:0'/>")).FirstChild().Attr("token")
	alice.logout()
	e.st.Close()

	e2 := newEnvAt(t, dir, nil)
	bob := e2.login("bob@localhost/pc")
	p := bob.join(room, "Bob", "")
	if p.Attr("type") == "error" || item(p).Attr("affiliation") != "member" {
		t.Fatalf("member after restart: %s", p)
	}
	var got []string
	for {
		el := bob.next()
		if s := el.Child(xmlstream.NSClient, "subject"); s != nil {
			got = append(got, "subject:"+s.Text())
			break
		}
		if isGroupchat(el) {
			got = append(got, el.ChildText(xmlstream.NSClient, "body"))
		}
	}
	if strings.Join(got, "|") != "before restart|subject:Kept" {
		t.Fatalf("after restart: %v", got)
	}
	info := mustOK(t, bob.iq(room, "get", "<query xmlns='http://jabber.org/protocol/disco#info'/>"))
	if !strings.Contains(info.String(), "name='Persisted'") {
		t.Fatalf("config lost: %s", info)
	}
	wantError(t, e2.login("mallory@localhost/x").join(room, "M", ""), "forbidden")
	if p := e2.login("dave@localhost/x").join(room, "Dave", "<password>"+tok+"</password>"); item(p).Attr("affiliation") != "member" {
		t.Fatalf("invite link after restart: %s", p)
	}
}

// TestArchiveRetention: with muc.archive_retention set, older archived
// messages are deleted; newer ones stay.
func TestArchiveRetention(t *testing.T) {
	e := newEnvAt(t, t.TempDir(), func(c *config.Config) { c.MUC.ArchiveRetention.Duration = time.Hour })
	alice := e.newGroup()
	alice.send("<message xmlns='jabber:client' to='%s' type='groupchat'><body>fresh</body></message>", room)
	if _, err := e.st.ArchiveRoomMessage(context.Background(), room, store.RoomMessage{StanzaID: "old", Sender: "alice@localhost", Stored: time.Now().Add(-2 * time.Hour), Data: []byte("<message/>")}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	e.svc.Expire(ctx, time.Hour) // one sweep at once, then waits for ctx
	msgs, _, err := e.st.RoomMessages(context.Background(), room, store.RoomQuery{})
	if err != nil || len(msgs) != 1 || msgs[0].StanzaID == "old" {
		t.Fatalf("after expiry: %v %v", msgs, err)
	}
}
