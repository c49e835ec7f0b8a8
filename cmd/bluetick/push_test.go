package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"bluetick/internal/config"
	"bluetick/internal/dataform"
	"bluetick/internal/jid"
	"bluetick/internal/muc"
	"bluetick/internal/server"
	"bluetick/internal/session"
	"bluetick/internal/store/sqlite"
	"bluetick/internal/xmlstream"
	"bluetick/internal/xmpptest"
)

// The wiring of serve: a group message wakes, through the push gateway, a
// member who is not in the room — here bob, who registered a webhook
// device, enabled push and went offline.
func TestGroupMessagePushesAbsentMember(t *testing.T) {
	var mu sync.Mutex
	var hits []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		hits = append(hits, string(b))
		mu.Unlock()
	}))
	defer hook.Close()

	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Push.Enabled = true
	cfg.Push.MinInterval.Duration = 0
	cfg.Push.Webhook.Secret = "group-push-secret"
	cfg.Push.Webhook.AllowedURLs = hook.URL + "/"
	cfg.Push.AllowPrivate = []string{"127.0.0.1"} // the test's webhook listens on loopback
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(cfg.DBPath())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	for _, u := range []string{"alice", "bob"} {
		if err := st.CreateUser(ctx, u, nil); err != nil {
			t.Fatal(err)
		}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	im := server.New(cfg, st, log)
	groups, err := muc.New(ctx, cfg.MUCDomain(), cfg.MUC, st, im, log)
	if err != nil {
		t.Fatal(err)
	}
	im.RegisterService(cfg.MUCDomain(), "Groups", groups)
	stop, err := startPush(cfg, im, groups, newMetrics(), log)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()

	connect := func(full string) (*session.Session, *xmpptest.Sink, func(string)) {
		s := session.New(server.NewID(), jid.MustParse(full), 1000, im.Hooks())
		w := &xmpptest.Sink{}
		s.Attach(w)
		im.Bound(ctx, s)
		send := func(raw string) {
			el, err := xmlstream.Parse([]byte(raw), xmlstream.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			im.Handle(ctx, s, el)
		}
		return s, w, send
	}
	result := func(w *xmpptest.Sink, id string) *xmlstream.Element {
		r := w.WaitFor(t, "the answer to "+id, func(el *xmlstream.Element) bool { return el.Name == "iq" && el.Attr("id") == id })
		if r.Attr("type") != "result" {
			t.Fatalf("%s: %s", id, r)
		}
		return r
	}

	bob, bw, bobSend := connect("bob@localhost/phone")
	bobSend(`<iq xmlns='jabber:client' type='set' id='reg' to='push.localhost'><command xmlns='http://jabber.org/protocol/commands' node='register-push-webhook' action='execute'><x xmlns='jabber:x:data' type='submit'><field var='url'><value>` + hook.URL + `/bob</value></field><field var='device-id'><value>phone</value></field></x></command></iq>`)
	form, err := dataform.Parse(result(bw, "reg").Child("http://jabber.org/protocol/commands", "command").Child(dataform.NS, "x"))
	if err != nil {
		t.Fatal(err)
	}
	bobSend(`<iq xmlns='jabber:client' type='set' id='en'><enable xmlns='urn:xmpp:push:0' jid='push.localhost' node='` + form.Get("node") + `'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field><field var='secret'><value>` + form.Get("secret") + `</value></field></x></enable></iq>`)
	result(bw, "en")
	bob.Detach()
	im.End(ctx, bob)

	_, aw, aliceSend := connect("alice@localhost/pc")
	aliceSend(`<presence xmlns='jabber:client'/>`)
	const room = "team@groups.localhost"
	aliceSend(`<presence xmlns='jabber:client' to='` + room + `/Alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>`)
	aw.WaitFor(t, "alice in the room", func(el *xmlstream.Element) bool { return el.Name == "presence" && el.Attr("from") == room+"/Alice" })
	aliceSend(`<iq xmlns='jabber:client' type='set' id='cfg' to='` + room + `'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>`)
	result(aw, "cfg")
	aliceSend(`<iq xmlns='jabber:client' type='set' id='add' to='` + room + `'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='member' jid='bob@localhost'/></query></iq>`)
	result(aw, "add")
	if len(hitsOf(&mu, &hits)) != 0 {
		t.Fatalf("pushes before any message: %v", hits)
	}
	aliceSend(`<message xmlns='jabber:client' to='` + room + `' type='groupchat' id='g1'><body>meeting at noon</body></message>`)
	deadline := time.Now().Add(5 * time.Second)
	for len(hitsOf(&mu, &hits)) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	got := hitsOf(&mu, &hits)
	if len(got) != 1 {
		t.Fatalf("webhook got %d pushes for bob, want 1", len(got))
	}
	if strings.Contains(got[0], "noon") || strings.Contains(got[0], "alice") {
		t.Errorf("the push leaks the message or its sender: %s", got[0])
	}
}

func hitsOf(mu *sync.Mutex, hits *[]string) []string {
	mu.Lock()
	defer mu.Unlock()
	return append([]string(nil), *hits...)
}

// TestWebPushLoopbackRefusedThroughXMPP: through a real session, a Web
// Push registration whose endpoint names the server's loopback (in any
// spelling) gets the command's not-acceptable error with the reason, so
// the client never enables push with it.
func TestWebPushLoopbackRefusedThroughXMPP(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Push.Enabled = true
	cfg.Push.WebPush.Enabled = true
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(cfg.DBPath())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	if err := st.CreateUser(ctx, "bob", nil); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	im := server.New(cfg, st, log)
	mets := newMetrics()
	stop, err := startPush(cfg, im, nil, mets, log)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	s := session.New(server.NewID(), jid.MustParse("bob@localhost/phone"), 1000, im.Hooks())
	w := &xmpptest.Sink{}
	s.Attach(w)
	im.Bound(ctx, s)
	defer im.End(ctx, s)
	key := "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
	for i, ep := range []string{"https://127.0.0.1:8443/push", "https://localhost/push", "https://[::ffff:127.0.0.1]/push", "https://127.1/push", "https://bob:x@127.0.0.1/push"} {
		id := fmt.Sprintf("reg%d", i)
		el, err := xmlstream.Parse([]byte(`<iq xmlns='jabber:client' type='set' id='`+id+`' to='push.localhost'><command xmlns='http://jabber.org/protocol/commands' node='register-push-webpush' action='execute'><x xmlns='jabber:x:data' type='submit'>`+
			`<field var='endpoint'><value>`+ep+`</value></field><field var='p256dh'><value>`+key+`</value></field><field var='auth'><value>BTBZMqHH6r4Tts7J_aSIgg</value></field></x></command></iq>`), xmlstream.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		im.Handle(ctx, s, el)
		r := w.WaitFor(t, "the answer to "+id, func(el *xmlstream.Element) bool { return el.Name == "iq" && el.Attr("id") == id })
		e := r.Child(xmlstream.NSClient, "error")
		if r.Attr("type") != "error" || e == nil || e.Child("urn:ietf:params:xml:ns:xmpp-stanzas", "not-acceptable") == nil ||
			!strings.Contains(e.ChildText("urn:ietf:params:xml:ns:xmpp-stanzas", "text"), "endpoint refused") {
			t.Errorf("%s: %s, want not-acceptable with the reason", ep, r)
		}
	}
	rec := httptest.NewRecorder()
	mets.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if !strings.Contains(rec.Body.String(), `bluetick_push_refused_total{at="register",provider="webpush",reason="loopback"} 3`) {
		t.Errorf("metrics:\n%s", rec.Body.String())
	}
}
