package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Guard keeps the server's requests to URLs that devices chose (Web Push
// endpoints, webhook URLs) away from its own networks. A host is checked
// twice: when a device registers (so the client gets not-acceptable at
// once) and when the gateway connects (its name is resolved again and
// every address checked, so a name that later resolves to 127.0.0.1 — DNS
// rebinding — is still refused; the dialer's ControlContext checks the
// socket's address once more).
//
// Refused unless allowed: loopback, private (RFC 1918, fc00::/7),
// link-local (169.254.0.0/16 — cloud metadata —, fe80::/10), CGNAT
// (100.64.0.0/10) and the other special-purpose ranges (0.0.0.0/8,
// 192.0.0.0/24, documentation, benchmarking, 240.0.0.0/4, IPv6 outside
// 2000::/3, Teredo, 6to4 and NAT64 addresses embedding such an IPv4
// address), in any spelling: IPv4-mapped IPv6 ([::ffff:127.0.0.1]), and
// the numeric forms inet_aton accepts (127.1, 0x7f.1, 2130706433, 0177.0.0.1),
// which are refused outright (the address they mean is named in the error).
// "localhost" and names under .localhost are loopback (RFC 6761).
//
// Never allowed: unspecified (0.0.0.0, ::) and multicast addresses.
//
// push.allow_private lifts the refusal for networks ("127.0.0.0/8",
// "10.0.0.5") and for host names ("push.internal": that name may resolve
// to any address but the never-allowed ones).
type Guard struct {
	nets  []netip.Prefix
	hosts map[string]bool

	// LookupNetIP resolves a host name; nil uses net.DefaultResolver.
	// Tests replace it (no test resolves names over the network).
	LookupNetIP func(ctx context.Context, host string) ([]netip.Addr, error)
}

// resolveTimeout bounds one name resolution of the guard.
const resolveTimeout = 5 * time.Second

// maxAddrs bounds the addresses of one host the dialer tries.
const maxAddrs = 8

// NewGuard parses push.allow_private: each entry is a network in CIDR
// form, an IP address, or a host name.
func NewGuard(allow []string) (*Guard, error) {
	g := &Guard{hosts: map[string]bool{}}
	for _, a := range allow {
		a = strings.TrimSpace(a)
		switch {
		case a == "":
		case strings.Contains(a, "/"):
			p, err := netip.ParsePrefix(a)
			if err != nil {
				return nil, fmt.Errorf("push.allow_private: %q is not a network (CIDR): %v", a, err)
			}
			g.nets = append(g.nets, unmapPrefix(p.Masked()))
		default:
			if ip, err := netip.ParseAddr(strings.Trim(a, "[]")); err == nil {
				ip = ip.Unmap()
				g.nets = append(g.nets, netip.PrefixFrom(ip, ip.BitLen()))
				continue
			}
			h := normHost(a)
			if !validHostName(h) || endsInNumber(h) {
				return nil, fmt.Errorf("push.allow_private: %q is neither a network (CIDR), an IP address nor a host name", a)
			}
			g.hosts[h] = true
		}
	}
	return g, nil
}

func unmapPrefix(p netip.Prefix) netip.Prefix {
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p
}

// RefusedError: the guard refused a URL or address. No connection was
// made, so it says nothing about the device's push service.
type RefusedError struct {
	Host   string     // the URL's host as written
	Addr   netip.Addr // the address refused, if the refusal is about one
	Reason string     // metric label: loopback, private, link_local, cgnat, reserved, unspecified, multicast, ip_form, url, not_allowed
	Detail string     // for reason url and not_allowed: what is wrong
}

func (e *RefusedError) Error() string {
	switch e.Reason {
	case "url", "not_allowed":
		return e.Detail
	case "ip_form":
		if e.Addr.IsValid() {
			return fmt.Sprintf("host %s is a non-standard spelling of the IPv4 address %s (%s): write addresses in standard form", e.Host, e.Addr, describe(classify(e.Addr)))
		}
		return fmt.Sprintf("host %s is not a valid IP address or host name", e.Host)
	}
	what := describe(e.Reason)
	var s string
	switch {
	case e.Addr.IsValid() && e.Host != e.Addr.String():
		s = fmt.Sprintf("host %s resolves to %s, %s", e.Host, e.Addr, what)
	default:
		s = fmt.Sprintf("host %s is %s", e.Host, what)
	}
	if neverAllowed(e.Reason) {
		return s + ": the server never connects there"
	}
	return s + ": the server does not connect to its own or private networks (an operator can allow it with push.allow_private)"
}

func describe(reason string) string {
	switch reason {
	case "":
		return "a public address"
	case "loopback":
		return "a loopback address"
	case "private":
		return "a private address"
	case "link_local":
		return "a link-local address"
	case "cgnat":
		return "a shared (CGNAT) address"
	case "unspecified":
		return "the unspecified address"
	case "multicast":
		return "a multicast address"
	}
	return "a special-purpose (reserved) address"
}

func neverAllowed(reason string) bool { return reason == "unspecified" || reason == "multicast" }

var (
	cgnat     = netip.MustParsePrefix("100.64.0.0/10")
	reserved4 = prefixes("0.0.0.0/8", "192.0.0.0/24", "192.0.2.0/24", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4")
	global6   = netip.MustParsePrefix("2000::/3")
	reserved6 = prefixes("2001::/32", "2001:2::/48", "2001:10::/28", "2001:20::/28", "2001:db8::/32", "3fff::/20")
	sixToFour = netip.MustParsePrefix("2002::/16")
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	broadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})
)

func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// classify returns "" for a public unicast address, else why it is not.
func classify(ip netip.Addr) string {
	ip = ip.Unmap()
	switch {
	case !ip.IsValid():
		return "reserved"
	case ip.IsUnspecified():
		return "unspecified"
	case ip.IsMulticast() || ip == broadcast:
		return "multicast"
	case ip.IsLoopback():
		return "loopback"
	case ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast():
		return "link_local"
	case ip.IsPrivate():
		return "private"
	}
	if ip.Is4() {
		if cgnat.Contains(ip) {
			return "cgnat"
		}
		for _, p := range reserved4 {
			if p.Contains(ip) {
				return "reserved"
			}
		}
		return ""
	}
	b := ip.As16()
	switch {
	case nat64.Contains(ip):
		// DNS64 answers for IPv4-only hosts: as good as the IPv4 address.
		return classify(netip.AddrFrom4([4]byte(b[12:16])))
	case sixToFour.Contains(ip):
		return classify(netip.AddrFrom4([4]byte(b[2:6])))
	case !global6.Contains(ip):
		return "reserved" // ::/96 IPv4-compatible, fec0::/10 site-local, …
	}
	for _, p := range reserved6 {
		if p.Contains(ip) {
			return "reserved"
		}
	}
	return ""
}

// allowedAddr reports why ip is refused ("" if allowed); byName is true
// when the host name is on the allow-list.
func (g *Guard) allowedAddr(ip netip.Addr, byName bool) string {
	ip = ip.Unmap().WithZone("")
	r := classify(ip)
	if r == "" || neverAllowed(r) {
		return r
	}
	if byName {
		return ""
	}
	for _, p := range g.nets {
		if p.Contains(ip) {
			return ""
		}
	}
	return r
}

// Resolve checks host (a URL's host name, without port or brackets) and
// returns the addresses the gateway may connect to, all of them allowed.
// Errors are *RefusedError or the resolver's.
func (g *Guard) Resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	h := normHost(host)
	if ip, err := netip.ParseAddr(h); err == nil {
		if ip.Zone() != "" {
			return nil, &RefusedError{Host: host, Reason: "ip_form"}
		}
		if r := g.allowedAddr(ip, false); r != "" {
			return nil, &RefusedError{Host: host, Addr: ip, Reason: r}
		}
		return []netip.Addr{ip}, nil
	}
	if endsInNumber(h) {
		// What inet_aton (and browsers) would take for an IPv4 address;
		// Go's resolver would look it up as a name instead. Refused, with
		// the address it means.
		ip, _ := parseIPv4Loose(h)
		return nil, &RefusedError{Host: host, Addr: ip, Reason: "ip_form"}
	}
	if !validHostName(h) {
		return nil, &RefusedError{Host: host, Reason: "url", Detail: fmt.Sprintf("host %q is not a valid host name (use ASCII, punycode for international names)", host)}
	}
	byName := g.hosts[h]
	if !byName && (h == "localhost" || strings.HasSuffix(h, ".localhost")) {
		return nil, &RefusedError{Host: host, Reason: "loopback"}
	}
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	lookup := g.LookupNetIP
	if lookup == nil {
		lookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	addrs, err := lookup(ctx, h)
	if err != nil {
		return nil, err
	}
	if len(addrs) == 0 {
		return nil, &net.DNSError{Err: "no addresses", Name: h, IsNotFound: true}
	}
	// One refused address refuses the host: a name that mixes public and
	// private addresses is not one the server should follow.
	for _, ip := range addrs {
		if r := g.allowedAddr(ip, byName); r != "" {
			return nil, &RefusedError{Host: host, Addr: ip.Unmap(), Reason: r}
		}
	}
	if len(addrs) > maxAddrs {
		addrs = addrs[:maxAddrs]
	}
	return addrs, nil
}

type byNameKey struct{}

// DialContext connects to address ("host:port") only through addresses
// Resolve allows.
func (g *Guard) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	addrs, err := g.Resolve(ctx, host)
	if err != nil {
		return nil, err
	}
	ctx = context.WithValue(ctx, byNameKey{}, g.hosts[normHost(host)])
	d := &net.Dialer{Timeout: 10 * time.Second, ControlContext: g.control}
	var last error
	for _, ip := range addrs {
		if network == "tcp4" && !ip.Unmap().Is4() || network == "tcp6" && ip.Unmap().Is4() {
			continue
		}
		c, err := d.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
		if err == nil {
			return c, nil
		}
		last = err
		if ctx.Err() != nil {
			break
		}
	}
	if last == nil {
		last = &net.DNSError{Err: "no address for " + network, Name: host, IsNotFound: true}
	}
	return nil, last
}

// control checks the address the socket is about to connect to.
func (g *Guard) control(ctx context.Context, network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return &RefusedError{Host: host, Reason: "ip_form"}
	}
	byName, _ := ctx.Value(byNameKey{}).(bool)
	if r := g.allowedAddr(ip, byName); r != "" {
		return &RefusedError{Host: host, Addr: ip, Reason: r}
	}
	return nil
}

// HTTPClient is NewHTTPClient connecting only where the guard allows, and
// never through a proxy (a proxy would resolve the name itself).
func (g *Guard) HTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.DialContext = g.DialContext
	c := NewHTTPClient()
	c.Transport = tr
	return c
}

// normHost lower-cases a host and drops one trailing dot.
func normHost(h string) string {
	return strings.TrimSuffix(strings.ToLower(strings.Trim(h, "[]")), ".")
}

// validHostName: ASCII letters, digits, '-' and '_' in dot-separated
// labels of 1-63 characters.
func validHostName(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, l := range strings.Split(h, ".") {
		if l == "" || len(l) > 63 {
			return false
		}
		for _, c := range []byte(l) {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// endsInNumber is the WHATWG URL rule: a host whose last label is a
// decimal or 0x-hexadecimal number is an IPv4 address (or invalid).
func endsInNumber(h string) bool {
	labels := strings.Split(h, ".")
	if len(labels) > 1 && labels[len(labels)-1] == "" {
		labels = labels[:len(labels)-1]
	}
	last := labels[len(labels)-1]
	if last == "" {
		return false
	}
	if strings.Trim(last, "0123456789") == "" {
		return true
	}
	if x, ok := strings.CutPrefix(last, "0x"); ok {
		return strings.Trim(x, "0123456789abcdef") == ""
	}
	return false
}

// parseIPv4Loose parses the IPv4 forms inet_aton accepts: one to four
// parts, each decimal, octal (leading 0) or hexadecimal (0x), the last
// filling the remaining bytes.
func parseIPv4Loose(h string) (netip.Addr, bool) {
	parts := strings.Split(strings.TrimSuffix(h, "."), ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	var nums []uint64
	for _, p := range parts {
		base := 10
		switch {
		case strings.HasPrefix(p, "0x"):
			p, base = p[2:], 16
			if p == "" {
				p = "0"
			}
		case len(p) > 1 && p[0] == '0':
			p, base = p[1:], 8
		}
		n, err := strconv.ParseUint(p, base, 32)
		if err != nil {
			return netip.Addr{}, false
		}
		nums = append(nums, n)
	}
	var v uint64
	for i, n := range nums[:len(nums)-1] {
		if n > 255 {
			return netip.Addr{}, false
		}
		v |= n << (8 * (3 - i))
	}
	last := nums[len(nums)-1]
	if last >= 1<<(8*(5-len(nums))) {
		return netip.Addr{}, false
	}
	v |= last
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}

// checkURL parses a URL a device registers: an absolute URL with one of
// schemes, a host and a valid port, no user info, no fragment, no dot
// segments or backslashes in the path.
func checkURL(raw string, schemes ...string) (*url.URL, error) {
	bad := func(format string, a ...any) (*url.URL, error) {
		return nil, &RefusedError{Reason: "url", Detail: fmt.Sprintf(format, a...)}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return bad("not a URL")
	}
	ok := false
	for _, s := range schemes {
		ok = ok || u.Scheme == s
	}
	if !ok || u.Opaque != "" || u.Host == "" {
		return bad("must be an absolute %s URL", strings.Join(schemes, " or "))
	}
	if u.User != nil {
		return bad("must not contain user info (user@host)")
	}
	if strings.Contains(raw, "#") {
		return bad("must not contain a fragment (#)")
	}
	if strings.Contains(raw, `\`) {
		return bad("must not contain a backslash")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return bad("port %q is not valid", p)
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return bad("empty port")
	}
	for _, seg := range strings.Split(u.Path, "/") {
		if seg == "." || seg == ".." {
			return bad("must not contain . or .. path segments")
		}
	}
	return u, nil
}

// effectivePort is the URL's port, or its scheme's default.
func effectivePort(u *url.URL) string {
	if p := u.Port(); p != "" {
		return strings.TrimLeft(p, "0")
	}
	if u.Scheme == "https" {
		return "443"
	}
	return "80"
}

// within reports whether u lies under the allowed URL a: same scheme,
// same host, same effective port, and a's path a prefix of u's on a
// segment boundary ("/hooks" allows /hooks and /hooks/…, not /hooksX).
func within(u, a *url.URL) bool {
	if u.Scheme != a.Scheme || effectivePort(u) != effectivePort(a) {
		return false
	}
	uh, ah := normHost(u.Hostname()), normHost(a.Hostname())
	if ui, err := netip.ParseAddr(uh); err == nil {
		ai, err := netip.ParseAddr(ah)
		if err != nil || ui.Unmap() != ai.Unmap() {
			return false
		}
	} else if uh != ah {
		return false
	}
	up, ap := u.EscapedPath(), a.EscapedPath()
	if up == "" {
		up = "/"
	}
	if ap == "" || ap == "/" {
		return true
	}
	if strings.HasSuffix(ap, "/") {
		return strings.HasPrefix(up, ap)
	}
	return up == ap || strings.HasPrefix(up, ap+"/")
}

// isRefused reports whether err is the guard's.
func isRefused(err error) (*RefusedError, bool) {
	var re *RefusedError
	ok := errors.As(err, &re)
	return re, ok
}
