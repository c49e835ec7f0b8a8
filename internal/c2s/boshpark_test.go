package c2s

import (
	"encoding/base64"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"bluetick/internal/jid"
	"bluetick/internal/xmlstream"
)

// boshLogin creates a BOSH session for user and binds resource res.
func boshLogin(t *testing.T, url string, hs *httptest.Server, user, res string) *boshClient {
	t.Helper()
	c := &boshClient{t: t, url: url, hc: hs.Client(), rid: 1000}
	b := c.post("to='localhost' wait='5' hold='1' ver='1.6' xmpp:version='1.0' xmlns:xmpp='urn:xmpp:xbosh'", "")
	c.sid = b.Attr("sid")
	creds := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00pw"))
	if b := c.post("", "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"+creds+"</auth>"); b.Child("urn:ietf:params:xml:ns:xmpp-sasl", "success") == nil {
		t.Fatalf("auth: %v", b)
	}
	c.post("xmpp:restart='true' xmlns:xmpp='urn:xmpp:xbosh'", "")
	b = c.post("", "<iq xmlns='jabber:client' type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>"+res+"</resource></bind></iq>")
	if iq := b.Child(xmlstream.NSClient, "iq"); iq == nil || iq.Attr("type") != "result" {
		t.Fatalf("bind: %v", b)
	}
	return c
}

// A BOSH session waiting between requests holds no goroutine: its stream
// loop parks, a request with stanzas wakes it, a message for it answers
// the request held meanwhile, and terminate or a server-side close ends
// it from the parked state.
func TestBOSHSessionParksBetweenRequests(t *testing.T) {
	srv := startServer(t, nil)
	if !srv.svc.park {
		t.Skip("parking needs epoll")
	}
	srv.svc.parkAfter = 50 * time.Millisecond
	hs := httptest.NewTLSServer(srv.svc.BOSHHandler())
	defer hs.Close()
	alice := dial(t, srv.addr)
	alice.login("alice", "pc")
	alice.presence()
	alice.expect("presence")

	c := boshLogin(t, hs.URL, hs, "bob", "web")
	waitFor(t, "both parked", func() bool { return srv.svc.Parked() == 2 })
	runtime.GC()
	base := runtime.NumGoroutine()
	others := make([]*boshClient, 5)
	for i := range others {
		others[i] = boshLogin(t, hs.URL, hs, "carol", "r"+string(rune('a'+i)))
	}
	waitFor(t, "all parked", func() bool { return srv.svc.Parked() == 2+int64(len(others)) })
	hs.Client().CloseIdleConnections()
	var extra int
	waitFor(t, "no goroutine for parked BOSH sessions", func() bool {
		runtime.GC()
		extra = runtime.NumGoroutine() - base
		return extra <= 1
	})

	t.Logf("%d parked BOSH sessions, %d goroutines more than one", len(others), extra)
	// Input wakes the parked loop.
	c.post("", "<message xmlns='jabber:client' to='alice@localhost/pc' type='chat' id='m1'><body>from bosh</body></message>")
	if m := alice.expect("message"); m.Attr("id") != "m1" || m.Attr("from") != "bob@localhost/web" {
		t.Fatalf("alice got %v", m)
	}
	waitFor(t, "parked again", func() bool { return srv.svc.Parked() == 2+int64(len(others)) })

	// A message routed to the parked session answers the held request.
	got := make(chan *xmlstream.Element, 1)
	go func() { got <- c.post("", "") }()
	alice.send("<message to='bob@localhost/web' type='chat' id='m2'><body>to bosh</body></message>")
	select {
	case b := <-got:
		if m := b.Child(xmlstream.NSClient, "message"); m == nil || m.Attr("id") != "m2" {
			t.Fatalf("held request answered with %v", b)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("held request not answered")
	}

	// The server closing a parked session (a new login of the resource)
	// ends it.
	repl := dial(t, srv.addr)
	repl.login("carol", "ra")
	waitFor(t, "replaced BOSH session gone", func() bool { _, ok := srv.svc.bosh.Load(others[0].sid); return !ok })

	// Terminate from the parked state.
	waitFor(t, "parked before terminate", func() bool { return srv.svc.Parked() >= 2 })
	c.post("type='terminate'", "")
	waitFor(t, "bosh session gone", func() bool { _, ok := srv.svc.bosh.Load(c.sid); return !ok })
	waitFor(t, "bob offline", func() bool { return !srv.im.Router.Online(jid.MustParse("bob@localhost")) })
}
