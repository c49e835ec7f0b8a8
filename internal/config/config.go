// Package config is Bluetick's one configuration: every key, its default and
// why, loaded from an optional TOML file and overridden by flags. Validate
// names the offending key and the fix, so a bad config fails with one clear
// line instead of a surprise at runtime.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
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
	Roster  Roster  `toml:"roster"`
	Offline Offline `toml:"offline"`
	Archive Archive `toml:"archive"` // mam branch
	Stream  Stream  `toml:"stream"`
	// Registration is XEP-0077 in-band registration: "closed" (default: only
	// `bluetick user add` creates accounts) or "open" (anyone may register).
	Registration string `toml:"registration"`
	// Admins are the bare JIDs (of Domain) allowed to run the XEP-0133
	// service administration commands from their clients.
	Admins  []string `toml:"admins"`
	Cluster Cluster  `toml:"cluster"`
	Upload  Upload   `toml:"upload"`
	TURN    TURN     `toml:"turn"`
	Contact Contact  `toml:"contact"`
	MUC     MUC      `toml:"muc"`
	Push    Push     `toml:"push"`
	Fast    Fast     `toml:"fast"` // XEP-0484 login tokens (fast.go)
	Web     Web      `toml:"web"`  // Bluetick Web, the browser app (web.go)
	SASL    SASL     `toml:"sasl"` // password mechanisms offered (sasl.go)
	// Components are the XEP-0114 external components allowed to attach.
	Components []Component `toml:"components"`
}

// Upload is XEP-0363 HTTP file upload: clients put media (already
// encrypted by them) on the HTTP listener under /upload/ and send only the
// link in a message, so chat traffic never carries files.
type Upload struct {
	// Enabled turns the service on. It also needs an HTTP listener
	// (listen.http or listen.https) to receive the files; without one it
	// stays off and is not advertised.
	Enabled bool `toml:"enabled"`
	// MaxFileSize caps one file, in bytes; clients learn it from disco
	// before asking (100 MB holds a few minutes of phone video).
	MaxFileSize int64 `toml:"max_file_size"`
	// ContentTypes lists the only media types accepted ("image/jpeg",
	// "image/*"); empty accepts all: files are end-to-end encrypted blobs
	// to the server anyway.
	ContentTypes []string `toml:"content_types"`
	// Quota caps the bytes one user keeps stored (files not yet expired),
	// so one account cannot fill the disk (0 = unlimited).
	Quota int64 `toml:"quota"`
	// UploadsPerHour caps slot requests per user per hour (0 = unlimited).
	UploadsPerHour int `toml:"uploads_per_hour"`
	// Expiry: files older than this are deleted by a background sweeper,
	// as WhatsApp deletes media after 30 days.
	Expiry Duration `toml:"expiry"`
	// TokenLifetime bounds the time between a slot request and the start
	// of its PUT; XEP-0363 recommends about 300 s.
	TokenLifetime Duration `toml:"token_lifetime"`
	// BaseURL is the public prefix of the links handed out
	// ("https://media.example.com"); empty derives it from the HTTP
	// listener: https://<domain>:<port> of listen.https, else
	// http://<domain>:<port> of listen.http. Behind a TLS proxy set it.
	BaseURL string `toml:"base_url"`
	// Secret keys the HMAC of upload tokens. Empty: a random secret is
	// generated once in data_dir/upload.secret. Every node of a cluster
	// must have the same secret, so set it here for clusters (at least
	// 32 characters).
	Secret string `toml:"secret"`
	// Storage is where files live: "disk" (Dir) or "s3" (the s3 keys).
	// A cluster needs storage every node reaches: s3, or a shared Dir.
	Storage string `toml:"storage"`
	// Dir is the disk storage directory; empty is data_dir/upload.
	Dir string   `toml:"dir"`
	S3  UploadS3 `toml:"s3"`
}

// UploadS3 is an S3-compatible bucket (AWS, MinIO, versitygw, Ceph...).
type UploadS3 struct {
	// Endpoint is host:port of the S3 API ("s3.amazonaws.com").
	Endpoint string `toml:"endpoint"`
	// Bucket must exist.
	Bucket    string `toml:"bucket"`
	AccessKey string `toml:"access_key"`
	SecretKey string `toml:"secret_key"`
	Region    string `toml:"region"`
	// TLS uses https to reach the endpoint.
	TLS bool `toml:"tls"`
	// Prefix is prepended to every object name, to share a bucket.
	Prefix string `toml:"prefix"`
}

// TURN configures STUN/TURN for audio and video calls. Clients behind NAT
// can only reach each other's media through a relay; they find it, with
// short-lived credentials, through XEP-0215 external service discovery.
// Either the built-in server runs (pion/turn), or credentials are handed
// out for an external TURN server such as coturn sharing the secret
// (coturn's use-auth-secret / TURN REST API scheme). Both use the same
// credentials: username "<expiry-unix>:<bare JID>", password
// base64(HMAC-SHA1(secret, username)).
type TURN struct {
	// Enabled turns TURN on: the built-in server starts (unless External)
	// and XEP-0215 is advertised. Off by default: a relay needs open UDP
	// ports and a public address, which only the operator knows.
	Enabled bool `toml:"enabled"`
	// External hands out credentials for another TURN server instead of
	// running one; Secret must then be its static-auth-secret and Host
	// its address.
	External bool `toml:"external"`
	// Listen is the built-in server's UDP and TCP address.
	Listen string `toml:"listen"`
	// ExternalIP is this host's public IP: the relay address put in
	// allocations (behind NAT the local address would be useless to a
	// peer). Empty: the IP of Listen, which must then be a specific IP.
	ExternalIP string `toml:"external_ip"`
	// Host is the name or IP clients are told to contact; empty: ExternalIP,
	// else the IP of Listen, else the domain.
	Host string `toml:"host"`
	// Port is the port clients are told; 0: the port of Listen (built-in)
	// or 3478 (external).
	Port int `toml:"port"`
	// Transports lists what is offered: "udp" and/or "tcp".
	Transports []string `toml:"transports"`
	// RelayMinPort and RelayMaxPort bound the UDP ports relays are
	// allocated on: the range to open in a firewall.
	RelayMinPort int `toml:"relay_min_port"`
	RelayMaxPort int `toml:"relay_max_port"`
	// AllowLoopbackPeers lets relays send to 127.0.0.0/8 and ::1. Off, as
	// in coturn: a relay must not be a way into services listening only on
	// the server's loopback. Tests on one machine turn it on.
	AllowLoopbackPeers bool `toml:"allow_loopback_peers"`
	// Realm is the TURN realm; empty: the domain.
	Realm string `toml:"realm"`
	// CredentialTTL is how long handed-out credentials stay valid. A call
	// keeps its allocation past expiry only until its next refresh, so it
	// must outlast the longest call.
	CredentialTTL Duration `toml:"credential_ttl"`
	// Secret is the HMAC key shared with the TURN server. Empty with the
	// built-in server: one is generated into data_dir (turn-secret) and
	// kept, so credentials survive restarts.
	Secret string `toml:"secret"`
}

// Contact lists the XEP-0157 contact addresses published in the server's
// disco#info, so users and other operators know whom to tell about abuse,
// outages or security problems. Each entry is a URI: mailto:, xmpp:,
// https:. Empty lists are left out; all empty publishes no form.
type Contact struct {
	Abuse    []string `toml:"abuse"`
	Admin    []string `toml:"admin"`
	Feedback []string `toml:"feedback"`
	Sales    []string `toml:"sales"`
	Security []string `toml:"security"`
	Status   []string `toml:"status"`
	Support  []string `toml:"support"`
}

// MUC is the group chat service: WhatsApp-style groups as XEP-0045 rooms
// (members-only, persistent, archived) on their own domain, because
// clients discover and address group chat services by domain (XEP-0045
// §6.1), never inside the users' domain.
type MUC struct {
	// Enabled runs the service. Off, stanzas to Domain are answered like
	// any other unknown domain.
	Enabled bool `toml:"enabled"`
	// Domain of the service; "" is "groups." + domain, so changing the
	// server's domain moves the groups along.
	Domain string `toml:"domain"`
	// MaxMembers caps the affiliated users of one group (WhatsApp: 1024);
	// an owner may lower it per room (muc#roomconfig_maxusers), never
	// raise it above this.
	MaxMembers int `toml:"max_members"`
	// HistoryOnJoin is how many recent messages a joining occupant gets
	// when its client does not ask for a different amount (XEP-0045
	// §7.2.15); the full backlog is in the room archive (XEP-0313).
	HistoryOnJoin int `toml:"history_on_join"`
	// ArchiveRetention deletes archived group messages older than this;
	// 0 keeps them forever (members who were offline for a long time
	// still catch up).
	ArchiveRetention Duration `toml:"archive_retention"`
}

// MUCDomain resolves muc.domain.
func (c *Config) MUCDomain() string {
	if c.MUC.Domain != "" {
		return c.MUC.Domain
	}
	return "groups." + c.Domain
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
	// AllowPrivate lets Web Push endpoints and webhook URLs reach
	// non-public addresses (refused by default: devices choose these
	// URLs): networks ("127.0.0.0/8", "10.0.0.5") and host names
	// ("push.internal", which may then resolve to private addresses).
	// Parsed by the push gateway (docs/push.md).
	AllowPrivate []string `toml:"allow_private"`

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
	// AllowedURLs is a comma-separated list of URLs a device may register
	// under (same scheme, host and port, path prefix on a segment
	// boundary; the server makes requests to them, so they must be
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
	// PublicURL is the base URL web clients reach the HTTP listener at
	// ("https://chat.example.com"), written into XEP-0156 host-meta. Empty:
	// the scheme and Host of each request, right when clients connect
	// directly; behind a TLS-terminating proxy set it.
	PublicURL string `toml:"public_url"`
	// Component is the XEP-0114 port external components (gateways, bots)
	// connect to; it is opened only when [[components]] are configured.
	// Loopback by default: the handshake is a shared secret in clear.
	Component string `toml:"component"`
	// Metrics serves Prometheus metrics at /metrics, apart from the public
	// HTTP port. Empty: not served; an address in use: a warning, and the
	// server runs without.
	Metrics string `toml:"metrics"`
	// Admin is the local admin socket `bluetick status`, `user kick` and
	// the other live commands talk to (docs/operations.md): a Unix
	// socket, mode 0600, so only the server's user (and root) can use
	// it. A relative path is in DataDir; "" turns it off.
	Admin string `toml:"admin"`
}

// Component is one XEP-0114 external component: a program that connects
// to Listen.Component and serves Domain (a subdomain such as
// "bot.example.com"), authenticated by Secret.
type Component struct {
	Domain string `toml:"domain"`
	Secret string `toml:"secret"`
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
	// ACME obtains and renews certificates for ACMENames automatically
	// (certmagic), answering the HTTP-01 challenge on listen.http, which
	// port 80 of every name must reach. Not with CertFile.
	ACME bool `toml:"acme"`
	// ACMEEmail is the ACME account's contact (the CA's expiry warnings).
	ACMEEmail string `toml:"acme_email"`
	// ACMECA is the CA's directory URL; empty is Let's Encrypt production.
	ACMECA string `toml:"acme_ca"`
	// ACMECARoot is a PEM file of roots trusted for the CA's HTTPS (a
	// private CA, or Pebble in tests); empty: the system's roots.
	ACMECARoot string `toml:"acme_ca_root"`
	// ACMEStorage is the directory of the certificates, their keys and the
	// ACME account; empty is data_dir/acme. Cluster nodes that share it
	// (a shared file system) order once and all serve the result.
	ACMEStorage string `toml:"acme_storage"`
	// ACMERenewCheck is how often certificates are checked for renewal;
	// they are renewed a third of their lifetime before expiry (or when
	// the CA's renewal information says so).
	ACMERenewCheck Duration `toml:"acme_renew_check"`
}

// ACMENames are the names tls.acme orders certificates for: the domain,
// the group chat domain when groups are on, push.<domain> when push is
// on, and the host of upload.base_url when it is a subdomain of the
// domain (served by this server's HTTP listener).
func (c *Config) ACMENames() []string {
	names := []string{c.Domain}
	add := func(n string) {
		n = strings.ToLower(strings.TrimSuffix(n, "."))
		for _, have := range names {
			if have == n {
				return
			}
		}
		names = append(names, n)
	}
	if c.MUC.Enabled {
		add(c.MUCDomain())
	}
	if c.Push.Enabled {
		add("push." + c.Domain)
	}
	if c.Upload.Enabled && c.Upload.BaseURL != "" {
		if u, err := url.Parse(c.Upload.BaseURL); err == nil && strings.HasSuffix(u.Hostname(), "."+c.Domain) {
			add(u.Hostname())
		}
	}
	return names
}

// ACMEStorageDir resolves tls.acme_storage.
func (c *Config) ACMEStorageDir() string {
	if c.TLS.ACMEStorage != "" {
		return c.TLS.ACMEStorage
	}
	return filepath.Join(c.DataDir, "acme")
}

// validateACME checks the tls.acme keys.
func (c *Config) validateACME() error {
	t := c.TLS
	if !t.ACME {
		if t.ACMEEmail != "" || t.ACMECA != "" || t.ACMECARoot != "" || t.ACMEStorage != "" {
			return errors.New("config: tls.acme_email, tls.acme_ca, tls.acme_ca_root and tls.acme_storage need tls.acme = true")
		}
		return nil
	}
	if t.CertFile != "" {
		return errors.New("config: tls.acme = true and tls.cert_file are both set; choose one (remove cert_file/key_file to have certificates ordered automatically)")
	}
	if t.ACMECA == "" && !publicName(c.Domain) {
		return fmt.Errorf("config: tls.acme = true needs a public domain name, and domain = %q is not one (a CA cannot validate it); set domain = \"chat.example.com\", or tls.acme_ca for a test CA", c.Domain)
	}
	if t.ACMECA != "" {
		if u, err := url.Parse(t.ACMECA); err != nil || u.Scheme != "https" || u.Host == "" {
			return fmt.Errorf("config: tls.acme_ca = %q is not an https:// ACME directory URL (e.g. \"https://acme-staging-v02.api.letsencrypt.org/directory\")", t.ACMECA)
		}
	}
	if c.Listen.HTTP == "" {
		return errors.New("config: tls.acme = true needs listen.http: the CA's HTTP-01 challenge is answered there (port 80 must reach it; e.g. listen.http = \":80\")")
	}
	if t.ACMERenewCheck.Duration <= 0 {
		return errors.New("config: tls.acme_renew_check must be greater than zero (e.g. \"10m\")")
	}
	return nil
}

// publicName says whether a CA could validate name: a host name with a
// dot, not an IP address, not localhost, not a special-use suffix.
func publicName(name string) bool {
	if net.ParseIP(name) != nil || !strings.Contains(name, ".") {
		return false
	}
	for _, s := range []string{".localhost", ".local", ".test", ".invalid", ".example", ".internal", ".lan", ".home.arpa"} {
		if strings.HasSuffix(name, s) {
			return false
		}
	}
	return true
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
	// StanzasPerSecond and BytesPerSecond shape what one session sends
	// (token buckets, like ejabberd's shapers): a client over either rate
	// is slowed — the server stops reading its socket until the bucket
	// refills and TCP pushes back — not refused. A quiet session saves up
	// ShaperBurst of each rate (100/s for 10 s: 1,000 stanzas at once).
	// 0 turns a rate off; exempt_loopback exempts loopback clients.
	StanzasPerSecond int      `toml:"stanzas_per_second"`
	BytesPerSecond   int      `toml:"bytes_per_second"`
	ShaperBurst      Duration `toml:"shaper_burst"`
	// FloodDisconnect: a session held back by the shaper without a break
	// for this long is cut with a policy-violation stream error (0: it
	// is only ever slowed).
	FloodDisconnect Duration `toml:"flood_disconnect"`
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
	// Per-account login throttle (docs/configuration.md#login-throttling),
	// on whatever address, loopback included: after AccountLoginFailures
	// failed logins to one account from addresses it never logged in from,
	// each further attempt from such an address waits AccountLoginBackoff,
	// doubling per failure up to AccountLoginBackoffMax, and is refused
	// until then; the count starts again after AccountLoginWindow without
	// a failure. 0 failures turns it off.
	AccountLoginFailures   int      `toml:"account_login_failures"`
	AccountLoginBackoff    Duration `toml:"account_login_backoff"`
	AccountLoginBackoffMax Duration `toml:"account_login_backoff_max"`
	AccountLoginWindow     Duration `toml:"account_login_window"`
	// MaxConnections caps concurrent client connections on this node.
	MaxConnections int `toml:"max_connections"`
	// NegotiationTimeout bounds the time from TCP accept to a bound session.
	NegotiationTimeout Duration `toml:"negotiation_timeout"`
	// WriteTimeout cuts a client that does not read: a write to it (a
	// stanza, an HTTP response) that makes no progress this long means its
	// socket buffers are full. Its messages go to the offline store.
	WriteTimeout Duration `toml:"write_timeout"`
	// ConnectionsPerIP caps the connections one address holds open at once
	// on all listeners together (XMPP, HTTP); never more than a quarter
	// of the process's file descriptors, whatever the setting. A NAT
	// gateway (a school, an office) is one address: keep it well above
	// the users behind one.
	ConnectionsPerIP int `toml:"connections_per_ip"`
	// HTTPIdleTimeout closes an HTTP keep-alive connection idle this long.
	HTTPIdleTimeout Duration `toml:"http_idle_timeout"`
	// HTTPReadTimeout cuts an HTTP request whose headers or body make no
	// progress this long (slow uploads progress; stalled ones are cut).
	HTTPReadTimeout Duration `toml:"http_read_timeout"`
	// GCHeadroomMB is the room, in MiB, the garbage collector may let the
	// heap grow past the live data before collecting. Go's default is
	// 100% of the live heap, which for a server whose heap is mostly
	// long-lived sessions doubles its memory for nothing; a fixed room
	// (turned into GOGC between 25 and 100) keeps memory per session
	// close to the live data. 0 keeps Go's default; GOGC or GOMEMLIMIT in
	// the environment override this.
	GCHeadroomMB int `toml:"gc_headroom_mb"`
}

// Roster bounds rosters and presence subscriptions (RFC 6121), so that
// one account can neither fill the store nor flood others with requests.
// 0 lifts a bound.
type Roster struct {
	// MaxItems caps one roster's items, counting remembered requests
	// from others; a roster set or a subscription past it is refused.
	MaxItems int `toml:"max_items"`
	// MaxPendingOut caps one account's subscription requests still
	// waiting for an answer.
	MaxPendingOut int `toml:"max_pending_out"`
	// SubscriptionsPerMinute caps the new subscription requests one
	// account sends (a burst of this many, refilled over a minute).
	SubscriptionsPerMinute int `toml:"subscriptions_per_minute"`
}

// Offline is the store-and-forward queue for users who are not online.
type Offline struct {
	// Expiry: messages older than this are deleted, as WhatsApp does after
	// 30 days.
	Expiry Duration `toml:"expiry"`
	// Quota is the most messages held per user; more are refused with
	// resource-constraint so the sender knows (0 = unlimited).
	Quota int `toml:"quota"`
	// Durable: "on" (the default) gives the sender's ✓ only once the
	// message is in the store or its recipient's client has acknowledged
	// it, so no restart, crash or node death loses an acknowledged message.
	// Writes are batched (one commit for all the messages of an instant)
	// and a message acked by its recipient first is never written.
	// DurableOff gives the ✓ once the message is queued in memory to a
	// live session, as most XMPP servers do: a crash or kill loses what
	// sat there. "auto", the old default, now means "on".
	Durable string `toml:"durable"`
}

// Archive is server-side message history (XEP-0313 MAM). The default keeps
// none, as WhatsApp does: the server holds a message only until it is
// delivered (the offline store), so a seized or breached server has no
// conversation history to give away, and history lives on the devices.
// "archive" keeps both sides of every 1:1 chat message for Retention, so
// a new or reinstalled device can fetch it; with OMEMO the archive holds
// only ciphertext.
type Archive struct {
	// Mode is "none" (default: no history; MAM is neither advertised nor
	// answered) or "archive".
	Mode string `toml:"mode"`
	// Retention: archived messages older than this are deleted by an
	// hourly sweep.
	Retention Duration `toml:"retention"`
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
			C2S:       ":5222",
			C2STLS:    ":5223",
			HTTP:      ":5280",
			Component: "127.0.0.1:5347",
			Metrics:   "127.0.0.1:9280",
			Admin:     "admin.sock",
		},
		TLS: TLS{RequireSTARTTLS: "auto", ACMERenewCheck: Duration{10 * time.Minute}},
		Limits: Limits{
			MaxStanzaBytes:            256 << 10,
			MaxQueue:                  10000,
			StanzasPerSecond:          100,
			BytesPerSecond:            256 << 10,
			ShaperBurst:               Duration{10 * time.Second},
			FloodDisconnect:           Duration{2 * time.Minute},
			IdleTimeout:               Duration{5 * time.Minute},
			ConnectionsPerIPPerMinute: 300,
			LoginsPerIPPerMinute:      120,
			ExemptLoopback:            true,
			FailedAuthDelay:           Duration{500 * time.Millisecond},
			AccountLoginFailures:      5,
			AccountLoginBackoff:       Duration{time.Second},
			AccountLoginBackoffMax:    Duration{5 * time.Minute},
			AccountLoginWindow:        Duration{time.Hour},
			MaxConnections:            100000,
			NegotiationTimeout:        Duration{60 * time.Second},
			WriteTimeout:              Duration{30 * time.Second},
			ConnectionsPerIP:          1000,
			HTTPIdleTimeout:           Duration{60 * time.Second},
			HTTPReadTimeout:           Duration{30 * time.Second},
			GCHeadroomMB:              64,
		},
		Roster:       Roster{MaxItems: 2000, MaxPendingOut: 100, SubscriptionsPerMinute: 30},
		Offline:      Offline{Expiry: Duration{30 * 24 * time.Hour}, Quota: 10000, Durable: "on"},
		Archive:      Archive{Mode: "none", Retention: Duration{30 * 24 * time.Hour}},
		Stream:       Stream{ResumeTimeout: Duration{5 * time.Minute}},
		Cluster:      Cluster{EmbeddedListen: "127.0.0.1:4222"},
		Registration: "closed",
		Admins:       []string{},
		Upload: Upload{
			Enabled:        true,
			MaxFileSize:    100 << 20,
			Quota:          1 << 30,
			UploadsPerHour: 100,
			Expiry:         Duration{30 * 24 * time.Hour},
			TokenLifetime:  Duration{5 * time.Minute},
			Storage:        "disk",
			S3:             UploadS3{Region: "us-east-1", TLS: true},
		},
		TURN: TURN{
			Listen:        "0.0.0.0:3478",
			Transports:    []string{"udp", "tcp"},
			RelayMinPort:  49152,
			RelayMaxPort:  65535,
			CredentialTTL: Duration{24 * time.Hour},
		},
		Contact: Contact{
			Abuse: []string{}, Admin: []string{}, Feedback: []string{}, Sales: []string{},
			Security: []string{}, Status: []string{}, Support: []string{},
		},
		MUC: MUC{Enabled: true, MaxMembers: 1024, HistoryOnJoin: 20},
		Push: Push{
			IncludeCount: true,
			MinInterval:  Duration{10 * time.Second},
			MaxRetries:   4,
			RetryTimeout: Duration{time.Minute},
			AllowPrivate: []string{},
			FCM:          PushFCM{Endpoint: "https://fcm.googleapis.com"},
			APNs:         PushAPNs{Endpoint: "https://api.push.apple.com", PushType: "alert"},
		},
		Fast: DefaultFast(),
		Web:  DefaultWeb(),
		SASL: DefaultSASL(),
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
	if err := c.validateAdmins(); err != nil {
		return err
	}
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
	if err := c.validateACME(); err != nil {
		return err
	}
	switch c.Offline.Durable {
	case "auto", "on", DurableOff:
	case "off":
		return fmt.Errorf("config: offline.durable = \"off\" is now spelled %q: it acknowledges messages held only in memory, which a crash or restart loses; remove the line for the safe default", DurableOff)
	default:
		return fmt.Errorf("config: offline.durable = %q (use \"on\", or %q to trade acknowledged messages for speed)", c.Offline.Durable, DurableOff)
	}
	switch c.Archive.Mode {
	case "none", "archive":
	default:
		return fmt.Errorf("config: archive.mode = %q (use \"none\" or \"archive\")", c.Archive.Mode)
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
		{"limits.write_timeout", int64(c.Limits.WriteTimeout.Duration)},
		{"limits.connections_per_ip", int64(c.Limits.ConnectionsPerIP)},
		{"limits.http_idle_timeout", int64(c.Limits.HTTPIdleTimeout.Duration)},
		{"limits.http_read_timeout", int64(c.Limits.HTTPReadTimeout.Duration)},
		{"offline.expiry", int64(c.Offline.Expiry.Duration)},
		{"archive.retention", int64(c.Archive.Retention.Duration)},
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
	switch l := c.Limits; {
	case l.AccountLoginFailures < 0:
		return errors.New("config: limits.account_login_failures must be 0 (no per-account throttle) or more")
	case l.AccountLoginFailures == 0:
	case l.AccountLoginBackoff.Duration <= 0, l.AccountLoginWindow.Duration <= 0:
		return errors.New("config: limits.account_login_backoff and limits.account_login_window must be greater than zero")
	case l.AccountLoginBackoffMax.Duration < l.AccountLoginBackoff.Duration:
		return errors.New("config: limits.account_login_backoff_max must be at least limits.account_login_backoff")
	}
	if c.Cluster.Node != "" && strings.ContainsAny(c.Cluster.Node, ". *>") {
		return fmt.Errorf("config: cluster.node = %q must not contain dots, spaces, * or > (use e.g. \"node1\")", c.Cluster.Node)
	}
	if c.Offline.Quota < 0 {
		return errors.New("config: offline.quota must be 0 (unlimited) or more")
	}
	for _, p := range []struct {
		key string
		v   int64
	}{
		{"limits.stanzas_per_second", int64(c.Limits.StanzasPerSecond)},
		{"limits.bytes_per_second", int64(c.Limits.BytesPerSecond)},
		{"limits.flood_disconnect", int64(c.Limits.FloodDisconnect.Duration)},
		{"roster.max_items", int64(c.Roster.MaxItems)},
		{"roster.max_pending_out", int64(c.Roster.MaxPendingOut)},
		{"roster.subscriptions_per_minute", int64(c.Roster.SubscriptionsPerMinute)},
	} {
		if p.v < 0 {
			return fmt.Errorf("config: %s must be 0 (off) or more", p.key)
		}
	}
	if (c.Limits.StanzasPerSecond > 0 || c.Limits.BytesPerSecond > 0) && c.Limits.ShaperBurst.Duration < time.Second {
		return errors.New("config: limits.shaper_burst must be at least 1s (e.g. \"10s\": how much of each rate a quiet session saves up)")
	}
	if c.MUC.Domain != "" {
		d, err := jid.New("", c.MUC.Domain, "")
		if err != nil {
			return fmt.Errorf("config: muc.domain = %q is not a valid XMPP domain (use e.g. \"groups.%s\", or \"\" for that default)", c.MUC.Domain, c.Domain)
		}
		c.MUC.Domain = d.Domain()
		if c.MUC.Domain == c.Domain {
			return errors.New("config: muc.domain must differ from domain (use e.g. \"groups." + c.Domain + "\")")
		}
	}
	if c.MUC.MaxMembers < 2 {
		return errors.New("config: muc.max_members must be at least 2 (WhatsApp allows 1024)")
	}
	if c.MUC.HistoryOnJoin < 0 {
		return errors.New("config: muc.history_on_join must be 0 (none) or more")
	}
	if c.MUC.ArchiveRetention.Duration < 0 {
		return errors.New("config: muc.archive_retention must be 0 (forever) or a positive duration")
	}
	if c.Limits.GCHeadroomMB < 0 {
		return errors.New("config: limits.gc_headroom_mb must be 0 (Go's default GC) or more")
	}
	if err := c.validateComponents(); err != nil {
		return err
	}
	if c.Listen.PublicURL != "" {
		u, err := url.Parse(c.Listen.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("config: listen.public_url = %q is not a base URL (use e.g. \"https://chat.example.com\")", c.Listen.PublicURL)
		}
	}
	if err := c.validateContact(); err != nil {
		return err
	}
	if err := c.validateTURN(); err != nil {
		return err
	}
	if err := c.validateUpload(); err != nil {
		return err
	}
	if err := c.Fast.validate(); err != nil {
		return err
	}
	if err := c.Web.validate(); err != nil {
		return err
	}
	return c.Push.validate()
}

// validateAdmins checks and normalizes admins: each a bare JID of the
// server's domain (alice@example.com), written as it will be compared.
func (c *Config) validateAdmins() error {
	for i, a := range c.Admins {
		j, err := jid.Parse(a)
		switch {
		case err != nil || j.Local() == "":
			return fmt.Errorf("config: admins: %q is not an account address (use e.g. \"alice@%s\")", a, c.Domain)
		case !j.IsBare():
			return fmt.Errorf("config: admins: %q names a resource; give the bare address %s", a, j.BareString())
		case j.Domain() != c.Domain:
			return fmt.Errorf("config: admins: %q is not on this server's domain %s (use %s@%s)", a, c.Domain, j.Local(), c.Domain)
		}
		c.Admins[i] = j.String()
	}
	return nil
}

func (c *Config) validateComponents() error {
	seen := map[string]bool{}
	for i, comp := range c.Components {
		d, err := jid.New("", comp.Domain, "")
		if err != nil || comp.Domain == "" {
			return fmt.Errorf("config: components[%d].domain = %q is not an XMPP domain (use e.g. \"bot.%s\")", i, comp.Domain, c.Domain)
		}
		c.Components[i].Domain = d.Domain()
		if d.Domain() == c.Domain || d.Domain() == c.MUCDomain() || seen[d.Domain()] {
			return fmt.Errorf("config: components[%d].domain = %q is already served (the server, the groups service or another component)", i, comp.Domain)
		}
		seen[d.Domain()] = true
		if len(comp.Secret) < 16 {
			return fmt.Errorf("config: components[%d].secret must be at least 16 characters", i)
		}
	}
	if len(c.Components) > 0 && c.Listen.Component == "" {
		return errors.New("config: listen.component is empty but [[components]] are configured (use e.g. \"127.0.0.1:5347\")")
	}
	return nil
}

func (c *Config) validateContact() error {
	for _, l := range []struct {
		key  string
		uris []string
	}{
		{"abuse", c.Contact.Abuse}, {"admin", c.Contact.Admin}, {"feedback", c.Contact.Feedback},
		{"sales", c.Contact.Sales}, {"security", c.Contact.Security}, {"status", c.Contact.Status},
		{"support", c.Contact.Support},
	} {
		for _, s := range l.uris {
			u, err := url.Parse(s)
			if err != nil || u.Scheme == "" || u.Opaque == "" && u.Host == "" {
				return fmt.Errorf("config: contact.%s has %q, not a URI (use e.g. \"mailto:abuse@example.com\", \"xmpp:admin@example.com\" or \"https://example.com/abuse\")", l.key, s)
			}
		}
	}
	return nil
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

func (c *Config) validateTURN() error {
	t := &c.TURN
	if !t.Enabled {
		return nil
	}
	if len(t.Transports) == 0 {
		return errors.New("config: turn.transports is empty (use [\"udp\", \"tcp\"])")
	}
	for _, tr := range t.Transports {
		if tr != "udp" && tr != "tcp" {
			return fmt.Errorf("config: turn.transports has %q (use \"udp\" and/or \"tcp\")", tr)
		}
	}
	if t.Port < 0 || t.Port > 65535 {
		return fmt.Errorf("config: turn.port = %d is not a port (0 picks the default)", t.Port)
	}
	if t.CredentialTTL.Duration < time.Minute {
		return errors.New("config: turn.credential_ttl must be at least 1m (calls refresh their allocation with it)")
	}
	if c.Cluster.NATS != "" && t.Secret == "" {
		return errors.New("config: turn.secret is empty in cluster mode; set the same secret on every node so each node's relay accepts credentials any node hands out")
	}
	if t.ExternalIP != "" && net.ParseIP(t.ExternalIP) == nil {
		return fmt.Errorf("config: turn.external_ip = %q is not an IP address", t.ExternalIP)
	}
	if t.External {
		if t.Secret == "" {
			return errors.New("config: turn.external is on but turn.secret is empty (set it to the TURN server's static-auth-secret)")
		}
		if t.Host == "" {
			return errors.New("config: turn.external is on but turn.host is empty (set it to the TURN server's public name or IP)")
		}
		return nil
	}
	host, _, err := net.SplitHostPort(t.Listen)
	if err != nil {
		return fmt.Errorf("config: turn.listen = %q is not host:port (use e.g. \"0.0.0.0:3478\")", t.Listen)
	}
	ip := net.ParseIP(host)
	if host != "" && ip == nil {
		return fmt.Errorf("config: turn.listen = %q needs an IP address, not a name", t.Listen)
	}
	if t.ExternalIP == "" && (ip == nil || ip.IsUnspecified()) {
		return fmt.Errorf("config: turn.listen = %q listens on every address, so turn.external_ip must say which one peers can reach (set external_ip = \"203.0.113.7\")", t.Listen)
	}
	relay := net.ParseIP(t.ExternalIP)
	if relay == nil {
		relay = ip
	}
	if relay.To4() == nil {
		return fmt.Errorf("config: the TURN relay address %s is IPv6, but relays are IPv4 only (set turn.external_ip to this host's public IPv4 address)", relay)
	}
	if t.RelayMinPort < 1 || t.RelayMaxPort > 65535 || t.RelayMinPort > t.RelayMaxPort {
		return fmt.Errorf("config: turn.relay_min_port = %d, turn.relay_max_port = %d is not a port range (use e.g. 49152 and 65535)", t.RelayMinPort, t.RelayMaxPort)
	}
	return nil
}

func (c *Config) validateUpload() error {
	u := &c.Upload
	if u.MaxFileSize <= 0 {
		return errors.New("config: upload.max_file_size must be greater than zero (bytes)")
	}
	if u.Quota < 0 {
		return errors.New("config: upload.quota must be 0 (unlimited) or more (bytes)")
	}
	if u.UploadsPerHour < 0 {
		return errors.New("config: upload.uploads_per_hour must be 0 (unlimited) or more")
	}
	if u.Expiry.Duration <= 0 {
		return errors.New("config: upload.expiry must be greater than zero (e.g. \"30d\")")
	}
	if u.TokenLifetime.Duration <= 0 {
		return errors.New("config: upload.token_lifetime must be greater than zero (e.g. \"5m\")")
	}
	for _, t := range u.ContentTypes {
		if i := strings.IndexByte(t, '/'); i <= 0 || i == len(t)-1 || strings.ContainsAny(t, " ;,") {
			return fmt.Errorf("config: upload.content_types entry %q is not a media type (use e.g. \"image/jpeg\" or \"image/*\")", t)
		}
	}
	if u.BaseURL != "" && !strings.HasPrefix(u.BaseURL, "http://") && !strings.HasPrefix(u.BaseURL, "https://") {
		return fmt.Errorf("config: upload.base_url = %q must start with https:// (or http:// for testing)", u.BaseURL)
	}
	if u.Secret != "" && len(u.Secret) < 32 {
		return errors.New("config: upload.secret must be at least 32 characters (or empty for a generated one in data_dir)")
	}
	switch u.Storage {
	case "disk":
	case "s3":
		if u.S3.Endpoint == "" || u.S3.Bucket == "" {
			return errors.New("config: upload.storage = \"s3\" needs upload.s3.endpoint and upload.s3.bucket")
		}
	default:
		return fmt.Errorf("config: upload.storage = %q (use \"disk\" or \"s3\")", u.Storage)
	}
	return nil
}

// UploadDir is where disk upload storage lives.
func (c *Config) UploadDir() string {
	if c.Upload.Dir != "" {
		return c.Upload.Dir
	}
	return filepath.Join(c.DataDir, "upload")
}

// UploadBaseURL resolves upload.base_url: the configured one, else derived
// from the HTTPS or HTTP listener's port and the domain; "" when there is
// no HTTP listener (upload then stays off).
func (c *Config) UploadBaseURL() string {
	if c.Upload.BaseURL != "" {
		return strings.TrimRight(c.Upload.BaseURL, "/")
	}
	for _, l := range []struct{ scheme, addr string }{{"https", c.Listen.HTTPTLS}, {"http", c.Listen.HTTP}} {
		if l.addr == "" {
			continue
		}
		_, port, err := net.SplitHostPort(l.addr)
		if err != nil {
			continue
		}
		return l.scheme + "://" + net.JoinHostPort(c.Domain, port)
	}
	return ""
}

// DBPath is where the SQLite database lives.
func (c *Config) DBPath() string { return filepath.Join(c.DataDir, "bluetick.db") }

// AdminSocket is the path of the admin socket, "" when it is off.
func (c *Config) AdminSocket() string {
	if c.Listen.Admin == "" || filepath.IsAbs(c.Listen.Admin) {
		return c.Listen.Admin
	}
	return filepath.Join(c.DataDir, c.Listen.Admin)
}

// DurableOff is the offline.durable value that turns durable delivery off.
// Its name says what it costs.
const DurableOff = "off-loses-acked-on-crash"

// DurableDelivery resolves offline.durable.
func (c *Config) DurableDelivery() bool { return c.Offline.Durable != DurableOff }
