// Package config is Bluetick's one configuration: every key, its default and
// why, loaded from an optional TOML file and overridden by flags. Validate
// names the offending key and the fix, so a bad config fails with one clear
// line instead of a surprise at runtime.
package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"bluetick/internal/jid"
)

// Duration is a time.Duration written as "30s", "5m", "720h" in the file.
type Duration struct{ time.Duration }

// UnmarshalText parses Go duration syntax, plus a "d" suffix for days.
func (d *Duration) UnmarshalText(b []byte) error {
	s := string(b)
	if strings.HasSuffix(s, "d") {
		var days int
		if _, err := fmt.Sscanf(s, "%dd", &days); err != nil || fmt.Sprintf("%dd", days) != s {
			return fmt.Errorf("bad duration %q (use e.g. 30d, 12h, 5m, 30s)", s)
		}
		d.Duration = time.Duration(days) * 24 * time.Hour
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("bad duration %q (use e.g. 30d, 12h, 5m, 30s)", s)
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration back in Go syntax.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.Duration.String()), nil }

// Config is the whole server configuration. Zero-config start uses Default().
type Config struct {
	// Domain is the XMPP domain users live on (alice@Domain).
	Domain string `toml:"domain"`
	// DataDir holds the SQLite database and the generated certificate.
	DataDir string `toml:"data_dir"`
	// Store is where accounts, rosters and offline messages live: empty
	// for the embedded SQLite file in DataDir, or a PostgreSQL URL
	// ("postgres://user:pass@host:5432/bluetick"), which cluster mode needs
	// so every node sees the same data.
	Store string `toml:"store"`
	// PostgresMaxConns caps this node's PostgreSQL connections (0: a few
	// per CPU). All nodes share the server's max_connections.
	PostgresMaxConns int `toml:"postgres_max_conns"`

	Listen  Listen  `toml:"listen"`
	TLS     TLS     `toml:"tls"`
	Limits  Limits  `toml:"limits"`
	Offline Offline `toml:"offline"`
	Stream  Stream  `toml:"stream"`
	// Registration is XEP-0077 in-band registration: "closed" (default: only
	// `bluetick user add` creates accounts) or "open" (anyone may register).
	Registration string  `toml:"registration"`
	Cluster      Cluster `toml:"cluster"`
	Push         Push    `toml:"push"`
}

// Push is XEP-0357 push notifications and the built-in push app server
// (gateway) at push.<domain>, which wakes phones through FCM, APNs, Web
// Push or a webhook (docs/push.md). Bluetick does not federate, so clients
// enable push only with that gateway.
type Push struct {
	// Enabled advertises urn:xmpp:push:0 and runs the gateway; it needs at
	// least one provider below.
	Enabled bool `toml:"enabled"`
	// What a notification tells the provider (and so Apple or Google). By
	// default only that something arrived and how much: the sender and
	// the text stay on the server, and OMEMO messages have no readable
	// text anyway.
	IncludeSender bool `toml:"include_sender"`
	IncludeBody   bool `toml:"include_body"`
	IncludeCount  bool `toml:"include_count"`
	// NotifyReceipts also wakes the phone for delivery receipts and chat
	// markers (off: they wait for the next time the app runs).
	NotifyReceipts bool `toml:"notify_receipts"`
	// MinInterval is the least time between two pushes to one device;
	// messages in between are coalesced into one push sent when it ends,
	// so a busy group does not flood a phone (and the provider's quota).
	MinInterval Duration `toml:"min_interval"`
	// MaxRetries bounds the retries of a push the provider answered with
	// 5xx or 429 (exponential backoff from 1s, within RetryTimeout).
	MaxRetries   int      `toml:"max_retries"`
	RetryTimeout Duration `toml:"retry_timeout"`

	FCM     PushFCM     `toml:"fcm"`
	APNs    PushAPNs    `toml:"apns"`
	WebPush PushWebPush `toml:"webpush"`
	Webhook PushWebhook `toml:"webhook"`
}

// PushFCM is Firebase Cloud Messaging HTTP v1, authenticated with a
// Google service account (OAuth2 JWT bearer grant). Enabled when
// ServiceAccountFile is set.
type PushFCM struct {
	// ServiceAccountFile is the service account's JSON key file
	// (Firebase console, Project settings, Service accounts).
	ServiceAccountFile string `toml:"service_account_file"`
	// ProjectID overrides the file's project_id.
	ProjectID string `toml:"project_id"`
	// Endpoint is the FCM API base URL (tests point it at a local server).
	Endpoint string `toml:"endpoint"`
	// TokenURL overrides the file's token_uri.
	TokenURL string `toml:"token_url"`
}

// PushAPNs is the Apple Push Notification service over HTTP/2 with a
// token-based (.p8) key. Enabled when KeyFile is set.
type PushAPNs struct {
	KeyFile string `toml:"key_file"` // the .p8 key from the Apple developer account
	KeyID   string `toml:"key_id"`
	TeamID  string `toml:"team_id"`
	// Topic is the app's bundle id.
	Topic string `toml:"topic"`
	// Endpoint: https://api.push.apple.com, or
	// https://api.sandbox.push.apple.com for development builds.
	Endpoint string `toml:"endpoint"`
	// PushType "alert" (delivered even when the app was killed; the app's
	// notification service extension fetches the message) or
	// "background" (silent, throttled and delivered at Apple's discretion).
	PushType string `toml:"push_type"`
}

// PushWebPush is Web Push (RFC 8030, 8291, 8292) and UnifiedPush, for
// browsers and de-Googled Android. The VAPID key pair is generated once in
// data_dir (vapid.pem).
type PushWebPush struct {
	Enabled bool `toml:"enabled"`
	// Subject is the VAPID contact (mailto: or https:); empty uses
	// mailto:postmaster@<domain>.
	Subject string `toml:"subject"`
}

// PushWebhook posts a signed JSON notification to a URL the device
// registered, for self-hosted push relays. Enabled when Secret is set.
type PushWebhook struct {
	// Secret keys the HMAC-SHA256 in X-Bluetick-Signature.
	Secret string `toml:"secret"`
	// AllowedURLs is a comma-separated list of URL prefixes a device may
	// register (the server makes requests to them, so they must be
	// trusted, e.g. "https://relay.example.com/").
	AllowedURLs string `toml:"allowed_urls"`
}

// PushProviders reports whether any push provider is configured.
func (p *Push) PushProviders() bool {
	return p.FCM.ServiceAccountFile != "" || p.APNs.KeyFile != "" || p.WebPush.Enabled || p.Webhook.Secret != ""
}

// Cluster joins this node to others over NATS. Every node of a cluster
// must share the same store (PostgreSQL) and domain.
type Cluster struct {
	// NATS is the NATS server URL list ("nats://10.0.0.1:4222,nats://...");
	// empty runs a single node. The servers need JetStream (-js).
	// "embedded" runs a NATS server inside this process (small clusters:
	// nothing else to operate); the keys below configure it.
	NATS string `toml:"nats"`
	// Node names this node, unique in the cluster; empty picks a random
	// name at each start.
	Node string `toml:"node"`
	// EmbeddedListen is the embedded NATS server's client address.
	EmbeddedListen string `toml:"embedded_listen"`
	// EmbeddedClusterListen is its route address for the other nodes'
	// embedded servers; empty runs it standalone (other nodes may still
	// connect to EmbeddedListen).
	EmbeddedClusterListen string `toml:"embedded_cluster_listen"`
	// EmbeddedRoutes lists the other embedded servers' route URLs.
	EmbeddedRoutes string `toml:"embedded_routes"`
}

// Listen holds the listening addresses; an empty address disables that
// listener.
type Listen struct {
	// C2S is the client port with STARTTLS (RFC 6120).
	C2S string `toml:"c2s"`
	// C2STLS is the direct-TLS client port (XEP-0368).
	C2STLS string `toml:"c2s_tls"`
	// HTTP serves the WebSocket endpoint /xmpp-websocket (RFC 7395) and
	// /healthz. Plain HTTP: put a TLS-terminating proxy in front outside
	// loopback, or set HTTPTLS.
	HTTP string `toml:"http"`
	// HTTPTLS serves the same handlers over HTTPS (optional).
	HTTPTLS string `toml:"https"`
}

// TLS picks the certificate. When both files are empty a self-signed
// certificate for Domain is generated once in DataDir and kept.
type TLS struct {
	CertFile string `toml:"cert_file"`
	KeyFile  string `toml:"key_file"`
	// RequireSTARTTLS: "auto" (default) requires STARTTLS before
	// authentication except for clients connecting from loopback; "always";
	// "never" (testing only: passwords would travel in clear).
	RequireSTARTTLS string `toml:"require_starttls"`
}

// Limits bound what one client may cost the server.
type Limits struct {
	// MaxStanzaBytes caps one stanza; bigger gets a policy-violation stream
	// error. 256 KiB fits any message while bounding memory per read.
	MaxStanzaBytes int `toml:"max_stanza_bytes"`
	// MaxQueue caps a session's outbound queue (unsent plus unacked
	// stanzas). A client that falls this far behind is cut off and its
	// messages go to the offline store. 10,000 lets a healthy client
	// absorb a burst (a busy group, a backlog) within one ack round trip;
	// at ~1 KiB a stanza the bound is ~10 MiB for a session that stalls.
	MaxQueue int `toml:"max_queue"`
	// IdleTimeout: a connection silent this long is pinged; silent for twice
	// this, it is closed.
	IdleTimeout Duration `toml:"idle_timeout"`
	// ConnectionsPerIPPerMinute caps new connections from one address.
	ConnectionsPerIPPerMinute int `toml:"connections_per_ip_per_minute"`
	// LoginsPerIPPerMinute caps authentication attempts from one address.
	LoginsPerIPPerMinute int `toml:"logins_per_ip_per_minute"`
	// ExemptLoopback lifts the per-address caps for clients on loopback
	// addresses: local load tests, and a reverse proxy on the same host
	// (whose clients all appear as 127.0.0.1) should not trip them.
	ExemptLoopback bool `toml:"exempt_loopback"`
	// FailedAuthDelay is added before answering each failed authentication,
	// doubling per failure on the same connection.
	FailedAuthDelay Duration `toml:"failed_auth_delay"`
	// MaxConnections caps concurrent client connections on this node.
	MaxConnections int `toml:"max_connections"`
	// NegotiationTimeout bounds the time from TCP accept to a bound session.
	NegotiationTimeout Duration `toml:"negotiation_timeout"`
}

// Offline is the store-and-forward queue for users who are not online.
type Offline struct {
	// Expiry: messages older than this are deleted, as WhatsApp does after
	// 30 days.
	Expiry Duration `toml:"expiry"`
	// Quota is the most messages held per user; more are refused with
	// resource-constraint so the sender knows (0 = unlimited).
	Quota int `toml:"quota"`
	// Durable: "on" writes every message to the store before the sender's
	// ✓ and deletes it when the recipient acks, so a crash of any node
	// loses nothing acked (one write + one delete per message); "off" acks
	// once the message is queued to a live session, as most XMPP servers
	// do (fast; a crash loses what sat in memory); "auto" (default) is on
	// in cluster mode, off on a single node.
	Durable string `toml:"durable"`
}

// Stream tunes XEP-0198 stream management.
type Stream struct {
	// ResumeTimeout is how long a dropped session may be resumed; after it
	// the unacknowledged messages move to the offline store.
	ResumeTimeout Duration `toml:"resume_timeout"`
}

// Default is the zero-config setup: localhost, ./bluetick-data, the standard
// ports.
func Default() Config {
	return Config{
		Domain:  "localhost",
		DataDir: "bluetick-data",
		Listen: Listen{
			C2S:    ":5222",
			C2STLS: ":5223",
			HTTP:   ":5280",
		},
		TLS: TLS{RequireSTARTTLS: "auto"},
		Limits: Limits{
			MaxStanzaBytes:            256 << 10,
			MaxQueue:                  10000,
			IdleTimeout:               Duration{5 * time.Minute},
			ConnectionsPerIPPerMinute: 300,
			LoginsPerIPPerMinute:      120,
			ExemptLoopback:            true,
			FailedAuthDelay:           Duration{500 * time.Millisecond},
			MaxConnections:            100000,
			NegotiationTimeout:        Duration{60 * time.Second},
		},
		Offline:      Offline{Expiry: Duration{30 * 24 * time.Hour}, Quota: 10000, Durable: "auto"},
		Stream:       Stream{ResumeTimeout: Duration{5 * time.Minute}},
		Cluster:      Cluster{EmbeddedListen: "127.0.0.1:4222"},
		Registration: "closed",
		Push: Push{
			IncludeCount: true,
			MinInterval:  Duration{10 * time.Second},
			MaxRetries:   4,
			RetryTimeout: Duration{time.Minute},
			FCM:          PushFCM{Endpoint: "https://fcm.googleapis.com"},
			APNs:         PushAPNs{Endpoint: "https://api.push.apple.com", PushType: "alert"},
		},
	}
}

// Load reads a TOML file over the defaults. Unknown keys are an error: a
// typo must not silently fall back to a default.
func Load(path string) (Config, error) {
	c := Default()
	if path == "" {
		return c, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("config: %v (pass an existing file to --config, or none for defaults)", err)
	}
	md, err := toml.Decode(string(b), &c)
	if err != nil {
		return c, fmt.Errorf("config %s: %v", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return c, fmt.Errorf("config %s: unknown key %q (see docs/configuration.md for the keys)", path, und[0].String())
	}
	return c, nil
}

// Validate checks every key and returns one error naming the first bad key
// and how to fix it.
func (c *Config) Validate() error {
	if c.Domain == "" {
		return errors.New("config: domain is empty (set domain = \"example.com\")")
	}
	d, err := jid.New("", c.Domain, "")
	if err != nil {
		return fmt.Errorf("config: domain %q is not a valid XMPP domain (use a host name such as chat.example.com)", c.Domain)
	}
	c.Domain = d.Domain()
	if c.DataDir == "" {
		return errors.New("config: data_dir is empty (set data_dir = \"/var/lib/bluetick\")")
	}
	for _, l := range []struct{ key, val string }{
		{"listen.c2s", c.Listen.C2S}, {"listen.c2s_tls", c.Listen.C2STLS},
		{"listen.http", c.Listen.HTTP}, {"listen.https", c.Listen.HTTPTLS},
	} {
		if l.val == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(l.val); err != nil {
			return fmt.Errorf("config: %s = %q is not host:port (use e.g. \":5222\" or \"127.0.0.1:5222\", or \"\" to disable)", l.key, l.val)
		}
	}
	if c.Store != "" && !strings.HasPrefix(c.Store, "postgres://") && !strings.HasPrefix(c.Store, "postgresql://") {
		return fmt.Errorf("config: store = %q (use \"\" for SQLite in data_dir, or a postgres://user:pass@host/db URL)", c.Store)
	}
	if c.Cluster.NATS != "" && c.Store == "" {
		return errors.New("config: cluster.nats is set but store is SQLite; every node must share one PostgreSQL (set store = \"postgres://...\")")
	}
	if c.PostgresMaxConns < 0 {
		return errors.New("config: postgres_max_conns must be 0 (automatic) or more")
	}
	if c.Listen.C2S == "" && c.Listen.C2STLS == "" && c.Listen.HTTP == "" && c.Listen.HTTPTLS == "" {
		return errors.New("config: every listener is disabled (set listen.c2s = \":5222\")")
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		return errors.New("config: tls.cert_file and tls.key_file must be set together (or both left empty for a self-signed certificate)")
	}
	switch c.TLS.RequireSTARTTLS {
	case "auto", "always", "never":
	default:
		return fmt.Errorf("config: tls.require_starttls = %q (use \"auto\", \"always\" or \"never\")", c.TLS.RequireSTARTTLS)
	}
	switch c.Offline.Durable {
	case "auto", "on", "off":
	default:
		return fmt.Errorf("config: offline.durable = %q (use \"auto\", \"on\" or \"off\")", c.Offline.Durable)
	}
	switch c.Registration {
	case "closed", "open":
	default:
		return fmt.Errorf("config: registration = %q (use \"closed\" or \"open\")", c.Registration)
	}
	positive := []struct {
		key string
		v   int64
	}{
		{"limits.max_stanza_bytes", int64(c.Limits.MaxStanzaBytes)},
		{"limits.max_queue", int64(c.Limits.MaxQueue)},
		{"limits.idle_timeout", int64(c.Limits.IdleTimeout.Duration)},
		{"limits.connections_per_ip_per_minute", int64(c.Limits.ConnectionsPerIPPerMinute)},
		{"limits.logins_per_ip_per_minute", int64(c.Limits.LoginsPerIPPerMinute)},
		{"limits.max_connections", int64(c.Limits.MaxConnections)},
		{"limits.negotiation_timeout", int64(c.Limits.NegotiationTimeout.Duration)},
		{"offline.expiry", int64(c.Offline.Expiry.Duration)},
		{"stream.resume_timeout", int64(c.Stream.ResumeTimeout.Duration)},
	}
	for _, p := range positive {
		if p.v <= 0 {
			return fmt.Errorf("config: %s must be greater than zero", p.key)
		}
	}
	if c.Limits.MaxStanzaBytes < 10000 {
		return errors.New("config: limits.max_stanza_bytes must be at least 10000 (RFC 6120 §13.12 requires servers to accept 10000-byte stanzas)")
	}
	if c.Limits.FailedAuthDelay.Duration < 0 {
		return errors.New("config: limits.failed_auth_delay must not be negative")
	}
	if c.Cluster.Node != "" && strings.ContainsAny(c.Cluster.Node, ". *>") {
		return fmt.Errorf("config: cluster.node = %q must not contain dots, spaces, * or > (use e.g. \"node1\")", c.Cluster.Node)
	}
	if c.Offline.Quota < 0 {
		return errors.New("config: offline.quota must be 0 (unlimited) or more")
	}
	return c.Push.validate()
}

func (p *Push) validate() error {
	if p.MinInterval.Duration < 0 {
		return errors.New("config: push.min_interval must not be negative (0 = no rate limit)")
	}
	if p.MaxRetries < 0 || p.RetryTimeout.Duration <= 0 {
		return errors.New("config: push.max_retries must be 0 or more and push.retry_timeout greater than zero")
	}
	if !p.Enabled {
		return nil
	}
	if !p.PushProviders() {
		return errors.New("config: push.enabled is true but no provider is configured (set push.fcm.service_account_file, push.apns.key_file, push.webpush.enabled or push.webhook.secret)")
	}
	if p.APNs.KeyFile != "" {
		if p.APNs.KeyID == "" || p.APNs.TeamID == "" || p.APNs.Topic == "" {
			return errors.New("config: push.apns.key_file needs push.apns.key_id, push.apns.team_id and push.apns.topic (the app's bundle id)")
		}
		switch p.APNs.PushType {
		case "alert", "background":
		default:
			return fmt.Errorf("config: push.apns.push_type = %q (use \"alert\" or \"background\")", p.APNs.PushType)
		}
	}
	if p.Webhook.Secret != "" && strings.TrimSpace(p.Webhook.AllowedURLs) == "" {
		return errors.New("config: push.webhook.secret is set but push.webhook.allowed_urls is empty (list the URL prefixes devices may register)")
	}
	return nil
}

// DBPath is where the SQLite database lives.
func (c *Config) DBPath() string { return filepath.Join(c.DataDir, "bluetick.db") }

// DurableDelivery resolves offline.durable for this node.
func (c *Config) DurableDelivery() bool {
	return c.Offline.Durable == "on" || c.Offline.Durable == "auto" && c.Cluster.NATS != ""
}
