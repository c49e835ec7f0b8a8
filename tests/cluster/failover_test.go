package cluster_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"bluetick/internal/xmlstream"
	"bluetick/internal/xmpptest"
)

// failoverBudget is how long a client of a killed node may take, from the
// kill, to be back online on another node through HAProxy (login, bind and
// its own available presence back), with the health checks of
// docs/cluster.md.
const failoverBudget = 2 * time.Second

// TestFailoverLoginAfterKill measures kill -9 of a node → each of its
// clients logged in, bound (same resource) and available again on another
// node through the balancer. The clients are mobile-style: stream
// management with resumption, so each first tries to resume (its node is
// dead: that fails) and then binds afresh; each reconnects as soon as its
// connection drops, retrying every 100 ms. A contact on a surviving node
// keeps sending to them; every message it got acknowledged must reach the
// new sessions.
func TestFailoverLoginAfterKill(t *testing.T) {
	const users = 6
	c := startCluster(t, users+1)
	clients := make([]*xmpptest.Client, users)
	nodeOf := make([]int, users)
	previd := make([]string, users)
	for i := range clients {
		before := c.sessionCounts(t)
		cl := c.login(fmt.Sprintf("u%d", i+1), "phone")
		cl.Send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
		previd[i] = cl.Expect("enabled").Attr("id")
		cl.Send("<presence/>")
		cl.Expect("presence")
		clients[i] = cl
		after := c.sessionCounts(t)
		nodeOf[i] = -1
		for k := range after {
			if after[k] == before[k]+1 {
				nodeOf[i] = k
			}
		}
		if nodeOf[i] < 0 {
			t.Fatalf("u%d: no node gained a session (%v → %v)", i+1, before, after)
		}
	}
	victim := nodeOf[0]
	other := (victim + 1) % len(c.nodes)
	var victims []int
	for i, n := range nodeOf {
		if n == victim {
			victims = append(victims, i)
		}
	}
	sender := c.loginOn(other, fmt.Sprintf("u%d", users+1), "pc")
	sender.Send("<enable xmlns='urn:xmpp:sm:3'/>")
	sender.Expect("enabled")
	time.Sleep(300 * time.Millisecond) // directory entries travel

	var amu sync.Mutex
	acked := map[int][]string{} // user index -> acked message ids
	sent := 0
	send := func(i int, id string) {
		sent++
		sender.Send(fmt.Sprintf("<message to='u%d@localhost' type='chat' id='%s'><body>%s</body></message><r xmlns='urn:xmpp:sm:3'/>", i+1, id, id))
		for {
			el, err := sender.TryNext(10 * time.Second)
			if err != nil {
				t.Fatalf("sender: %v", err)
			}
			if el.Name == "a" && el.Space == xmpptest.NSSM {
				if h, _ := strconv.Atoi(el.Attr("h")); h == sent {
					amu.Lock()
					acked[i] = append(acked[i], id)
					amu.Unlock()
					return
				}
			}
		}
	}
	for _, i := range victims {
		send(i, fmt.Sprintf("before-%d", i+1))
		if m := clients[i].Expect("message"); m.Attr("id") != fmt.Sprintf("before-%d", i+1) {
			t.Fatalf("u%d got %v", i+1, m)
		}
	}

	start := time.Now()
	c.kill(victim)
	t.Logf("killed %s, holding %d of the clients", c.nodes[victim].name, len(victims))

	type result struct {
		user     int
		dropped  time.Duration
		online   time.Duration
		attempts int
		lastErr  string
		cl       *xmpptest.Client
		rx       *ackReader
	}
	results := make([]*result, len(victims))
	var wg sync.WaitGroup
	for k, i := range victims {
		r := &result{user: i}
		results[k] = r
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The balancer closes the connection when its server goes away.
			if _, err := clients[i].Read(5 * time.Second); err == nil {
				r.lastErr = "connection survived the kill of its node"
				return
			}
			r.dropped = time.Since(start)
			for r.cl == nil && time.Since(start) < 20*time.Second && r.attempts < 200 {
				r.attempts++
				began := time.Since(start)
				cl, rx, err := tryOnline(t, c.lb, fmt.Sprintf("u%d", i+1), "phone", previd[i])
				if err != nil {
					r.lastErr = fmt.Sprintf("%v (attempt from %v to %v)", err, began.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
					time.Sleep(100 * time.Millisecond)
					continue
				}
				r.cl, r.rx = cl, rx
				r.online = time.Since(start)
			}
		}()
	}
	// The contact goes on writing during the failover.
	for _, i := range victims {
		send(i, fmt.Sprintf("during-%d", i+1))
	}
	wg.Wait()

	var worst time.Duration
	var times []string
	for _, r := range results {
		if r.cl == nil {
			t.Fatalf("u%d not back online 20 s after the kill (%d attempts, last: %s)", r.user+1, r.attempts, r.lastErr)
		}
		t.Logf("u%d: connection dropped after %v, online again after %v (%d login attempts, last failure: %q)",
			r.user+1, r.dropped.Round(time.Millisecond), r.online.Round(time.Millisecond), r.attempts, r.lastErr)
		times = append(times, r.online.Round(time.Millisecond).String())
		if r.online > worst {
			worst = r.online
		}
	}
	fmt.Printf("failover: kill → online on another node: worst %v over %d clients (%s)\n", worst.Round(time.Millisecond), len(results), strings.Join(times, " "))

	// Every acked message reaches the new sessions (from the offline store
	// or directly), including one sent once they are back.
	for _, i := range victims {
		send(i, fmt.Sprintf("after-%d", i+1))
	}
	for _, r := range results {
		amu.Lock()
		want := append([]string(nil), acked[r.user]...)
		amu.Unlock()
		got := r.rx.until(r.cl, want, 10*time.Second)
		for _, id := range want {
			if strings.HasPrefix(id, "before-") {
				continue // delivered to the old session, maybe not acked there: may come again or not
			}
			if !contains(got, id) {
				t.Errorf("u%d: acked message %q never reached the new session (got %v)", r.user+1, id, got)
			}
		}
	}
	if worst > failoverBudget {
		t.Errorf("kill → online took up to %v, want ≤ %v", worst.Round(time.Millisecond), failoverBudget)
	}
}

// ackReader follows a client's stream-management count and the message
// ids it received.
type ackReader struct {
	h   int
	ids []string
}

func (a *ackReader) saw(el *xmlstream.Element) {
	switch el.Name {
	case "message", "presence", "iq":
		a.h++
		if el.Name == "message" && el.Attr("id") != "" {
			a.ids = append(a.ids, el.Attr("id"))
		}
	}
}

// until reads, answering <r/> and acknowledging what it got when the
// stream goes quiet, until every id in want arrived or timeout passed; it
// returns the ids received so far.
func (a *ackReader) until(cl *xmpptest.Client, want []string, timeout time.Duration) []string {
	deadline := time.Now().Add(timeout)
	ackedH := -1
	for !containsAll(a.ids, want) && time.Now().Before(deadline) {
		el, err := cl.Read(200 * time.Millisecond)
		if err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				break
			}
			if a.h != ackedH {
				ackedH = a.h
				cl.Send("<a xmlns='urn:xmpp:sm:3' h='" + strconv.Itoa(a.h) + "'/>")
			}
			continue
		}
		if el.Space == xmpptest.NSSM && el.Name == "r" {
			cl.Send("<a xmlns='urn:xmpp:sm:3' h='" + strconv.Itoa(a.h) + "'/>")
			ackedH = a.h
			continue
		}
		a.saw(el)
	}
	ids := append([]string(nil), a.ids...)
	sort.Strings(ids)
	return ids
}

// tryOnline logs user in through addr: it tries to resume previd, binds
// resource res when that fails, enables stream management and sends
// initial presence; it returns once the user's own presence comes back.
// Any failure is an error, not a test failure: the caller retries.
func tryOnline(t *testing.T, addr, user, res, previd string) (cl *xmpptest.Client, rx *ackReader, err error) {
	defer endAttempt(&cl, &err)
	cl = xmpptest.Dial(attemptTB{t}, addr, "localhost")
	cl.Auth(user, "pw")
	cl.Send("<resume xmlns='urn:xmpp:sm:3' previd='" + previd + "' h='1'/>")
	if el := cl.Next(); el.Name != "failed" {
		panic(attemptFailed{"resume answered " + el.Name})
	}
	cl.Send("<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>" + res + "</resource></bind></iq>")
	if el := cl.Expect("iq"); el.Attr("type") != "result" {
		panic(attemptFailed{"bind failed"})
	}
	cl.Send("<enable xmlns='urn:xmpp:sm:3'/><presence/>")
	rx = &ackReader{}
	for i := 0; i < 1000; i++ {
		el := cl.Next()
		rx.saw(el)
		if el.Name == "presence" && strings.HasPrefix(el.Attr("from"), user+"@localhost/"+res) {
			return cl, rx, nil
		}
	}
	panic(attemptFailed{"no own presence"})
}

// endAttempt, deferred by an attempt that may fail, turns an attemptFailed
// panic into its error, closing and clearing the client it dialled; any
// other panic goes on.
func endAttempt(cl **xmpptest.Client, err *error) {
	r := recover()
	if r == nil {
		return
	}
	f, ok := r.(attemptFailed)
	if !ok {
		panic(r)
	}
	if *cl != nil {
		(*cl).Conn.Close()
	}
	*cl, *err = nil, f
}

// attemptTB turns the xmpptest client's fatal errors into a panic the
// attempt recovers from.
type attemptTB struct{ testing.TB }

type attemptFailed struct{ msg string }

func (e attemptFailed) Error() string { return e.msg }

func (attemptTB) Helper()           {}
func (attemptTB) Fatal(args ...any) { panic(attemptFailed{fmt.Sprint(args...)}) }
func (attemptTB) Fatalf(format string, args ...any) {
	panic(attemptFailed{fmt.Sprintf(format, args...)})
}

// kill ends node i with SIGKILL.
func (c *cluster) kill(i int) {
	n := c.nodes[i]
	n.cmd.Process.Kill()
	n.cmd.Wait()
	n.dead = true
}

// sessionCounts returns each node's bound sessions (from /healthz).
func (c *cluster) sessionCounts(t *testing.T) []int {
	t.Helper()
	out := make([]int, len(c.nodes))
	for i, nd := range c.nodes {
		r, err := http.Get("http://" + nd.http + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		var h struct{ Sessions int }
		err = json.NewDecoder(r.Body).Decode(&h)
		r.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		out[i] = h.Sessions
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func containsAll(list, want []string) bool {
	for _, w := range want {
		if !contains(list, w) {
			return false
		}
	}
	return true
}
