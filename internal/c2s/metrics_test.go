package c2s

import (
	"strings"
	"testing"

	"bluetick/internal/metrics"
)

// The sessions gauge counts by transport and state as clients come, go to
// the background (XEP-0352) and lose their connection with a resumable
// session; the logins counter has the mechanism. Scraped while sessions
// change, so that -race sees the collector's reads.
func TestSessionMetrics(t *testing.T) {
	srv := startServer(t, nil)
	scrape := func() string {
		t.Helper()
		text, err := metrics.Text(srv.svc.Collectors()...)
		if err != nil {
			t.Fatal(err)
		}
		return text
	}
	want := func(lines ...string) {
		t.Helper()
		text := scrape()
		for _, l := range lines {
			if !strings.Contains(text, l) {
				t.Errorf("metrics lack %q:\n%s", l, text)
			}
		}
	}
	done := make(chan struct{})
	go func() { // a scraper racing the sessions below
		defer close(done)
		for range 50 {
			scrape()
		}
	}()
	alice, bob := dial(t, srv.addr), dial(t, srv.addr)
	alice.login("alice", "pc")
	bob.login("bob", "phone")
	bob.send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
	bob.expect("enabled")
	bob.send("<inactive xmlns='urn:xmpp:csi:0'/>")
	bob.send("<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")
	bob.expect("iq")
	<-done
	want(`bluetick_c2s_sessions{state="active",transport="tls"} 1`, `bluetick_c2s_sessions{state="inactive",transport="tls"} 1`,
		`bluetick_c2s_logins_total{mechanism="PLAIN",result="ok"} 2`)
	bob.Conn.Close()
	waitFor(t, "bob's session to hibernate", func() bool {
		return strings.Contains(scrape(), `bluetick_c2s_sessions{state="hibernated",transport="none"} 1`)
	})
}
