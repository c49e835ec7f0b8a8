package cluster

import (
	"strings"
	"testing"

	"bluetick/internal/jid"
	"bluetick/internal/metrics"
	"bluetick/internal/natstest"
)

// A message to a session on the other node is one timed request; each
// node sees the other's session in its directory and both nodes alive.
func TestClusterMetrics(t *testing.T) {
	ns := natstest.Start(t)
	st := sharedStore(t)
	nodes := startNodes(t, ns.URL, st, "a", "b")
	a, b := nodes[0], nodes[1]
	alice := a.connect(t, "alice@localhost/pc")
	alice.send(presence())
	bob := b.connect(t, "bob@localhost/phone")
	bob.send(presence())
	eventually(t, "node a to see bob online", func() bool { return a.srv.Router.Online(jid.MustParse("bob@localhost")) })
	alice.send(chat("bob@localhost", "m1"))
	bob.sink.WaitFor(t, "alice's message on node b", byID("m1"))

	var text string
	eventually(t, "the metrics of node a", func() bool {
		var err error
		text, err = metrics.Text(a.cl.Collectors()...)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Contains(text, "bluetick_cluster_nodes 2") && strings.Contains(text, "bluetick_cluster_remote_sessions 1")
	})
	if !strings.Contains(text, `bluetick_cluster_request_seconds_count{op="send",result="ok"}`) {
		t.Errorf("no timed send request in node a's metrics:\n%s", text)
	}
}
