package c2s

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"bluetick/internal/xmlstream"
)

// boshClient posts bodies to a BOSH endpoint the way a browser would.
type boshClient struct {
	t   *testing.T
	url string
	hc  *http.Client
	sid string
	rid int64
}

func (c *boshClient) raw(body string) (int, []byte) {
	c.t.Helper()
	resp, err := c.hc.Post(c.url, "text/xml; charset=utf-8", strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// post sends payload in the next body and parses the answer.
func (c *boshClient) post(attrs, payload string) *xmlstream.Element {
	c.t.Helper()
	c.rid++
	sid := ""
	if c.sid != "" {
		sid = " sid='" + c.sid + "'"
	}
	_, b := c.raw(fmt.Sprintf("<body xmlns='http://jabber.org/protocol/httpbind' rid='%d'%s %s>%s</body>", c.rid, sid, attrs, payload))
	el, err := xmlstream.Parse(b, xmlstream.Limits{})
	if err != nil {
		c.t.Fatalf("answer %q: %v", b, err)
	}
	return el
}

func TestBOSHSession(t *testing.T) {
	srv := startServer(t, nil)
	hs := httptest.NewTLSServer(srv.svc.BOSHHandler())
	defer hs.Close()
	c := &boshClient{t: t, url: hs.URL, hc: hs.Client(), rid: 1000}

	b := c.post("to='localhost' wait='2' hold='1' ver='1.6' xmpp:version='1.0' xmlns:xmpp='urn:xmpp:xbosh'", "")
	c.sid = b.Attr("sid")
	if c.sid == "" || b.Attr("authid") == "" || b.Attr("xmpp:version") != "1.0" {
		t.Fatalf("creation answer: %v", b)
	}
	f := b.Child(xmlstream.NSStream, "features")
	if f == nil || !strings.Contains(string(xmlstream.Append(nil, f, "")), ">PLAIN<") {
		t.Fatalf("no PLAIN in the creation answer's features: %v", b)
	}
	creds := base64.StdEncoding.EncodeToString([]byte("\x00bob\x00pw"))
	if b := c.post("", "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"+creds+"</auth>"); b.Child("urn:ietf:params:xml:ns:xmpp-sasl", "success") == nil {
		t.Fatalf("auth: %v", b)
	}
	if b := c.post("xmpp:restart='true' xmlns:xmpp='urn:xmpp:xbosh'", ""); b.Child(xmlstream.NSStream, "features").Child(nsBind, "bind") == nil {
		t.Fatalf("restart: %v", b)
	}
	b = c.post("", "<iq xmlns='jabber:client' type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>web</resource></bind></iq>")
	if iq := b.Child(xmlstream.NSClient, "iq"); iq == nil || iq.Attr("type") != "result" {
		t.Fatalf("bind: %v", b)
	}
	if b := c.post("", "<presence xmlns='jabber:client'/>"); b.Child(xmlstream.NSClient, "presence") == nil {
		t.Fatalf("own presence not reflected: %v", b)
	}

	// A held request is answered when a message arrives.
	alice := dial(t, srv.addr)
	alice.login("alice", "pc")
	got := make(chan *xmlstream.Element, 1)
	go func() { got <- c.post("", "") }()
	time.Sleep(100 * time.Millisecond)
	alice.send("<message to='bob@localhost/web' type='chat' id='m1'><body>over http</body></message>")
	select {
	case b := <-got:
		m := b.Child(xmlstream.NSClient, "message")
		if m == nil || m.ChildText(xmlstream.NSClient, "body") != "over http" {
			t.Fatalf("held request answered with %v", b)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("held request not answered")
	}

	// A lost answer is sent again for the same rid.
	c.rid--
	again := c.post("", "")
	if again.Child(xmlstream.NSClient, "message") == nil {
		t.Fatalf("resent answer differs: %v", again)
	}

	// Sending over BOSH reaches a TCP client.
	alice.presence()
	alice.expect("presence")
	c.post("", "<message xmlns='jabber:client' to='alice@localhost/pc' type='chat' id='m2'><body>back</body></message>")
	if m := alice.expect("message"); m.Attr("from") != "bob@localhost/web" {
		t.Fatalf("alice got %v", m)
	}

	// Terminate ends the session; the sid is gone afterwards.
	c.post("type='terminate'", "<presence xmlns='jabber:client' type='unavailable'/>")
	waitFor(t, "bosh session gone", func() bool { _, ok := srv.svc.bosh.Load(c.sid); return !ok })
	if b := c.post("", ""); b.Attr("type") != "terminate" {
		t.Fatalf("request to an ended session: %v", b)
	}
}

func TestBOSHBadRequests(t *testing.T) {
	srv := startServer(t, nil)
	hs := httptest.NewTLSServer(srv.svc.BOSHHandler())
	defer hs.Close()
	c := &boshClient{t: t, url: hs.URL, hc: hs.Client()}
	for _, tc := range []struct {
		body string
		code int
		cond string
	}{
		{"not xml", 400, ""},
		{"<body xmlns='wrong' rid='1'/>", 400, ""},
		{"<body xmlns='http://jabber.org/protocol/httpbind' rid='x'/>", 400, ""},
		{"<body xmlns='http://jabber.org/protocol/httpbind' rid='5' sid='nope'/>", 200, "item-not-found"},
		{"<body xmlns='http://jabber.org/protocol/httpbind' rid='5' to='example.org'/>", 200, "host-unknown"},
	} {
		code, b := c.raw(tc.body)
		if code != tc.code || (tc.cond != "" && !strings.Contains(string(b), "condition='"+tc.cond+"'")) {
			t.Errorf("%q: got %d %q, want %d %s", tc.body, code, b, tc.code, tc.cond)
		}
	}
	// A rid far ahead of the window ends nothing but is refused.
	c.rid = 10
	b := c.post("to='localhost' wait='1'", "")
	c.sid = b.Attr("sid")
	c.rid += 10
	if b := c.post("", ""); b.Attr("condition") != "item-not-found" {
		t.Fatalf("rid out of window: %v", b)
	}
}

// Arbitrary bodies posted to /http-bind get an HTTP or BOSH error, never a
// crash; a session they create is ended with the test.
func FuzzBOSHBody(f *testing.F) {
	f.Add([]byte("<body xmlns='http://jabber.org/protocol/httpbind' rid='1' to='localhost' wait='0' hold='1'/>"))
	f.Add([]byte("<body xmlns='http://jabber.org/protocol/httpbind' rid='2' sid='x' type='terminate'/>"))
	f.Add([]byte("<body xmlns='http://jabber.org/protocol/httpbind' rid='9007199254740993' to='localhost'/>"))
	f.Add([]byte("<body xmlns='wrong'/>"))
	srv := startServer(f, nil)
	h := srv.svc.BOSHHandler()
	f.Fuzz(func(t *testing.T, data []byte) {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("POST", "/http-bind", strings.NewReader(string(data)))
		h.ServeHTTP(w, r)
		if w.Code != 200 && w.Code != 400 && w.Code != 413 && w.Code != 503 {
			t.Fatalf("status %d for %q", w.Code, data)
		}
	})
}
