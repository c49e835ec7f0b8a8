package c2s

import (
	"reflect"
	"testing"

	"bluetick/internal/config"
	"bluetick/internal/xmpptest"
)

// TestSCRAMSHA256Off: with sasl.scram_sha256 off (accounts imported with
// only SCRAM-SHA-1 credentials) neither SCRAM-SHA-256 nor its -PLUS
// variant is offered or accepted, and SCRAM-SHA-1 logs in.
func TestSCRAMSHA256Off(t *testing.T) {
	srv := startServer(t, func(c *config.Config) { c.SASL.SCRAMSHA256 = false })
	c := dial(t, srv.addr)
	f := c.StartTLS(insecureTLS(0))
	mechs, types := xmpptest.Offer(f)
	if want := []string{"SCRAM-SHA-1-PLUS", "SCRAM-SHA-1", "PLAIN"}; !reflect.DeepEqual(mechs, want) {
		t.Fatalf("mechanisms %v, want %v", mechs, want)
	}
	el, err := c.SASL(&xmpptest.SCRAM{Mechanism: "SCRAM-SHA-256", User: "alice", Password: "pw", SawMechs: mechs, SawCBTypes: types})
	if err != nil {
		t.Fatal(err)
	}
	if el.Name != "failure" || el.Child(nsSASL, "invalid-mechanism") == nil {
		t.Fatalf("SCRAM-SHA-256 when not offered: %v", el)
	}
	c = dial(t, srv.addr)
	f = c.StartTLS(insecureTLS(0))
	mechs, types = xmpptest.Offer(f)
	if el, err = c.SASL(&xmpptest.SCRAM{Mechanism: "SCRAM-SHA-1", User: "alice", Password: "pw", SawMechs: mechs, SawCBTypes: types}); err != nil || el.Name != "success" {
		t.Fatalf("SCRAM-SHA-1: %v %v", el, err)
	}
}
