package loadgen

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Namespaces the client speaks.
const (
	nsTLS      = "urn:ietf:params:xml:ns:xmpp-tls"
	nsSASL     = "urn:ietf:params:xml:ns:xmpp-sasl"
	nsBind     = "urn:ietf:params:xml:ns:xmpp-bind"
	nsSession  = "urn:ietf:params:xml:ns:xmpp-session"
	nsSM       = "urn:xmpp:sm:3"
	nsReceipts = "urn:xmpp:receipts"
	nsRegister = "jabber:iq:register"
	nsPing     = "urn:xmpp:ping"
)

// Options say how a client connects; one Options is shared by all clients.
type Options struct {
	Server string // host:port
	Domain string // XMPP domain (the 'to' of the stream)
	TLS    string // "starttls" (required), "none" or "direct"
	// Transport is "tcp" (or "") or "websocket" (RFC 7395; Server is then
	// a ws:// or wss:// URL or host:port, see WebSocketURL).
	Transport string
	Mech      string        // SASL mechanism; "" = SCRAM-SHA-1
	Resource  string        // resource to bind ("" = bench)
	SM        bool          // enable XEP-0198 when offered
	Timeout   time.Duration // bound on each negotiation step
	Sources   []net.IP      // local addresses, used round-robin
	// Curves limits the TLS key exchanges offered (nil: Go's default, which
	// includes post-quantum X25519MLKEM768 that OpenSSL 3.0 peers lack).
	Curves []tls.CurveID

	next atomic.Uint64

	// Bytes on the wire (TLS records included), all connections.
	BytesIn, BytesOut atomic.Int64
}

// countConn counts the bytes a connection reads and writes.
type countConn struct {
	net.Conn
	opt *Options
}

func (c countConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.opt.BytesIn.Add(int64(n))
	return n, err
}

func (c countConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.opt.BytesOut.Add(int64(n))
	return n, err
}

func (o *Options) dialer() *net.Dialer {
	d := &net.Dialer{Timeout: o.timeout()}
	if n := len(o.Sources); n > 0 {
		i := o.next.Add(1) % uint64(n)
		d.LocalAddr = &net.TCPAddr{IP: o.Sources[i]}
	}
	return d
}

func (o *Options) timeout() time.Duration {
	if o.Timeout > 0 {
		return o.Timeout
	}
	return 30 * time.Second
}

// ParseCurves reads "x25519,p256" ("" or "default": Go's default list).
func ParseCurves(s string) ([]tls.CurveID, error) {
	if s == "" || s == "default" {
		return nil, nil
	}
	var out []tls.CurveID
	for _, n := range strings.Split(s, ",") {
		switch strings.ToLower(strings.TrimSpace(n)) {
		case "x25519":
			out = append(out, tls.X25519)
		case "p256":
			out = append(out, tls.CurveP256)
		case "p384":
			out = append(out, tls.CurveP384)
		case "x25519mlkem768":
			out = append(out, tls.X25519MLKEM768)
		default:
			return nil, fmt.Errorf("unknown TLS key exchange %q (use x25519, p256, p384, x25519mlkem768 or default)", n)
		}
	}
	return out, nil
}

// Conn is one client connection.
type Conn struct {
	opt        *Options
	User       string
	JID        string // full JID after bind
	TLSVersion uint16 // 0 when the stream is not encrypted
	TLSCurve   tls.CurveID
	SM         bool // stream management enabled

	nc   net.Conn
	raw  net.Conn // the TCP connection under TLS and the counters (drop closes it)
	from string   // 'from' of the stream headers sent ("" = none)
	// early goes with the first stream header inside TLS (dialExtra).
	early string
	br    *bufio.Reader
	r     *reader
	wmu   sync.Mutex
	bw    *bufio.Writer
	smIn  uint32 // stanzas handled (reader goroutine only)
	// Sender's ✓: stanzas sent since <enabled/> and the send times of
	// those whose ack is timed (guarded by wmu); AckLat gets the time
	// from sending each to the server's <a/> covering it (reader only).
	smOut  uint32
	timed  []timedStanza
	AckLat []int64
	stop   func() bool
	done   atomic.Bool
	ws     bool // over WebSocket: one element per write (RFC 7395 §3.3.3)
}

// PhaseError says in which step a login failed.
type PhaseError struct {
	Phase string
	Err   error
}

func (e *PhaseError) Error() string { return e.Phase + ": " + e.Err.Error() }
func (e *PhaseError) Unwrap() error { return e.Err }

// Class is a short label for counting failures.
func Class(err error) string {
	if err == nil {
		return ""
	}
	phase := "other"
	var pe *PhaseError
	if errors.As(err, &pe) {
		phase = pe.Phase
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return phase + ": timeout"
	case errors.Is(err, context.Canceled):
		return phase + ": cancelled"
	case errors.Is(err, errStreamEnd):
		return phase + ": stream closed"
	case strings.Contains(err.Error(), "connection reset"):
		return phase + ": connection reset"
	case strings.Contains(err.Error(), "refused"):
		return phase + ": connection refused"
	case strings.Contains(err.Error(), "EOF"):
		return phase + ": EOF"
	case strings.Contains(err.Error(), "address not available"), strings.Contains(err.Error(), "assign requested"):
		return phase + ": no local port"
	case strings.Contains(err.Error(), "too many open files"):
		return phase + ": too many open files"
	}
	s := err.Error()
	if pe != nil {
		s = pe.Err.Error()
	}
	if len(s) > 60 {
		s = s[:60]
	}
	return phase + ": " + s
}

func phase(p string, err error) error {
	if err == nil {
		return nil
	}
	var pe *PhaseError
	if errors.As(err, &pe) {
		return err
	}
	return &PhaseError{Phase: p, Err: err}
}

// dial opens TCP (and TLS for direct TLS), sends the stream header and
// returns the connection with its first features.
func dial(ctx context.Context, opt *Options) (*Conn, *Elem, error) {
	return dialWith(ctx, opt, dialExtra{})
}

// dialExtra are dial's options for the reconnect scenario.
type dialExtra struct {
	from string // 'from' of the stream headers (XEP-0484 asks for the user's JID)
	rt   *int   // when set, counts the round trips (see rtConn), the TCP connect included
	// early is sent with the (first TLS) stream header, before its
	// features are read: a client that knows the server from its last
	// connection does not wait for them (a SASL2 <authenticate/>).
	early string
}

// dialWith is dial with extras.
func dialWith(ctx context.Context, opt *Options, x dialExtra) (*Conn, *Elem, error) {
	if opt.Transport == "websocket" {
		return dialWS(ctx, opt, x)
	}
	raw, err := opt.dialer().DialContext(ctx, "tcp", opt.Server)
	if err != nil {
		return nil, nil, phase("connect", err)
	}
	nc := raw
	if x.rt != nil {
		*x.rt++ // SYN → SYN-ACK
		nc = &rtConn{Conn: raw, n: x.rt}
	}
	c := &Conn{opt: opt, nc: countConn{nc, opt}, raw: raw, from: x.from, early: x.early}
	c.stop = context.AfterFunc(ctx, func() { raw.Close() })
	if opt.TLS == "direct" {
		if err := c.startTLS(); err != nil {
			c.Close()
			return nil, nil, phase("tls", err)
		}
	} else {
		c.setIO(c.nc)
	}
	f, err := c.openStream()
	if err != nil {
		c.Close()
		return nil, nil, phase("stream", err)
	}
	if opt.TLS == "starttls" {
		if f.Child("starttls", nsTLS) == nil {
			c.Close()
			return nil, nil, phase("tls", errors.New("server does not offer STARTTLS"))
		}
		if err := c.Send("<starttls xmlns='" + nsTLS + "'/>"); err != nil {
			c.Close()
			return nil, nil, phase("tls", err)
		}
		e, err := c.r.Next()
		if err != nil {
			c.Close()
			return nil, nil, phase("tls", err)
		}
		if e.Local() != "proceed" {
			c.Close()
			return nil, nil, phase("tls", fmt.Errorf("got <%s> instead of <proceed/>", e.Name))
		}
		if err := c.startTLS(); err != nil {
			c.Close()
			return nil, nil, phase("tls", err)
		}
		if f, err = c.openStream(); err != nil {
			c.Close()
			return nil, nil, phase("stream", err)
		}
	}
	return c, f, nil
}

// dialWS is dialWith over WebSocket: TLS (wss) comes with the connection,
// so there is no STARTTLS step.
func dialWS(ctx context.Context, opt *Options, x dialExtra) (*Conn, *Elem, error) {
	w, err := dialWebSocket(ctx, opt)
	if err != nil {
		return nil, nil, phase("connect", err)
	}
	c := &Conn{opt: opt, raw: w.raw, from: x.from, early: x.early, ws: true}
	if w.tls != nil {
		c.TLSVersion, c.TLSCurve = w.tls.Version, w.tls.CurveID
	}
	c.stop = context.AfterFunc(ctx, func() { w.raw.Close() })
	c.setIO(w)
	f, err := c.openStream()
	if err != nil {
		c.Close()
		return nil, nil, phase("stream", err)
	}
	return c, f, nil
}

func (c *Conn) setIO(nc net.Conn) {
	c.nc = nc
	c.br = bufio.NewReaderSize(nc, 4096)
	c.r = newReader(c.br)
	c.bw = bufio.NewWriterSize(nc, 2048)
}

func (c *Conn) startTLS() error {
	tc := tls.Client(c.nc, &tls.Config{ServerName: c.opt.Domain, InsecureSkipVerify: true, CurvePreferences: c.opt.Curves})
	c.nc.SetDeadline(time.Now().Add(c.opt.timeout()))
	if err := tc.Handshake(); err != nil {
		return err
	}
	cs := tc.ConnectionState()
	c.TLSVersion, c.TLSCurve = cs.Version, cs.CurveID
	c.setIO(tc)
	return nil
}

// openStream sends a stream header and reads the server's header and
// features, with the negotiation timeout.
func (c *Conn) openStream() (*Elem, error) {
	c.nc.SetDeadline(time.Now().Add(c.opt.timeout()))
	from := ""
	if c.from != "" {
		from = " from='" + escape(c.from) + "'"
	}
	early := ""
	if c.TLSVersion != 0 {
		early, c.early = c.early, ""
	}
	if err := c.Send("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='" +
		escape(c.opt.Domain) + "'" + from + " version='1.0' xml:lang='en'>" + early); err != nil {
		return nil, err
	}
	if _, err := c.r.StreamHeader(); err != nil {
		return nil, err
	}
	f, err := c.r.Next()
	if err != nil {
		return nil, err
	}
	if f.Local() == "error" {
		return nil, fmt.Errorf("stream error: %s", streamErr(f))
	}
	if f.Local() != "features" {
		return nil, fmt.Errorf("expected features, got <%s>", f.Name)
	}
	return f, nil
}

func streamErr(e *Elem) string {
	for _, ch := range e.Children {
		if ch.Local() != "text" {
			return ch.Local()
		}
	}
	return "unknown"
}

// Send writes one stanza (or any XML text) and flushes.
func (c *Conn) Send(s string) error {
	c.wmu.Lock()
	c.bw.WriteString(s)
	err := c.bw.Flush()
	c.wmu.Unlock()
	return err
}

// timedStanza is a stanza whose XEP-0198 ack is being waited for.
type timedStanza struct {
	n  uint32 // its count since <enabled/>
	at int64  // unix nanos sent
}

// SendStanza writes one stanza, counting it for stream management. With
// timed, it is followed by <r/> and the time until the server's <a/>
// covers it — the sender's ✓ — goes to AckLat.
func (c *Conn) SendStanza(s string, timed bool) error {
	c.wmu.Lock()
	c.bw.WriteString(s)
	if c.SM {
		c.smOut++
		if timed {
			c.timed = append(c.timed, timedStanza{c.smOut, time.Now().UnixNano()})
			if c.ws {
				c.bw.Flush() // its own message
			}
			c.bw.WriteString("<r xmlns='" + nsSM + "'/>")
		}
	}
	err := c.bw.Flush()
	c.wmu.Unlock()
	return err
}

// acked records the ✓ latency of the timed stanzas h covers.
func (c *Conn) acked(h uint32) {
	now := time.Now().UnixNano()
	c.wmu.Lock()
	i := 0
	for ; i < len(c.timed) && int32(h-c.timed[i].n) >= 0; i++ {
		c.AckLat = append(c.AckLat, now-c.timed[i].at)
	}
	c.timed = c.timed[i:]
	c.wmu.Unlock()
}

// Close ends the stream and the connection.
func (c *Conn) Close() {
	if c.done.Swap(true) {
		return
	}
	if c.stop != nil {
		c.stop()
	}
	c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	c.Send("</stream:stream>")
	c.nc.Close()
}

// LoginOptions choose what follows authentication.
type LoginOptions struct {
	Presence bool // send initial presence (needed to receive offline messages)
}

// Login connects and authenticates user, binds a resource, enables stream
// management when asked and offered, and sends initial presence when asked.
func Login(ctx context.Context, opt *Options, user, password string, lo LoginOptions) (*Conn, error) {
	c, f, err := dial(ctx, opt)
	if err != nil {
		return nil, err
	}
	c.User = user
	if err := c.auth(f, user, password); err != nil {
		c.Close()
		return nil, phase("auth", err)
	}
	f, err = c.openStream()
	if err != nil {
		c.Close()
		return nil, phase("stream", err)
	}
	if err := c.bind(f); err != nil {
		c.Close()
		return nil, phase("bind", err)
	}
	if opt.SM && f.Child("sm", nsSM) != nil {
		if err := c.Send("<enable xmlns='" + nsSM + "'/>"); err != nil {
			c.Close()
			return nil, phase("sm", err)
		}
		e, err := c.next()
		if err != nil {
			c.Close()
			return nil, phase("sm", err)
		}
		if e.Local() != "enabled" {
			c.Close()
			return nil, phase("sm", fmt.Errorf("got <%s> instead of <enabled/>", e.Name))
		}
		c.SM = true
	}
	if lo.Presence {
		if err := c.SendStanza("<presence/>", false); err != nil {
			c.Close()
			return nil, phase("presence", err)
		}
	}
	c.nc.SetReadDeadline(time.Time{})
	if dl, ok := ctx.Deadline(); ok {
		c.nc.SetWriteDeadline(dl)
	} else {
		c.nc.SetWriteDeadline(time.Time{})
	}
	return c, nil
}

func (c *Conn) auth(f *Elem, user, password string) error {
	mechs := map[string]bool{}
	if m := f.Child("mechanisms", nsSASL); m != nil {
		for _, ch := range m.Children {
			if ch.Local() == "mechanism" {
				mechs[strings.TrimSpace(ch.Text)] = true
			}
		}
	}
	mech := c.opt.Mech
	if mech == "" {
		mech = "SCRAM-SHA-1"
	}
	if !mechs[mech] {
		offered := make([]string, 0, len(mechs))
		for m := range mechs {
			offered = append(offered, m)
		}
		return fmt.Errorf("server does not offer %s (offers %v)", mech, offered)
	}
	b64 := base64.StdEncoding
	if mech == "PLAIN" {
		msg := "\x00" + user + "\x00" + password
		if err := c.Send("<auth xmlns='" + nsSASL + "' mechanism='PLAIN'>" + b64.EncodeToString([]byte(msg)) + "</auth>"); err != nil {
			return err
		}
		e, err := c.r.Next()
		if err != nil {
			return err
		}
		if e.Local() != "success" {
			return saslFailure(e)
		}
		return nil
	}
	sc, err := newSCRAM(mech, user, password, "")
	if err != nil {
		return err
	}
	if err := c.Send("<auth xmlns='" + nsSASL + "' mechanism='" + mech + "'>" + b64.EncodeToString([]byte(sc.First())) + "</auth>"); err != nil {
		return err
	}
	e, err := c.r.Next()
	if err != nil {
		return err
	}
	if e.Local() != "challenge" {
		return saslFailure(e)
	}
	if err := c.scramResponse(sc, e, nsSASL); err != nil {
		return err
	}
	for {
		e, err = c.r.Next()
		if err != nil {
			return err
		}
		switch e.Local() {
		case "challenge": // server-final in a challenge, success follows
			v, _ := b64.DecodeString(strings.TrimSpace(e.Text))
			if err := sc.Verify(string(v)); err != nil {
				return err
			}
			if err := c.Send("<response xmlns='" + nsSASL + "'/>"); err != nil {
				return err
			}
		case "success":
			if t := strings.TrimSpace(e.Text); t != "" && t != "=" {
				v, _ := b64.DecodeString(t)
				return sc.Verify(string(v))
			}
			if sc.serverSig == nil {
				return errors.New("no server signature")
			}
			return nil
		default:
			return saslFailure(e)
		}
	}
}

func saslFailure(e *Elem) error {
	if e.Local() == "failure" {
		for _, ch := range e.Children {
			if ch.Local() != "text" {
				return fmt.Errorf("SASL failure: %s", ch.Local())
			}
		}
		return errors.New("SASL failure")
	}
	return fmt.Errorf("unexpected <%s> during SASL", e.Name)
}

func (c *Conn) bind(f *Elem) error {
	if f.Child("bind", nsBind) == nil {
		return errors.New("server does not offer resource binding")
	}
	res := c.opt.Resource
	if res == "" {
		res = "bench"
	}
	if err := c.Send("<iq type='set' id='bind1'><bind xmlns='" + nsBind + "'><resource>" + escape(res) + "</resource></bind></iq>"); err != nil {
		return err
	}
	e, err := c.waitIQ("bind1")
	if err != nil {
		return err
	}
	if e.Attr("type") != "result" {
		return fmt.Errorf("bind refused: %s", stanzaErr(e))
	}
	if b := e.Child("bind", nsBind); b != nil {
		if j := b.Child("jid", ""); j != nil {
			c.JID = strings.TrimSpace(j.Text)
		}
	}
	if c.JID == "" {
		return errors.New("bind result without a JID")
	}
	// RFC 3921 session establishment, only when the server says it is not
	// optional (RFC 6121 dropped it).
	if s := f.Child("session", nsSession); s != nil && s.Child("optional", "") == nil {
		if err := c.Send("<iq type='set' id='sess1'><session xmlns='" + nsSession + "'/></iq>"); err != nil {
			return err
		}
		e, err := c.waitIQ("sess1")
		if err != nil {
			return err
		}
		if e.Attr("type") != "result" {
			return fmt.Errorf("session refused: %s", stanzaErr(e))
		}
	}
	return nil
}

// waitIQ reads until the iq with id arrives (stanzas before it are dropped:
// this is only used during login).
func (c *Conn) waitIQ(id string) (*Elem, error) {
	for {
		e, err := c.next()
		if err != nil {
			return nil, err
		}
		if e.Local() == "iq" && e.Attr("id") == id {
			return e, nil
		}
	}
}

// next reads one element, answering stream management requests.
func (c *Conn) next() (*Elem, error) {
	for {
		e, err := c.r.Next()
		if err != nil {
			return nil, err
		}
		switch e.Local() {
		case "error":
			if strings.HasPrefix(e.Name, "stream") || e.Attr("xmlns") == "http://etherx.jabber.org/streams" {
				return nil, fmt.Errorf("stream error: %s", streamErr(e))
			}
		case "r":
			if c.SM {
				c.Send("<a xmlns='" + nsSM + "' h='" + strconv.FormatUint(uint64(c.smIn), 10) + "'/>")
				continue
			}
		case "a":
			if c.SM {
				if h, err := strconv.ParseUint(e.Attr("h"), 10, 32); err == nil {
					c.acked(uint32(h))
				}
				continue
			}
		case "message", "presence", "iq":
			if c.SM { // counting starts at <enabled/> (XEP-0198 §4)
				c.smIn++
			}
		}
		return e, nil
	}
}

func stanzaErr(e *Elem) string {
	if er := e.Child("error", ""); er != nil {
		for _, ch := range er.Children {
			if ch.Local() != "text" {
				return ch.Local()
			}
		}
	}
	return "no error condition"
}

// Serve reads stanzas until the connection ends, answering pings and SM
// requests itself and passing everything else to h. It returns the error
// that ended the stream (nil after Close).
func (c *Conn) Serve(h func(*Elem)) error {
	for {
		e, err := c.next()
		if err != nil {
			if c.done.Load() {
				return nil
			}
			return err
		}
		if e.Local() == "iq" && (e.Attr("type") == "get" || e.Attr("type") == "set") {
			to := e.Attr("from")
			if e.Child("ping", nsPing) != nil {
				c.Send("<iq type='result' id='" + escape(e.Attr("id")) + "' to='" + escape(to) + "'/>")
			} else {
				c.Send("<iq type='error' id='" + escape(e.Attr("id")) + "' to='" + escape(to) +
					"'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>")
			}
			continue
		}
		h(e)
	}
}

// ErrExists is returned by Register when the account already exists.
var ErrExists = errors.New("account exists")

// Register creates user with XEP-0077 in-band registration.
func Register(ctx context.Context, opt *Options, user, password string) error {
	c, _, err := dial(ctx, opt)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Send("<iq type='set' id='reg1'><query xmlns='" + nsRegister + "'><username>" + escape(user) +
		"</username><password>" + escape(password) + "</password></query></iq>"); err != nil {
		return phase("register", err)
	}
	e, err := c.waitIQ("reg1")
	if err != nil {
		return phase("register", err)
	}
	switch e.Attr("type") {
	case "result":
		return nil
	case "error":
		cond := stanzaErr(e)
		if cond == "conflict" {
			return ErrExists
		}
		return phase("register", fmt.Errorf("refused: %s", cond))
	}
	return phase("register", fmt.Errorf("unexpected iq type %q", e.Attr("type")))
}

// Ping sends an XEP-0199 ping to the server; the caller sees the result in
// its Serve handler (iq type=result with this id).
func (c *Conn) Ping(id string) error {
	return c.Send("<iq type='get' id='" + id + "' to='" + escape(c.opt.Domain) + "'><ping xmlns='" + nsPing + "'/></iq>")
}

// bareJID returns local@domain.
func bareJID(user, domain string) string { return user + "@" + domain }

// scramResponse answers a SCRAM server-first-message (the <challenge/>
// ch) with the client-final-message in a <response/> of namespace ns
// (RFC 6120 SASL or SASL2).
func (c *Conn) scramResponse(sc *scramClient, ch *Elem, ns string) error {
	b64 := base64.StdEncoding
	sf, err := b64.DecodeString(strings.TrimSpace(ch.Text))
	if err != nil {
		return errors.New("bad base64 in challenge")
	}
	final, err := sc.Final(string(sf))
	if err != nil {
		return err
	}
	return c.Send("<response xmlns='" + ns + "'>" + b64.EncodeToString([]byte(final)) + "</response>")
}
