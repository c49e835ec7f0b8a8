package interop

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// freeUDPTCPPort is a loopback port free for both UDP and TCP, as a TURN
// server listens on both.
func freeUDPTCPPort(t *testing.T) int {
	t.Helper()
	for i := 0; i < 20; i++ {
		p := freePorts(t, 1)[0]
		pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p))
		if err == nil {
			pc.Close()
			return p
		}
	}
	t.Fatal("no port free for both UDP and TCP")
	return 0
}

// turnPeer runs coturn's turnutils_peer (a UDP echo peer) on loopback
// until the test ends and returns its port.
func turnPeer(t *testing.T) int {
	t.Helper()
	port := freeUDPTCPPort(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "turnutils_peer", "-L", "127.0.0.1", "-p", strconv.Itoa(port))
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("turnutils_peer: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
		if t.Failed() {
			t.Logf("---- turnutils_peer ----\n%s", out.String())
		}
	})
	// It is up when its UDP port is taken.
	for i := 0; i < 100; i++ {
		pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			return port
		}
		pc.Close()
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("turnutils_peer did not bind its port")
	return 0
}

// uclient runs coturn's turnutils_uclient: one client sends 10 messages of
// 120 bytes through a relay allocated on the TURN server at port to the
// peer, which echoes them back through the relay. It returns the output and
// whether it exited 0.
func uclient(t *testing.T, turnPort, peerPort int, extra ...string) (string, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	args := append([]string{"-n", "10", "-m", "1", "-l", "120", "-c",
		"-e", "127.0.0.1", "-r", strconv.Itoa(peerPort), "-p", strconv.Itoa(turnPort)}, extra...)
	args = append(args, "127.0.0.1")
	out, err := exec.CommandContext(ctx, "turnutils_uclient", args...).CombinedOutput()
	return fmt.Sprintf("$ turnutils_uclient %s\n%s", strings.Join(args, " "), out), err == nil
}

// relayed checks uclient's summary: all 10 messages came back, none lost.
func relayed(out string) bool {
	return strings.Contains(out, "tot_send_msgs=10, tot_recv_msgs=10") && strings.Contains(out, "Total lost packets 0 ")
}

func restPassword(secret, username string) string {
	m := hmac.New(sha1.New, []byte(secret))
	m.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// 20. XEP-0215 + TURN: slixmpp gets STUN/TURN services and credentials
// over XMPP; coturn's turnutils_uclient allocates a relay on bluetick's
// built-in TURN server with them (UDP and TCP) and relays data to
// turnutils_peer and back; forged and expired credentials are refused; and
// credentials coturn's client derives itself from the shared secret
// (use-auth-secret / TURN REST) work too.
func testTURN(t *testing.T) {
	need(t, "coturn")
	turnPort := freeUDPTCPPort(t)
	s := startServerWith(t, fmt.Sprintf(`
[turn]
enabled = true
listen = "127.0.0.1:%d"
relay_min_port = 52000
relay_max_port = 52999
allow_loopback_peers = true
credential_ttl = "1h"
`, turnPort), "alice")
	evs := slix(t, s, "extdisco", map[string]any{"turn_host": "127.0.0.1"}).finish(t)

	if d := one(t, evs, "disco"); !slices.Contains(d.strs("features"), "urn:xmpp:extdisco:2") {
		t.Errorf("server disco#info lacks urn:xmpp:extdisco:2: %s", d.str("xml"))
	}
	type svc map[string]string
	services := func(e event) []svc {
		var out []svc
		l, _ := e["services"].([]any)
		for _, v := range l {
			m, _ := v.(map[string]any)
			s := svc{}
			for k, x := range m {
				s[k], _ = x.(string)
			}
			out = append(out, s)
		}
		return out
	}
	all := services(one(t, evs, "services"))
	byKey := map[string]svc{}
	for _, sv := range all {
		byKey[sv["type"]+"/"+sv["transport"]] = sv
		if sv["host"] != "127.0.0.1" || sv["port"] != strconv.Itoa(turnPort) {
			t.Errorf("service %v: want host 127.0.0.1 port %d", sv, turnPort)
		}
	}
	for _, k := range []string{"stun/udp", "stun/tcp", "turn/udp", "turn/tcp"} {
		if byKey[k] == nil {
			t.Fatalf("no %s in <services/>: %v", k, all)
		}
	}
	turnSvc := byKey["turn/udp"]
	exp, err := time.Parse(time.RFC3339, turnSvc["expires"])
	if err != nil || time.Until(exp) < 55*time.Minute || time.Until(exp) > 65*time.Minute {
		t.Errorf("turn expires=%q, want about 1h from now", turnSvc["expires"])
	}
	if turnSvc["restricted"] != "1" || !strings.HasSuffix(turnSvc["username"], ":alice@localhost") || turnSvc["password"] == "" {
		t.Errorf("turn service credentials: %v", turnSvc)
	}
	if byKey["stun/udp"]["username"] != "" {
		t.Errorf("stun service carries credentials: %v", byKey["stun/udp"])
	}
	for _, sv := range services(one(t, evs, "services_turn")) {
		if sv["type"] != "turn" {
			t.Errorf("type='turn' listed %v", sv)
		}
	}
	creds := services(one(t, evs, "credentials"))
	if len(creds) != 2 || creds[0]["username"] == "" || creds[0]["password"] == "" {
		t.Fatalf("<credentials/> answer: %v", creds)
	}
	if b := one(t, evs, "credentials_bad"); b.str("kind") != "error" || b.str("error") != "bad-request" {
		t.Errorf("<credentials/> without host: %s, want bad-request", b)
	}

	peer := turnPeer(t)
	for _, c := range []struct {
		name string
		svc  svc
		flag []string
	}{{"services_udp", byKey["turn/udp"], nil}, {"services_tcp", byKey["turn/tcp"], []string{"-t"}}, {"credentials_udp", creds[0], nil}} {
		t.Run(c.name, func(t *testing.T) {
			out, ok := uclient(t, turnPort, peer, append(c.flag, "-u", c.svc["username"], "-w", c.svc["password"])...)
			if !ok || !relayed(out) {
				t.Fatalf("relay with XEP-0215 credentials failed:\n%s", out)
			}
		})
	}

	secret, err := os.ReadFile(filepath.Join(s.dir, "turn-secret"))
	if err != nil {
		t.Fatalf("generated secret: %v", err)
	}
	key := strings.TrimSpace(string(secret))
	t.Run("coturn_rest_secret", func(t *testing.T) {
		// coturn's client computes "<expiry>:alice@localhost" and its HMAC itself.
		out, ok := uclient(t, turnPort, peer, "-W", key, "-u", "alice@localhost")
		if !ok || !relayed(out) {
			t.Fatalf("relay with coturn-derived REST credentials failed:\n%s", out)
		}
	})
	expiredUser := fmt.Sprintf("%d:alice@localhost", time.Now().Add(-time.Minute).Unix())
	for _, c := range []struct{ name, user, pass string }{
		{"forged_password", turnSvc["username"], restPassword("not-the-secret", turnSvc["username"])},
		{"forged_expiry", fmt.Sprintf("%d:alice@localhost", time.Now().Add(48*time.Hour).Unix()), turnSvc["password"]},
		{"expired", expiredUser, restPassword(key, expiredUser)},
	} {
		t.Run("refused_"+c.name, func(t *testing.T) {
			out, ok := uclient(t, turnPort, peer, "-u", c.user, "-w", c.pass)
			if ok || strings.Contains(out, "tot_recv_msgs=10") {
				t.Fatalf("relay allowed with %s credentials:\n%s", c.name, out)
			}
			// The allocation itself is refused with a STUN 4xx error.
			if !strings.Contains(out, "error 40") {
				t.Fatalf("no 4xx error from the TURN server:\n%s", out)
			}
		})
	}
	s.alive(t)
}

// hostMeta fetches both host-meta files and returns the WebSocket hrefs
// listed in each, checking the CORS header and that the BOSH href (the
// second link) is the same in both.
func hostMeta(t *testing.T, s *server) (xrdHref, jrdHref string) {
	x, j, bx, bj := hostMetaLinks(t, s)
	if bx != bj {
		t.Fatalf("host-meta BOSH hrefs differ: %q (XRD), %q (JRD)", bx, bj)
	}
	return x, j
}

func hostMetaLinks(t *testing.T, s *server) (xrdHref, jrdHref, xrdBOSH, jrdBOSH string) {
	t.Helper()
	cl := http.Client{Timeout: 5 * time.Second}
	get := func(path string) []byte {
		resp, err := cl.Get(fmt.Sprintf("http://127.0.0.1:%d%s", s.http, path))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Fatalf("GET %s: %s, CORS %q\n%s", path, resp.Status, resp.Header.Get("Access-Control-Allow-Origin"), b)
		}
		return b
	}
	var x struct {
		XMLName xml.Name `xml:"http://docs.oasis-open.org/ns/xri/xrd-1.0 XRD"`
		Links   []struct {
			Rel  string `xml:"rel,attr"`
			Href string `xml:"href,attr"`
		} `xml:"Link"`
	}
	b := get("/.well-known/host-meta")
	if err := xml.Unmarshal(b, &x); err != nil || len(x.Links) != 2 || x.Links[0].Rel != "urn:xmpp:alt-connections:websocket" || x.Links[1].Rel != "urn:xmpp:alt-connections:xbosh" {
		t.Fatalf("host-meta XRD (%v):\n%s", err, b)
	}
	var j struct {
		Links []struct{ Rel, Href string }
	}
	b = get("/.well-known/host-meta.json")
	if err := json.Unmarshal(b, &j); err != nil || len(j.Links) != 2 || j.Links[0].Rel != "urn:xmpp:alt-connections:websocket" || j.Links[1].Rel != "urn:xmpp:alt-connections:xbosh" {
		t.Fatalf("host-meta.json JRD (%v):\n%s", err, b)
	}
	return x.Links[0].Href, j.Links[0].Href, x.Links[1].Href, j.Links[1].Href
}

// 21. XEP-0156: host-meta (XRD and JRD) lists the WebSocket and BOSH
// endpoints, both of which really open a stream; behind a proxy the
// configured public URL.
func testHostMeta(t *testing.T) {
	s := startServer(t, "alice")
	want := fmt.Sprintf("ws://127.0.0.1:%d/xmpp-websocket", s.http)
	x, j := hostMeta(t, s)
	if x != want || j != want {
		t.Fatalf("host-meta lists %q (XRD) and %q (JRD), want %q", x, j, want)
	}
	// The advertised URL opens an RFC 7395 stream.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, x, &websocket.DialOptions{Subprotocols: []string{"xmpp"}})
	if err != nil {
		t.Fatalf("dial %s: %v", x, err)
	}
	defer ws.CloseNow()
	ws.Write(ctx, websocket.MessageText, []byte("<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>"))
	_, msg, err := ws.Read(ctx)
	if err != nil || !strings.Contains(string(msg), "<open") {
		t.Fatalf("stream open over the advertised WebSocket: %q, %v", msg, err)
	}
	_, _, bosh, _ := hostMetaLinks(t, s)
	if want := fmt.Sprintf("http://127.0.0.1:%d/http-bind", s.http); bosh != want {
		t.Fatalf("host-meta lists BOSH at %q, want %q", bosh, want)
	}
	resp, err := http.Post(bosh, "text/xml; charset=utf-8", strings.NewReader(
		"<body xmlns='http://jabber.org/protocol/httpbind' rid='1' to='localhost' wait='1' hold='1' xmpp:version='1.0' xmlns:xmpp='urn:xmpp:xbosh'/>"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "sid='") {
		t.Fatalf("BOSH session creation at the advertised URL: %s", b)
	}

	t.Run("public_url", func(t *testing.T) {
		s := startServerWith(t, "[listen]\npublic_url = \"https://chat.example.com\"\n", "alice")
		x, j := hostMeta(t, s)
		if want := "wss://chat.example.com/xmpp-websocket"; x != want || j != want {
			t.Fatalf("host-meta lists %q (XRD) and %q (JRD), want %q", x, j, want)
		}
	})
}

// 22. XEP-0157: the contact addresses configured in [contact] are in the
// server's disco#info as a http://jabber.org/network/serverinfo form, as
// slixmpp's XEP-0128 support reads it.
func testContact(t *testing.T) {
	s := startServerWith(t, `
[contact]
abuse = ["mailto:abuse@localhost", "xmpp:abuse@localhost"]
security = ["https://localhost/security"]
support = ["xmpp:support@localhost"]
`, "alice")
	evs := slix(t, s, "contact", nil).finish(t)
	f := one(t, evs, "forms")
	forms, _ := f["forms"].(map[string]any)
	info, _ := forms["http://jabber.org/network/serverinfo"].(map[string]any)
	if info == nil {
		t.Fatalf("no serverinfo form in disco#info: %s", f.str("xml"))
	}
	strs := func(k string) []string {
		l, _ := info[k].([]any)
		var out []string
		for _, v := range l {
			s, _ := v.(string)
			out = append(out, s)
		}
		return out
	}
	for k, want := range map[string][]string{
		"abuse-addresses":    {"mailto:abuse@localhost", "xmpp:abuse@localhost"},
		"security-addresses": {"https://localhost/security"},
		"support-addresses":  {"xmpp:support@localhost"},
	} {
		if got := strs(k); !slices.Equal(got, want) {
			t.Errorf("%s = %v, want %v (%s)", k, got, want, f.str("xml"))
		}
	}
	if _, ok := info["admin-addresses"]; ok {
		t.Errorf("unconfigured admin-addresses published: %v", info)
	}
}
