package c2s

import (
	"context"
	"testing"
)

// TestDisabledAccountCannotLogIn: an account disabled by an administrator
// (XEP-0133 disable-user) is refused with account-disabled, with the
// right password, by PLAIN and SCRAM over SASL2; re-enabled, it logs in.
func TestDisabledAccountCannotLogIn(t *testing.T) {
	srv := startServer(t, nil)
	st := srv.svc.im.Store()
	if err := st.SetUserDisabled(context.Background(), "alice", true); err != nil {
		t.Fatal(err)
	}
	c, _ := sasl2Client(t, srv.addr)
	c.send(authenticateXML("PLAIN", plainIR("alice", "pw"), ""))
	if text := wantFailure(t, c.next(), "account-disabled"); text == "" {
		t.Error("no text with account-disabled")
	}
	c2, _ := sasl2Client(t, srv.addr)
	wantFailure(t, scram2(t, c2, "alice", "pw", ""), "account-disabled")
	if err := st.SetUserDisabled(context.Background(), "alice", false); err != nil {
		t.Fatal(err)
	}
	c3, _ := sasl2Client(t, srv.addr)
	c3.send(authenticateXML("PLAIN", plainIR("alice", "pw"), ""))
	if f := c3.next(); f.Name != "success" {
		t.Fatalf("re-enabled account: %s", f)
	}
}
