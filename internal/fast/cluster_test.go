package fast

import (
	"testing"

	"bluetick/internal/config"
	"bluetick/internal/pgtest"
	"bluetick/internal/store/postgres"
)

// TestClusterTokens: two nodes on one PostgreSQL. A token issued by one
// logs in on the other; a rotation issued there supersedes the first
// token everywhere; a count used on one node is a replay on the other; a
// revocation on either is seen by both.
func TestClusterTokens(t *testing.T) {
	dsn := pgtest.Start(t)
	var nodes [2]*Service
	for i := range nodes {
		st, err := postgres.Open(t.Context(), dsn, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		nodes[i] = New(Config{Fast: config.DefaultFast()}, st, nil)
	}
	a, b := nodes[0], nodes[1]
	if err := a.st.(*postgres.Store).CreateUser(t.Context(), "alice", nil); err != nil {
		t.Fatal(err)
	}
	login := func(s *Service, tok *Token, count int64) (*Negotiator, error) {
		t.Helper()
		n, err := s.NewNegotiator(HTSHA256None, Params{AgentID: phone.AgentID, Count: count})
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = n.Step(t.Context(), InitialResponse("alice", tok.Token, nil))
		return n, err
	}
	t1, err := a.Issue(t.Context(), "alice", phone, HTSHA256None)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := login(b, t1, 1); err != nil {
		t.Fatalf("token from node A on node B: %v", err)
	}
	if n, _ := login(a, t1, 1); n.Reason() != ReasonReplay {
		t.Fatalf("count 1 again, on node A: %q, want replay", n.Reason())
	}
	t2, err := b.TokenAfterSuccess(t.Context(), "alice", phone, Inline{RequestToken: HTSHA256None}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := login(a, t2, 0); err != nil {
		t.Fatalf("rotated token from node B on node A: %v", err)
	}
	if n, _ := login(b, t1, 5); n.Reason() != ReasonUnknownToken {
		t.Fatalf("superseded token on node B: %q", n.Reason())
	}
	if _, err := a.Revoke(t.Context(), "alice", phone.AgentID, RevokedByUser); err != nil {
		t.Fatal(err)
	}
	if n, _ := login(b, t2, 0); n.Reason() != ReasonRevoked {
		t.Fatalf("token revoked on node A, used on node B: %q", n.Reason())
	}
}
