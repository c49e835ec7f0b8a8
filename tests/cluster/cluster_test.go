// Package cluster_test runs Bluetick as a real cluster: a 3-node NATS
// cluster, one PostgreSQL, three bluetick processes and HAProxy in front,
// all on loopback, driven by raw XMPP clients through the balancer.
package cluster_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"bluetick/internal/natstest"
	"bluetick/internal/pgtest"
	"bluetick/internal/xmpptest"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "bluetick-cluster-test")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "bluetick")
	out, err := exec.Command("go", "build", "-o", binary, "../../cmd/bluetick").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building bluetick: %v\n%s", err, out)
		os.Exit(1)
	}
	code := pgtest.Main(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// node is one bluetick process.
type node struct {
	name string
	c2s  string
	http string
	cmd  *exec.Cmd
	log  *os.File
	dead bool
}

type cluster struct {
	t     *testing.T
	dsn   string
	nodes []*node
	lb    string // HAProxy c2s frontend
	mu    sync.Mutex
}

func run(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command(binary, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("bluetick %v: %v\n%s", args, err, out)
	}
}

func addr(t *testing.T) string { return fmt.Sprintf("127.0.0.1:%d", natstest.FreePort(t)) }

// startCluster starts everything and creates users u1..uN with password "pw".
func startCluster(t *testing.T, users int) *cluster {
	t.Helper()
	haproxy, err := exec.LookPath("haproxy")
	if err != nil {
		if _, e := os.Stat("/usr/sbin/haproxy"); e == nil {
			haproxy = "/usr/sbin/haproxy"
		} else {
			t.Fatal("haproxy is not installed: apt-get install -y haproxy")
		}
	}
	nats := natstest.Cluster(t, 3)
	c := &cluster{t: t, dsn: pgtest.Start(t)}
	data := t.TempDir()
	for i := 1; i <= users; i++ {
		run(t, "user", "add", fmt.Sprintf("u%d", i), "--password", "pw", "--store", c.dsn, "--data", data)
	}
	for i := 0; i < 3; i++ {
		n := &node{name: fmt.Sprintf("n%d", i+1), c2s: addr(t), http: addr(t)}
		dir := filepath.Join(data, n.name)
		os.MkdirAll(dir, 0o700)
		// All nodes share one certificate, as they would behind a balancer.
		if i > 0 {
			for _, f := range []string{"cert.pem", "key.pem"} {
				b, _ := os.ReadFile(filepath.Join(data, "n1", f))
				os.WriteFile(filepath.Join(dir, f), b, 0o600)
			}
		}
		n.log, _ = os.Create(filepath.Join(dir, "log"))
		n.cmd = exec.Command(binary, "serve", "--data", dir, "--store", c.dsn, "--nats", nats[i].URL, "--node", n.name,
			"--c2s", n.c2s, "--c2s-tls", "off", "--http", n.http, "--log-level", "debug")
		n.cmd.Stdout, n.cmd.Stderr = n.log, n.log
		if err := n.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		c.nodes = append(c.nodes, n)
		waitHealthy(t, n)
	}
	t.Cleanup(func() {
		for _, n := range c.nodes {
			if !n.dead {
				n.cmd.Process.Signal(syscall.SIGTERM)
				n.cmd.Wait()
			}
			if t.Failed() {
				b, _ := os.ReadFile(n.log.Name())
				t.Logf("=== log of %s ===\n%s", n.name, lastLines(string(b), 60))
			}
		}
	})
	c.lb = addr(t)
	cfg := fmt.Sprintf(haproxyCfg, c.lb)
	for _, n := range c.nodes {
		cfg += fmt.Sprintf(haproxyServer, n.name, n.c2s, strings.Split(n.http, ":")[1])
	}
	cf := filepath.Join(data, "haproxy.cfg")
	os.WriteFile(cf, []byte(cfg), 0o600)
	hp := exec.Command(haproxy, "-f", cf, "-db")
	hlog, _ := os.Create(filepath.Join(data, "haproxy.log"))
	hp.Stdout, hp.Stderr = hlog, hlog
	if err := hp.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		hp.Process.Kill()
		hp.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(hlog.Name())
			t.Logf("=== HAProxy's log (one line per client connection) ===\n%s", lastLines(string(b), 60))
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if conn, err := net.Dial("tcp", c.lb); err == nil {
			conn.Close()
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(hlog.Name())
			t.Fatalf("haproxy did not start:\n%s", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return c
}

// haproxyCfg is the balancer setup of docs/cluster.md, word for word
// from "frontend xmpp_c2s" on, with loopback addresses filled in (the
// frontend's here, the servers' by startCluster), after a global and
// defaults section that only adds logging: TCP, least connections over the
// nodes' c2s ports, health-checked on /readyz every second, a connection
// refused by a dead node redispatched at once to another one, hour-long
// timeouts for idle client streams.
const haproxyCfg = `global
    maxconn 9000
    log stdout format raw local0
defaults
    log global
    option logasap

frontend xmpp_c2s
    bind %s
    mode tcp
    option tcplog
    timeout client 1h
    default_backend bluetick_c2s
backend bluetick_c2s
    mode tcp
    balance leastconn
    timeout connect 5s
    timeout server 1h
    timeout tunnel 1h
    retries 2
    option redispatch 1
    option httpchk GET /readyz
`

// haproxyServer is one server line of the backend (name, c2s address,
// HTTP port), as in docs/cluster.md.
const haproxyServer = "    server %s %s check port %s inter 1s fall 2 rise 1\n"

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func waitHealthy(t *testing.T, n *node) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if r, err := http.Get("http://" + n.http + "/healthz"); err == nil {
			r.Body.Close()
			if r.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	b, _ := os.ReadFile(n.log.Name())
	t.Fatalf("node %s not healthy:\n%s", n.name, b)
}

// login connects through the balancer.
func (c *cluster) login(user, res string) *xmpptest.Client {
	c.t.Helper()
	cl := xmpptest.Dial(c.t, c.lb, "localhost")
	cl.Login(user, "pw", res)
	return cl
}

// loginOn connects straight to one node.
func (c *cluster) loginOn(i int, user, res string) *xmpptest.Client {
	c.t.Helper()
	cl := xmpptest.Dial(c.t, c.nodes[i].c2s, "localhost")
	cl.Login(user, "pw", res)
	return cl
}

func TestClusterBehindHAProxy(t *testing.T) {
	c := startCluster(t, 3)
	// Least connections puts the three users on three different nodes.
	u1 := c.login("u1", "a")
	u2 := c.login("u2", "b")
	u3 := c.login("u3", "c")
	for _, u := range []*xmpptest.Client{u1, u2, u3} {
		u.Send("<presence/>")
		u.Expect("presence")
	}
	time.Sleep(300 * time.Millisecond) // directory entries travel through NATS

	// Message with receipt between nodes.
	u1.Send("<message to='u2@localhost' type='chat' id='m1'><body>across nodes</body><request xmlns='urn:xmpp:receipts'/></message>")
	m := u2.Expect("message")
	if m.Attr("id") != "m1" || m.Attr("from") != u1.JID {
		t.Fatalf("u2 got %v", m)
	}
	u2.Send("<message to='" + u1.JID + "' id='r1'><received xmlns='urn:xmpp:receipts' id='m1'/></message>")
	if r := u1.Expect("message"); r.Child("urn:xmpp:receipts", "received") == nil {
		t.Fatalf("u1 got %v", r)
	}

	// Presence subscription and last activity across nodes.
	u1.Send("<presence to='u3@localhost' type='subscribe'/>")
	if p := u3.Expect("presence"); p.Attr("type") != "subscribe" {
		t.Fatalf("u3 got %v", p)
	}
	u3.Send("<presence to='u1@localhost' type='subscribed'/>")
	for {
		p := u1.Expect("presence")
		if p.Attr("from") == u3.JID && p.Attr("type") == "" {
			break
		}
	}
	u3.Send("<presence type='unavailable'/>")
	u3.Send("</stream:stream>")
	time.Sleep(300 * time.Millisecond)
	u1.Send("<iq type='get' id='l1' to='u3@localhost'><query xmlns='jabber:iq:last'/></iq>")
	if r := u1.Expect("iq"); r.Attr("type") != "result" {
		t.Fatalf("last activity across nodes: %v", r)
	}

	// Offline: u3 is gone; messages wait in PostgreSQL and reach u3 on
	// whichever node the balancer picks next.
	for i := 1; i <= 3; i++ {
		u2.Send(fmt.Sprintf("<message to='u3@localhost' type='chat' id='o%d'><body>later %d</body></message>", i, i))
	}
	u2.Send("<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>")
	u2.Expect("iq")
	u3b := c.login("u3", "again")
	u3b.Send("<presence/>")
	for i := 1; i <= 3; i++ {
		m := u3b.Expect("message")
		if m.Attr("id") != fmt.Sprintf("o%d", i) || m.Child("urn:xmpp:delay", "delay") == nil {
			t.Fatalf("offline message %d: %v", i, m)
		}
	}
}

func TestNodeKilledOthersCarryOn(t *testing.T) {
	c := startCluster(t, 2)
	u1 := c.loginOn(0, "u1", "a")
	u2 := c.loginOn(1, "u2", "b")
	for _, u := range []*xmpptest.Client{u1, u2} {
		u.Send("<presence/>")
		u.Expect("presence")
	}
	time.Sleep(300 * time.Millisecond)
	// kill -9 the node holding u2.
	c.nodes[1].cmd.Process.Kill()
	c.nodes[1].cmd.Wait()
	c.nodes[1].dead = true
	// Its directory entry expires; u1's messages go to the offline store.
	time.Sleep(7 * time.Second) // three missed heartbeats (2 s each) plus slack
	u1.Send("<message to='u2@localhost' type='chat' id='k1'><body>are you there?</body></message>")
	u1.Send("<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>")
	if r := u1.Expect("iq"); r.Attr("type") != "result" {
		t.Fatalf("ping: %v", r)
	}
	// u2 reconnects through the balancer, which skips the dead node.
	u2b := c.login("u2", "back")
	u2b.Send("<presence/>")
	if m := u2b.Expect("message"); m.Attr("id") != "k1" {
		t.Fatalf("after reconnect u2 got %v", m)
	}
	_ = context.Background
}

func TestResumeOnAnotherNode(t *testing.T) {
	c := startCluster(t, 2)
	bob := c.loginOn(0, "u1", "phone")
	bob.Send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
	id := bob.Expect("enabled").Attr("id")
	bob.Send("<presence/>")
	bob.Expect("presence")
	alice := c.loginOn(2, "u2", "pc")
	time.Sleep(300 * time.Millisecond)
	alice.Send("<message to='u1@localhost' type='chat' id='m1'><body>one</body></message>")
	if m := bob.Expect("message"); m.Attr("id") != "m1" {
		t.Fatalf("got %v", m)
	}
	bob.Conn.Close() // the phone loses its network; m2 arrives meanwhile
	alice.Send("<message to='u1@localhost' type='chat' id='m2'><body>two</body></message>")
	alice.Send("<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>")
	alice.Expect("iq")

	// The balancer sends the phone to another node; it resumes there.
	bob2 := xmpptest.Dial(t, c.nodes[1].c2s, "localhost")
	bob2.Auth("u1", "pw")
	bob2.Send("<resume xmlns='urn:xmpp:sm:3' previd='" + id + "' h='2'/>")
	r := bob2.Expect("resumed")
	if r.Attr("previd") != id {
		t.Fatalf("resumed = %v", r)
	}
	if m := bob2.Expect("message"); m.Attr("id") != "m2" {
		t.Fatalf("after cross-node resumption got %v, want m2 only", m)
	}
	// The session lives on node 2 now: messages reach it there.
	time.Sleep(300 * time.Millisecond)
	alice.Send("<message to='u1@localhost' type='chat' id='m3'><body>three</body></message>")
	if m := bob2.Expect("message"); m.Attr("id") != "m3" {
		t.Fatalf("got %v, want m3", m)
	}
}

// SASL2's inline resumption (XEP-0388 with XEP-0198 §6.2) on another node:
// the <success/> holds <resumed/>, the session is taken over from the node
// that held it exactly as with <resume/>, and the unacknowledged message
// follows at once.
func TestSASL2ResumeOnAnotherNode(t *testing.T) {
	c := startCluster(t, 2)
	bob := c.loginOn(0, "u1", "phone")
	bob.Send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
	id := bob.Expect("enabled").Attr("id")
	bob.Send("<presence/>")
	bob.Expect("presence")
	alice := c.loginOn(2, "u2", "pc")
	time.Sleep(300 * time.Millisecond)
	alice.Send("<message to='u1@localhost' type='chat' id='m1'><body>one</body></message>")
	if m := bob.Expect("message"); m.Attr("id") != "m1" {
		t.Fatalf("got %v", m)
	}
	bob.Conn.Close()
	alice.Send("<message to='u1@localhost' type='chat' id='m2'><body>two</body></message>")
	alice.Send("<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>")
	alice.Expect("iq")

	bob2 := xmpptest.Dial(t, c.nodes[1].c2s, "localhost")
	if f := bob2.StartTLS(&tls.Config{InsecureSkipVerify: true, ServerName: "localhost"}); f.Child("urn:xmpp:sasl:2", "authentication") == nil {
		t.Fatalf("no SASL2 offered: %v", f)
	}
	bob2.Send("<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><initial-response>" +
		base64.StdEncoding.EncodeToString([]byte("\x00u1\x00pw")) + "</initial-response>" +
		"<resume xmlns='urn:xmpp:sm:3' previd='" + id + "' h='2'/>" +
		"<bind xmlns='urn:xmpp:bind:0'><tag>Phone</tag></bind></authenticate>")
	succ := bob2.Next()
	if succ.Name != "success" || succ.Child("urn:xmpp:sm:3", "resumed") == nil || succ.Child("urn:xmpp:sm:3", "resumed").Attr("previd") != id {
		t.Fatalf("want <success/> with <resumed previd='%s'/>, got %v", id, succ)
	}
	if m := bob2.Next(); m.Name != "message" || m.Attr("id") != "m2" {
		t.Fatalf("after the inline cross-node resumption got %v, want m2 at once", m)
	}
	time.Sleep(300 * time.Millisecond)
	alice.Send("<message to='u1@localhost' type='chat' id='m3'><body>three</body></message>")
	if m := bob2.Expect("message"); m.Attr("id") != "m3" {
		t.Fatalf("got %v, want m3", m)
	}
}

// The balancer these tests run is the one docs/cluster.md documents: the
// xmpp_c2s frontend and backend, and the server lines' options.
func TestHAProxyConfigMatchesDocs(t *testing.T) {
	b, err := os.ReadFile("../../docs/cluster.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	start := strings.Index(doc, "frontend xmpp_c2s\n")
	end := strings.Index(doc[start:], "    server ")
	if start < 0 || end < 0 {
		t.Fatal("docs/cluster.md has no xmpp_c2s frontend with servers")
	}
	documented := strings.Replace(doc[start:start+end], "bind :5222\n", "bind %s\n", 1)
	if ours := haproxyCfg[strings.Index(haproxyCfg, "frontend xmpp_c2s\n"):]; ours != documented {
		t.Errorf("tests/cluster's HAProxy setup differs from docs/cluster.md:\n--- docs\n%s--- test\n%s", documented, ours)
	}
	line := doc[start+end:]
	line = line[:strings.Index(line, "\n")+1]
	if got := fmt.Sprintf(haproxyServer, "n1", "10.0.0.1:5222", "5280"); got != line {
		t.Errorf("server line: docs %q, test %q", line, got)
	}
}
