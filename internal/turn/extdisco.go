package turn

import (
	"context"
	"net"
	"strconv"
	"time"

	"bluetick/internal/config"
	"bluetick/internal/server"
	"bluetick/internal/stanza"
	"bluetick/internal/xmlstream"
)

// NSExtDisco is XEP-0215 external service discovery.
const NSExtDisco = "urn:xmpp:extdisco:2"

// endpoint is one address clients are given for one transport.
type endpoint struct {
	transport string
	port      int
}

// Directory answers XEP-0215 for the TURN server, built-in or external:
// where it is, and fresh credentials for the asking account.
type Directory struct {
	domain    string
	host      string
	endpoints []endpoint
	secret    string
	ttl       time.Duration
	now       func() time.Time
}

// NewDirectory describes the TURN server of cfg. builtin is the running
// built-in server (nil in external mode); its real ports are used when
// the configuration leaves them to the system (port 0, in tests).
func NewDirectory(cfg config.Config, secret string, builtin *Server) *Directory {
	t := cfg.TURN
	d := &Directory{domain: cfg.Domain, secret: secret, ttl: t.CredentialTTL.Duration, now: time.Now}
	listenHost, listenPort, _ := net.SplitHostPort(t.Listen)
	d.host = t.Host
	if d.host == "" {
		d.host = t.ExternalIP
	}
	if ip := net.ParseIP(listenHost); d.host == "" && ip != nil && !ip.IsUnspecified() {
		d.host = listenHost
	}
	if d.host == "" {
		d.host = cfg.Domain
	}
	for _, tr := range t.Transports {
		port := t.Port
		if port == 0 && t.External {
			port = 3478
		}
		if port == 0 {
			port, _ = strconv.Atoi(listenPort)
			var a net.Addr
			if builtin != nil && tr == "udp" {
				a = builtin.UDPAddr()
			} else if builtin != nil {
				a = builtin.TCPAddr()
			}
			if _, p, err := net.SplitHostPort(addrString(a)); err == nil && port == 0 {
				port, _ = strconv.Atoi(p)
			}
		}
		d.endpoints = append(d.endpoints, endpoint{tr, port})
	}
	return d
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// Register puts XEP-0215 on the server's mux: addressed to the domain,
// answered only to the server's own authenticated accounts (the mux only
// sees bound sessions), advertised in the server's disco#info.
func (d *Directory) Register(m *server.Mux) {
	m.Handle("get", NSExtDisco, "services", server.ToServer, NSExtDisco, d.services)
	m.Handle("get", NSExtDisco, "credentials", server.ToServer, "", d.credentials)
}

// service is one <service/>; turn services carry credentials.
func (d *Directory) service(typ string, e endpoint, cr *Credentials) *xmlstream.Element {
	el := xmlstream.New(NSExtDisco, "service",
		"type", typ, "host", d.host, "port", strconv.Itoa(e.port), "transport", e.transport)
	if cr != nil {
		el.SetAttr("username", cr.Username)
		el.SetAttr("password", cr.Password)
		el.SetAttr("expires", cr.Expires.UTC().Format("2006-01-02T15:04:05Z")) // XEP-0082
		el.SetAttr("restricted", "1")
	}
	return el
}

func (d *Directory) issue(iq *server.IQ) (*Credentials, error) {
	if iq.From.Domain() != d.domain || iq.From.Local() == "" {
		return nil, stanza.NewError("forbidden", "TURN credentials are for this server's accounts")
	}
	cr := Issue(d.secret, iq.From.Bare().String(), d.now(), d.ttl)
	return &cr, nil
}

// services answers <services/> (§3.1), or only those of one type (§3.2).
// An unknown type gives an empty list: there are no such services.
func (d *Directory) services(ctx context.Context, iq *server.IQ) (*xmlstream.Element, error) {
	typ := iq.Payload.Attr("type")
	cr, err := d.issue(iq)
	if err != nil {
		return nil, err
	}
	out := xmlstream.New(NSExtDisco, "services", "type", typ)
	for _, e := range d.endpoints {
		if typ == "" || typ == "stun" {
			out.Append(d.service("stun", e, nil))
		}
	}
	for _, e := range d.endpoints {
		if typ == "" || typ == "turn" {
			out.Append(d.service("turn", e, cr))
		}
	}
	return out, nil
}

// credentials answers <credentials><service host type [port]/></credentials>
// (§3.3) with fresh credentials for every matching TURN endpoint.
func (d *Directory) credentials(ctx context.Context, iq *server.IQ) (*xmlstream.Element, error) {
	want := iq.Payload.Child(NSExtDisco, "service")
	if want == nil || want.Attr("host") == "" || want.Attr("type") == "" {
		return nil, stanza.NewError("bad-request", "credentials needs a <service/> with host and type")
	}
	port := 0
	if p := want.Attr("port"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return nil, stanza.NewError("bad-request", "port is not a port number")
		}
		port = n
	}
	if want.Attr("host") != d.host || want.Attr("type") != "turn" {
		// STUN needs no credentials; other hosts are not ours to vouch for.
		return nil, stanza.NewError("item-not-found", "no TURN service with that host")
	}
	cr, err := d.issue(iq)
	if err != nil {
		return nil, err
	}
	out := xmlstream.New(NSExtDisco, "credentials")
	for _, e := range d.endpoints {
		if port == 0 || port == e.port {
			out.Append(d.service("turn", e, cr))
		}
	}
	if len(out.Children) == 0 {
		return nil, stanza.NewError("item-not-found", "no TURN service on that port")
	}
	return out, nil
}
