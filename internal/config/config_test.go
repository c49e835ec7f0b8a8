package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestDocumentedFileIsTheDefaults keeps docs/configuration.md honest: its
// complete example file must load to exactly Default().
func TestDocumentedFileIsTheDefaults(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(doc)
	start := strings.Index(s, "```toml\n")
	end := strings.Index(s[start+8:], "```")
	if start < 0 || end < 0 {
		t.Fatal("no toml block in docs/configuration.md")
	}
	path := filepath.Join(t.TempDir(), "bluetick.toml")
	os.WriteFile(path, []byte(s[start+8:start+8+end]), 0o600)
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := Default(); !reflect.DeepEqual(got, want) {
		t.Fatalf("documented file loads to\n%+v\nwant defaults\n%+v", got, want)
	}
	if err := got.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestBadConfigNamesTheKey(t *testing.T) {
	cases := []struct {
		file    string
		wantKey string
	}{
		{"domian = 'x'", "domian"},
		{"[limits]\nmax_queue = 0", "limits.max_queue"},
		{"[limits]\nmax_stanza_bytes = 100", "limits.max_stanza_bytes"},
		{"[limits]\nstanzas_per_second = -1", "limits.stanzas_per_second"},
		{"[limits]\nshaper_burst = '0s'", "limits.shaper_burst"},
		{"[limits]\nflood_disconnect = '-1s'", "limits.flood_disconnect"},
		{"[roster]\nmax_items = -1", "roster.max_items"},
		{"[roster]\nsubscriptions_per_minute = -5", "roster.subscriptions_per_minute"},
		{"domain = 'a b'", "domain"},
		{"registration = 'maybe'", "registration"},
		{"[listen]\nc2s = '5222'", "listen.c2s"},
		{"[tls]\ncert_file = 'x.pem'", "tls.cert_file"},
		{"[tls]\nrequire_starttls = 'yes'", "tls.require_starttls"},
		{"[tls]\nacme = true", "tls.acme"}, // domain localhost: no CA can validate it
		{"domain = 'chat.bluetick.test'\n[tls]\nacme = true", "tls.acme"},
		{"domain = 'chat.example.com'\n[tls]\nacme = true\ncert_file = 'x.pem'\nkey_file = 'y.pem'", "tls.cert_file"},
		{"domain = 'chat.example.com'\n[tls]\nacme = true\nacme_ca = 'http://127.0.0.1:14000/dir'", "tls.acme_ca"},
		{"domain = 'chat.example.com'\n[listen]\nhttp = ''\n[tls]\nacme = true", "listen.http"},
		{"domain = 'chat.example.com'\n[tls]\nacme = true\nacme_renew_check = '0s'", "tls.acme_renew_check"},
		{"[tls]\nacme_ca = 'https://127.0.0.1:14000/dir'", "tls.acme_ca"},
		{"[offline]\nexpiry = 'forever'", "forever"},
		{"[offline]\ndurable = 'off'", "off-loses-acked-on-crash"}, // the old spelling names the new one
		{"[offline]\ndurable = 'maybe'", "offline.durable"},
		{"[stream]\nresume_timeout = '-5m'", "stream.resume_timeout"},
		{"[fast]\ntoken_lifetime = '10m'", "fast.token_lifetime"},
		{"[fast]\nmax_tokens_per_account = -1", "fast.max_tokens_per_account"},
		{"[fast]\nlifetime = '14d'", "fast.lifetime"},
		{"[web]\ndir = '/nonexistent/bluetick-web'", "web.dir"},
		{"[web]\ndirectory = 'x'", "web.directory"},
		{"[archive]\nmode = 'forever'", "archive.mode"},
		{"[archive]\nretention = '0s'", "archive.retention"},
		{"[upload]\nmax_file_size = 0", "upload.max_file_size"},
		{"[upload]\nstorage = 'ftp'", "upload.storage"},
		{"[upload]\nstorage = 's3'", "upload.s3.endpoint"},
		{"[upload]\nsecret = 'short'", "upload.secret"},
		{"[upload]\ncontent_types = ['jpeg']", "upload.content_types"},
		{"[upload]\nbase_url = 'media.example.com'", "upload.base_url"},
		{"[upload]\ntoken_lifetime = '0s'", "upload.token_lifetime"},
		{"[listen]\npublic_url = 'chat.example.com'", "listen.public_url"},
		{"[contact]\nabuse = ['abuse at example']", "contact.abuse"},
		{"[turn]\nenabled = true", "turn.external_ip"},
		{"[turn]\nenabled = true\nlisten = '127.0.0.1:3478'\ntransports = ['sctp']", "turn.transports"},
		{"[turn]\nenabled = true\nlisten = '127.0.0.1:3478'\nrelay_min_port = 6000\nrelay_max_port = 5000", "turn.relay_min_port"},
		{"[turn]\nenabled = true\nexternal = true\nhost = 'turn.example.com'", "turn.secret"},
		{"[turn]\nenabled = true\nexternal = true\nsecret = 's'", "turn.host"},
		{"[turn]\nenabled = true\nlisten = '127.0.0.1:3478'\ncredential_ttl = '10s'", "turn.credential_ttl"},
		{"[turn]\nenabled = true\nlisten = 'localhost:3478'", "turn.listen"},
		{"[turn]\nenabled = true\nlisten = '[::]:3478'\nexternal_ip = '2001:db8::1'", "turn.external_ip"},
		{"store = 'postgres://x'\n[cluster]\nnats = 'nats://127.0.0.1:4222'\n[turn]\nenabled = true\nlisten = '127.0.0.1:3478'", "turn.secret"},
		{"[limits]\naccount_login_failures = -1", "limits.account_login_failures"},
		{"[limits]\naccount_login_backoff = '0s'", "limits.account_login_backoff"},
		{"[limits]\naccount_login_backoff_max = '1s'\naccount_login_backoff = '2s'", "limits.account_login_backoff_max"},
		{"[muc]\nmax_members = 1", "muc.max_members"},
		{"[muc]\ndomain = 'a b'", "muc.domain"},
		{"[muc]\ndomain = 'localhost'", "muc.domain"},
		{"[muc]\nhistory_on_join = -1", "muc.history_on_join"},
		{"[muc]\narchive_retention = '-1h'", "muc.archive_retention"},
		{"[push]\nenabled = true", "push.enabled"},
		{"[push]\nmin_interval = '-1s'", "push.min_interval"},
		{"[push]\nenabled = true\n[push.apns]\nkey_file = 'k.p8'", "push.apns.key_id"},
		{"[push]\nenabled = true\n[push.apns]\nkey_file = 'k.p8'\nkey_id = 'a'\nteam_id = 'b'\ntopic = 'c'\npush_type = 'voip'", "push.apns.push_type"},
		{"[push]\nenabled = true\n[push.webhook]\nsecret = 's'", "push.webhook.allowed_urls"},
		{"[push.fcm]\nservice_acount_file = 'x'", "service_acount_file"},
	}
	for _, c := range cases {
		path := filepath.Join(t.TempDir(), "c.toml")
		os.WriteFile(path, []byte(c.file), 0o600)
		cfg, err := Load(path)
		if err == nil {
			err = cfg.Validate()
		}
		if err == nil || !strings.Contains(err.Error(), c.wantKey) {
			t.Errorf("%q: error %v, want one naming %q", c.file, err, c.wantKey)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: error spans lines: %q", c.file, err)
		}
	}
}

// TestACME: a test CA allows a test domain; the names are the domain and
// the service domains that are configured.
func TestACME(t *testing.T) {
	c := Default()
	c.Domain = "bluetick.test"
	c.TLS.ACME = true
	if err := c.Validate(); err == nil {
		t.Fatal("acme for bluetick.test without acme_ca validated")
	}
	c.TLS.ACMECA = "https://127.0.0.1:14000/dir"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if got, want := c.ACMENames(), []string{"bluetick.test", "groups.bluetick.test"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("names %v, want %v", got, want)
	}
	c.MUC.Enabled = false
	c.Push.Enabled = true
	c.Upload.Enabled = true
	c.Upload.BaseURL = "https://upload.bluetick.test"
	if got, want := c.ACMENames(), []string{"bluetick.test", "push.bluetick.test", "upload.bluetick.test"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("names %v, want %v", got, want)
	}
	c.Upload.BaseURL = "https://bucket.s3.example.net"
	if got, want := c.ACMENames(), []string{"bluetick.test", "push.bluetick.test"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("names with upload elsewhere %v, want %v", got, want)
	}
	if got := c.ACMEStorageDir(); got != filepath.Join(c.DataDir, "acme") {
		t.Fatalf("storage %q", got)
	}
}

func TestDurationDays(t *testing.T) {
	var d Duration
	if err := d.UnmarshalText([]byte("30d")); err != nil || d.Duration != 30*24*time.Hour {
		t.Fatalf("30d = %v, %v", d, err)
	}
	if err := d.UnmarshalText([]byte("3x")); err == nil {
		t.Fatal("3x accepted")
	}
}

func TestValidateCanonicalizesDomain(t *testing.T) {
	c := Default()
	c.Domain = "Chat.Example.COM"
	if err := c.Validate(); err != nil || c.Domain != "chat.example.com" {
		t.Fatalf("domain %q, %v", c.Domain, err)
	}
}

func TestValidateAdmins(t *testing.T) {
	c := Default()
	c.Admins = []string{"Alice@localhost"}
	if err := c.Validate(); err != nil || c.Admins[0] != "alice@localhost" {
		t.Fatalf("admins %q, %v", c.Admins, err)
	}
	for _, bad := range []string{"alice", "localhost", "alice@example.com", "alice@localhost/phone", "@@"} {
		c := Default()
		c.Admins = []string{bad}
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "admins") {
			t.Errorf("admins = [%q]: %v", bad, err)
		}
	}
}

func TestUploadBaseURLDerived(t *testing.T) {
	c := Default()
	if got := c.UploadBaseURL(); got != "http://localhost:5280" {
		t.Fatalf("base url %q", got)
	}
	c.Listen.HTTPTLS = "0.0.0.0:5443"
	if got := c.UploadBaseURL(); got != "https://localhost:5443" {
		t.Fatalf("base url %q", got)
	}
	c.Upload.BaseURL = "https://media.example.com/"
	if got := c.UploadBaseURL(); got != "https://media.example.com" {
		t.Fatalf("base url %q", got)
	}
	c = Default()
	c.Listen.HTTP = ""
	if got := c.UploadBaseURL(); got != "" {
		t.Fatalf("base url without listener %q", got)
	}
}

// Durable delivery is on unless the operator names what it costs.
func TestDurableDeliveryDefault(t *testing.T) {
	for durable, want := range map[string]bool{"on": true, "auto": true, DurableOff: false} {
		c := Default()
		c.Offline.Durable = durable
		if err := c.Validate(); err != nil {
			t.Fatalf("offline.durable = %q: %v", durable, err)
		}
		if got := c.DurableDelivery(); got != want {
			t.Errorf("offline.durable = %q: durable delivery %v, want %v", durable, got, want)
		}
	}
	if c := Default(); !c.DurableDelivery() {
		t.Error("durable delivery is off by default")
	}
}
