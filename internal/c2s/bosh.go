package c2s

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"bluetick/internal/server"
	"bluetick/internal/stanza"
	"bluetick/internal/xmlstream"
)

// BOSH (XEP-0124) carries an XMPP stream (XEP-0206) over plain HTTP
// requests, for networks that let nothing else through. The client keeps
// up to `requests` HTTP requests open; the server answers each as soon as
// it has stanzas for the client, or after `wait` seconds with an empty
// body. Every request carries a rid one higher than the last, so the
// server processes bodies in order and can resend a lost answer.
const (
	nsBOSH  = "http://jabber.org/protocol/httpbind"
	nsXBOSH = "urn:xmpp:xbosh"

	boshMaxWait     = 60 * time.Second // longest hold we grant
	boshInactivity  = 60 * time.Second // silence (no request held) that ends the session
	boshRequests    = 2                // simultaneous requests: hold + 1
	boshHold        = 1
	boshMaxBodySize = 1 << 20
)

// boshTransport is one BOSH session seen as a stream transport: HTTP
// handlers feed it bodies and take its output; the stream loop reads and
// writes it like any other connection.
type boshTransport struct {
	svc    *Service
	sid    string
	secure bool
	remote netip.Addr
	wait   time.Duration
	onRead func()

	mu      sync.Mutex
	changed chan struct{}                // closed and replaced on every state change
	in      []xmlstream.Event            // events for the stream loop
	out     []*xmlstream.Element         // stanzas waiting for a request
	waiting []int64                      // rids of requests held, oldest first
	rid     int64                        // next rid to process
	early   map[int64]*xmlstream.Element // bodies that arrived before their turn
	sent    map[int64][]byte             // recent answers by rid, for resending
	authid  string
	closed  bool
	endErr  *stanza.StreamError // why we closed, told in the terminate body
	expiry  *time.Timer         // ends a session nobody polls

	// Parking (see parker): between requests the stream loop holds no
	// goroutine. idleAfter is set by the stream loop once bound; wake is
	// the parked loop's continuation, run by the request or the Close
	// that gives it something to read.
	idleAfter time.Duration
	wake      func()
}

// errBOSHIdle: the stream loop found no input for idleAfter.
var errBOSHIdle = errors.New("c2s: BOSH session idle")

// BOSHHandler serves XEP-0206 at /http-bind.
func (s *Service) BOSHHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		// Web clients on any origin: authentication is SASL, not cookies.
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Content-Type")
		h.Set("Access-Control-Max-Age", "86400")
		switch r.Method {
		case http.MethodOptions:
			return
		case http.MethodPost:
		default:
			h.Set("Allow", "POST, OPTIONS")
			http.Error(w, "BOSH (XEP-0206): POST <body/> elements here", http.StatusMethodNotAllowed)
			return
		}
		data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(max(s.lim.MaxElementBytes, 0))+boshMaxBodySize))
		if err != nil {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		depth := s.lim.MaxDepth
		if depth <= 0 {
			depth = xmlstream.DefaultMaxDepth
		}
		body, err := xmlstream.Parse(data, xmlstream.Limits{MaxElementBytes: len(data) + 1, MaxDepth: depth + 1})
		if err != nil || body.Space != nsBOSH || body.Name != "body" {
			http.Error(w, "expected <body xmlns='"+nsBOSH+"'/>", http.StatusBadRequest)
			return
		}
		rid, err := strconv.ParseInt(body.Attr("rid"), 10, 64)
		if err != nil || rid <= 0 || rid >= 1<<53 {
			http.Error(w, "rid must be a positive integer", http.StatusBadRequest)
			return
		}
		h.Set("Content-Type", "text/xml; charset=utf-8")
		sid := body.Attr("sid")
		if sid == "" {
			s.boshCreate(w, r, body, rid)
			return
		}
		v, ok := s.bosh.Load(sid)
		if !ok {
			w.Write(terminateBody("item-not-found", nil))
			return
		}
		v.(*boshTransport).request(w, r, body, rid)
	})
}

// terminateBody is a final answer with a BOSH condition (XEP-0124 §17)
// and, for remote-stream-error, the stream error itself.
func terminateBody(condition string, se *stanza.StreamError) []byte {
	b := []byte("<body xmlns='" + nsBOSH + "' type='terminate'")
	if condition != "" {
		b = append(b, " condition='"+condition+"'"...)
	}
	if se == nil {
		return append(b, "/>"...)
	}
	b = append(b, " xmlns:stream='http://etherx.jabber.org/streams'>"...)
	b = appendTopLevel(b, se.Element())
	return append(b, "</body>"...)
}

// boshCreate starts a session (XEP-0124 §7.1, XEP-0206 §5).
func (s *Service) boshCreate(w http.ResponseWriter, r *http.Request, body *xmlstream.Element, rid int64) {
	if to := body.Attr("to"); to != s.cfg.Domain {
		w.Write(terminateBody("host-unknown", nil))
		return
	}
	if v := body.Attr("ver"); v != "" && v[0] != '1' {
		w.Write(terminateBody("undefined-condition", nil))
		return
	}
	if !s.admit(r.RemoteAddr) {
		http.Error(w, "too many connections", http.StatusServiceUnavailable)
		return
	}
	wait := boshMaxWait
	if n, err := strconv.Atoi(body.Attr("wait")); err == nil && n >= 0 && time.Duration(n)*time.Second < wait {
		wait = time.Duration(n) * time.Second
	}
	t := &boshTransport{
		svc: s, sid: server.NewID(), secure: r.TLS != nil, wait: wait,
		changed: make(chan struct{}), rid: rid,
		early: map[int64]*xmlstream.Element{}, sent: map[int64][]byte{},
	}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		t.remote = ap.Addr().Unmap()
	}
	// Namespaced attributes keep the prefix as written; clients write
	// xmpp:version and xmpp:restart as XEP-0206 shows.
	header := xmlstream.New(xmlstream.NSStream, "stream", "to", body.Attr("to"), "version", "1.0")
	if v := body.Attr("xmpp:version"); v != "" {
		header.SetAttr("version", v)
	}
	t.in = append(t.in, xmlstream.Event{Kind: xmlstream.StreamStart, Elem: header, DefaultNS: xmlstream.NSClient})
	t.rid = rid + 1
	t.expiry = time.AfterFunc(boshInactivity, t.expire)
	s.bosh.Store(t.sid, t)
	s.active.Add(1)
	st := newStream(s, t)
	t.onRead = st.touch
	st.done = func() {
		s.active.Add(-1)
		s.bosh.Delete(t.sid)
	}
	go st.run()
	t.respond(w, r, rid, true)
}

// request takes one body of an existing session: its stanzas go to the
// stream loop in rid order, and the request is answered with whatever the
// client should get next.
func (t *boshTransport) request(w http.ResponseWriter, r *http.Request, body *xmlstream.Element, rid int64) {
	t.mu.Lock()
	if b, ok := t.sent[rid]; ok {
		// The client lost our answer and asks again (XEP-0124 §14.3).
		t.mu.Unlock()
		w.Write(b)
		return
	}
	if rid < t.rid || rid >= t.rid+boshRequests+1 || t.closed {
		cond, se := "item-not-found", (*stanza.StreamError)(nil)
		if t.closed && t.endErr != nil {
			cond, se = "remote-stream-error", t.endErr
		} else if t.closed {
			cond = ""
		}
		t.mu.Unlock()
		w.Write(terminateBody(cond, se))
		return
	}
	t.early[rid] = body
	for {
		b, ok := t.early[t.rid]
		if !ok {
			break
		}
		delete(t.early, t.rid)
		t.rid++
		t.take(b)
	}
	t.signal()
	t.unparkLocked()
	t.mu.Unlock()
	if t.onRead != nil {
		t.onRead()
	}
	t.respond(w, r, rid, false)
}

// take turns one body into stream events (t.mu held).
func (t *boshTransport) take(b *xmlstream.Element) {
	if b.Attr("xmpp:restart") == "true" {
		t.in = append(t.in, xmlstream.Event{Kind: xmlstream.StreamStart,
			Elem: xmlstream.New(xmlstream.NSStream, "stream", "to", t.svc.cfg.Domain, "version", "1.0"), DefaultNS: xmlstream.NSClient})
	}
	for _, el := range b.Elements() {
		unBOSH(el)
		t.in = append(t.in, xmlstream.Event{Kind: xmlstream.ElementEvent, Elem: el})
	}
	if b.Attr("type") == "terminate" {
		t.in = append(t.in, xmlstream.Event{Kind: xmlstream.StreamEnd})
	}
}

// unBOSH moves elements that inherited the body's default namespace into
// jabber:client, where XEP-0206 §7 says they belong.
func unBOSH(el *xmlstream.Element) {
	if el.Space != nsBOSH {
		return
	}
	el.Space = xmlstream.NSClient
	for _, c := range el.Children {
		if c.Elem != nil {
			unBOSH(c.Elem)
		}
	}
}

// signal wakes everyone waiting on the session (t.mu held).
func (t *boshTransport) signal() {
	close(t.changed)
	t.changed = make(chan struct{})
}

// respond holds the request until there is output, a newer request needs
// the slot, the wait ends or the session closes, then answers it.
func (t *boshTransport) respond(w http.ResponseWriter, r *http.Request, rid int64, create bool) {
	timer := time.NewTimer(t.wait)
	defer timer.Stop()
	t.mu.Lock()
	t.waiting = append(t.waiting, rid)
	t.expiry.Stop()
	for {
		// The creation answer waits for the stream features, which
		// clients expect in it (XEP-0206 §5); any other request is
		// answered as soon as there is output, or when a newer one
		// arrives and this is the oldest held (XEP-0124 §10).
		ready := len(t.out) > 0 && (!create || t.authid != "")
		superseded := len(t.waiting) > boshHold && t.waiting[0] == rid
		if ready || t.closed || superseded {
			break
		}
		ch := t.changed
		t.mu.Unlock()
		expired := false
		select {
		case <-ch:
		case <-timer.C:
			expired = true
		case <-r.Context().Done():
			expired = true
		}
		t.mu.Lock()
		if expired {
			break
		}
	}
	for i, x := range t.waiting {
		if x == rid {
			t.waiting = append(t.waiting[:i], t.waiting[i+1:]...)
			break
		}
	}
	if len(t.waiting) == 0 && !t.closed {
		t.expiry.Reset(boshInactivity)
	}
	var b []byte
	switch {
	case len(t.out) == 0 && t.closed:
		cond := ""
		if t.endErr != nil {
			cond = "remote-stream-error"
		}
		b = terminateBody(cond, t.endErr)
	default:
		b = append(b, "<body xmlns='"+nsBOSH+"' xmlns:stream='"+xmlstream.NSStream+"'"...)
		if create {
			b = append(b, " sid='"+t.sid+"' wait='"+strconv.Itoa(int(t.wait/time.Second))+
				"' requests='"+strconv.Itoa(boshRequests)+"' hold='"+strconv.Itoa(boshHold)+
				"' inactivity='"+strconv.Itoa(int(boshInactivity/time.Second))+
				"' polling='1' ver='1.11' from='"+t.svc.cfg.Domain+"' authid='"+t.authid+
				"' xmpp:version='1.0' xmlns:xmpp='"+nsXBOSH+"'"...)
		}
		b = append(b, '>')
		for _, el := range t.out {
			if el.Space == xmlstream.NSStream {
				b = appendTopLevel(b, el)
			} else {
				b = xmlstream.Append(b, el, "") // with xmlns='jabber:client'
			}
		}
		clear(t.out)
		t.out = t.out[:0]
		b = append(b, "</body>"...)
	}
	t.sent[rid] = b
	delete(t.sent, rid-boshRequests-1)
	t.signal()
	t.mu.Unlock()
	w.Write(b)
}

// expire ends a session whose client stopped polling.
func (t *boshTransport) expire() {
	t.mu.Lock()
	if len(t.waiting) > 0 || t.closed {
		t.mu.Unlock()
		return
	}
	t.mu.Unlock()
	t.Close(&stanza.StreamError{Condition: "connection-timeout", Text: "no BOSH request for too long"})
}

func (t *boshTransport) Next() (xmlstream.Event, error) {
	var timeout <-chan time.Time
	if t.idleAfter > 0 {
		tm := time.NewTimer(t.idleAfter)
		defer tm.Stop()
		timeout = tm.C
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for len(t.in) == 0 {
		if t.closed {
			return xmlstream.Event{}, net.ErrClosed
		}
		ch := t.changed
		t.mu.Unlock()
		select {
		case <-ch:
		case <-timeout:
			t.mu.Lock()
			if len(t.in) == 0 && !t.closed {
				return xmlstream.Event{}, errBOSHIdle
			}
			continue
		}
		t.mu.Lock()
	}
	ev := t.in[0]
	t.in[0] = xmlstream.Event{}
	t.in = t.in[1:]
	return ev, nil
}

func (t *boshTransport) Restart()           {}
func (t *boshTransport) Secure() bool       { return t.secure }
func (t *boshTransport) CanStartTLS() bool  { return false }
func (t *boshTransport) Remote() netip.Addr { return t.remote }
func (t *boshTransport) Kind() string       { return "bosh" }
func (t *boshTransport) StartTLS(*tls.Config) error {
	return errors.New("c2s: no STARTTLS on BOSH")
}

// SendHeader: BOSH has no stream header; its id travels as authid in the
// session creation answer.
func (t *boshTransport) SendHeader(from, id, lang string) error {
	t.mu.Lock()
	t.authid = id
	t.mu.Unlock()
	return nil
}

func (t *boshTransport) Write(els []*xmlstream.Element) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return net.ErrClosed
	}
	t.out = append(t.out, els...)
	t.signal()
	return nil
}

func (t *boshTransport) Close(se *stanza.StreamError) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	t.closed = true
	t.endErr = se
	t.expiry.Stop()
	t.signal()
	t.unparkLocked()
}

// armIdle lets the stream loop's next read give up after d without input
// (then it parks: a BOSH session between requests holds no goroutine).
func (t *boshTransport) armIdle(d time.Duration) { t.idleAfter = d }

func (t *boshTransport) idle(err error) bool { return err == errBOSHIdle }

// park leaves wake to the request (or Close) that brings input; it
// reports false when there is some already.
func (t *boshTransport) park(wake func()) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.in) > 0 || t.closed {
		return false
	}
	t.wake = wake
	return true
}

// unparkLocked continues a parked stream loop that now has something to
// read (t.mu held).
func (t *boshTransport) unparkLocked() {
	if w := t.wake; w != nil && (len(t.in) > 0 || t.closed) {
		t.wake = nil
		w()
	}
}
