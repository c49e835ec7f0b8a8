package upload

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"bluetick/internal/config"
	"bluetick/internal/jid"
	"bluetick/internal/server"
	"bluetick/internal/session"
	"bluetick/internal/store/sqlite"
	"bluetick/internal/xmlstream"
	"bluetick/internal/xmpptest"
)

// iqServer is a real IM server with the upload service registered, and a
// bound session of alice that sends IQs and reads the answers as XML.
func iqServer(t *testing.T, register bool) func(xml string) *xmlstream.Element {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	st, err := sqlite.Open(cfg.DBPath())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, u := range []string{"alice", "bob"} {
		st.CreateUser(context.Background(), u, nil)
	}
	srv := server.New(cfg, st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if register {
		d, _ := NewDisk(t.TempDir())
		lim := defaultLimits()
		lim.MaxFileSize = 5000
		svc, err := New(d, testSecret, "https://media.example.com", lim, nil)
		if err != nil {
			t.Fatal(err)
		}
		svc.Register(srv.Mux())
	}
	sess := session.New(server.NewID(), jid.MustParse("alice@localhost/phone"), 1000, srv.Hooks())
	w := &xmpptest.Sink{}
	sess.Attach(w)
	t.Cleanup(sess.Detach)
	srv.Bound(context.Background(), sess)
	return func(s string) *xmlstream.Element {
		el, err := xmlstream.Parse([]byte(s), xmlstream.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		srv.Handle(context.Background(), sess, el)
		for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if r := w.TakeFirst(func(r *xmlstream.Element) bool { return r.Name == "iq" && r.Attr("id") == el.Attr("id") }); r != nil {
				return r
			}
		}
		t.Fatalf("no answer to %s", s)
		return nil
	}
}

func TestIQThroughServer(t *testing.T) {
	ask := iqServer(t, true)
	r := ask(`<iq xmlns='jabber:client' type='get' id='d1' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`)
	x := r.String()
	for _, want := range []string{`var='urn:xmpp:http:upload:0'`, `category='store'`, `type='file'`, `<value>urn:xmpp:http:upload:0</value>`, `var='max-file-size'`, `<value>5000</value>`} {
		if !strings.Contains(x, want) {
			t.Errorf("domain disco#info lacks %s: %s", want, x)
		}
	}
	r = ask(`<iq xmlns='jabber:client' type='get' id='d2'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`)
	if strings.Contains(r.String(), NS) {
		t.Errorf("the account's disco#info advertises upload: %s", r)
	}

	r = ask(`<iq xmlns='jabber:client' type='get' id='s1' to='localhost'><request xmlns='urn:xmpp:http:upload:0' filename='très cool.jpg' size='2000' content-type='image/jpeg'/></iq>`)
	slot := r.Child(NS, "slot")
	if r.Attr("type") != "result" || slot == nil {
		t.Fatalf("slot request: %s", r)
	}
	put := slot.Child(NS, "put")
	if !strings.HasPrefix(put.Attr("url"), "https://media.example.com/upload/") || !strings.HasSuffix(put.Attr("url"), "/tr%C3%A8s%20cool.jpg") {
		t.Errorf("put url %q", put.Attr("url"))
	}
	if h := put.Child(NS, "header"); h == nil || h.Attr("name") != "Authorization" || !strings.HasPrefix(h.Text(), "Bearer v1.") {
		t.Errorf("put header: %s", put)
	}

	r = ask(`<iq xmlns='jabber:client' type='get' id='s2' to='localhost'><request xmlns='urn:xmpp:http:upload:0' filename='big' size='5001'/></iq>`)
	x = r.String()
	if r.Attr("type") != "error" || !strings.Contains(x, "<not-acceptable") || !strings.Contains(x, `<file-too-large xmlns='urn:xmpp:http:upload:0'><max-file-size>5000</max-file-size></file-too-large>`) {
		t.Errorf("oversize: %s", x)
	}
	r = ask(`<iq xmlns='jabber:client' type='get' id='s3' to='bob@localhost'><request xmlns='urn:xmpp:http:upload:0' filename='a' size='1'/></iq>`)
	if r.Attr("type") != "error" || !strings.Contains(r.String(), "service-unavailable") {
		t.Errorf("slot request to an account: %s", r)
	}
	r = ask(`<iq xmlns='jabber:client' type='set' id='s4' to='localhost'><request xmlns='urn:xmpp:http:upload:0' filename='a' size='1'/></iq>`)
	if r.Attr("type") != "error" {
		t.Errorf("slot request as set: %s", r)
	}
}

func TestNotAdvertisedWhenOff(t *testing.T) {
	ask := iqServer(t, false)
	r := ask(`<iq xmlns='jabber:client' type='get' id='d1' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`)
	if strings.Contains(r.String(), NS) || strings.Contains(r.String(), "store") {
		t.Errorf("disco#info advertises upload without the service: %s", r)
	}
	r = ask(`<iq xmlns='jabber:client' type='get' id='s1' to='localhost'><request xmlns='urn:xmpp:http:upload:0' filename='a' size='1'/></iq>`)
	if r.Attr("type") != "error" || !strings.Contains(r.String(), "service-unavailable") {
		t.Errorf("slot request without the service: %s", r)
	}
}
