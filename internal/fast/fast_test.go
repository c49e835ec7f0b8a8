package fast

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"bluetick/internal/auth"
	"bluetick/internal/config"
	"bluetick/internal/metrics"
	"bluetick/internal/store"
	"bluetick/internal/store/sqlite"
	"bluetick/internal/xmlstream"
)

// clock is a settable fake clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	t   testing.TB
	svc *Service
	st  store.Store
	clk *clock
}

const day = 24 * time.Hour

// newEnv starts a service over a real SQLite store holding alice and bob,
// with the default [fast] settings changed by mod.
func newEnv(t testing.TB, mod ...func(*config.Fast)) *env {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "bluetick.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, u := range []string{"alice", "bob"} {
		if err := st.CreateUser(t.Context(), u, nil); err != nil {
			t.Fatal(err)
		}
	}
	fc := config.DefaultFast()
	for _, m := range mod {
		m(&fc)
	}
	clk := &clock{t: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	return &env{t: t, svc: New(Config{Fast: fc, Now: clk.Now}, st, nil), st: st, clk: clk}
}

var phone = Client{AgentID: "d4565fa7-4d72-4749-b3d3-740edbf87770", Software: "Conversations", Device: "Pixel 9"}

// issue gives alice's phone a token for mech.
func (e *env) issue(user string, c Client, mech string) *Token {
	e.t.Helper()
	tok, err := e.svc.Issue(e.t.Context(), user, c, mech)
	if err != nil {
		e.t.Fatalf("Issue: %v", err)
	}
	return tok
}

// login runs one token login as a SASL2 layer would and returns the
// negotiator, the server's final message and the error.
func (e *env) login(mech string, p Params, in []byte) (*Negotiator, []byte, error) {
	e.t.Helper()
	n, err := e.svc.NewNegotiator(mech, p)
	if err != nil {
		e.t.Fatalf("NewNegotiator(%s): %v", mech, err)
	}
	out, done, err := n.Step(e.t.Context(), in)
	if done != (err == nil) {
		e.t.Fatalf("Step: done %v with err %v", done, err)
	}
	return n, out, err
}

func failure(t *testing.T, err error) *auth.Failure {
	t.Helper()
	var f *auth.Failure
	if !errors.As(err, &f) {
		t.Fatalf("error %v is not an *auth.Failure", err)
	}
	return f
}

func TestLoginNone(t *testing.T) {
	e := newEnv(t)
	tok := e.issue("alice", phone, HTSHA256None)
	if len(tok.Token) != 72 || !tok.Expiry.Equal(e.clk.Now().Add(14*day)) || tok.Mechanism != HTSHA256None {
		t.Fatalf("token = %+v", tok)
	}
	el := tok.Element()
	if el.Space != NS || el.Name != "token" || el.Attr("token") != tok.Token || el.Attr("expiry") != "2026-05-15T12:00:00Z" {
		t.Fatalf("<token/> = %s", el)
	}
	n, out, err := e.login(HTSHA256None, Params{AgentID: phone.AgentID}, InitialResponse("alice", tok.Token, nil))
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	if n.Username() != "alice" || n.Reason() != ReasonNone || n.RotationDue() {
		t.Fatalf("user %q reason %q rotate %v", n.Username(), n.Reason(), n.RotationDue())
	}
	if !bytes.Equal(out, ServerFinal(tok.Token, nil)) {
		t.Fatal("the server's final message does not prove it knows the token")
	}
	// The authcid is prepared like a password login's.
	if n, _, err := e.login(HTSHA256None, Params{AgentID: phone.AgentID}, InitialResponse("ALICE", tok.Token, nil)); err != nil || n.Username() != "alice" {
		t.Fatalf("login as ALICE: %v, %q", err, n.Username())
	}
	// HT has one round trip.
	if _, _, err := n.Step(t.Context(), nil); failure(t, err).Condition != "malformed-request" {
		t.Fatalf("second Step: %v", err)
	}
	if e.svc.Metrics.Logins(ReasonNone) != 2 || e.svc.Metrics.Issued.Load() != 1 {
		t.Fatalf("metrics: %d logins, %d issued", e.svc.Metrics.Logins(ReasonNone), e.svc.Metrics.Issued.Load())
	}
}

func TestLoginChannelBinding(t *testing.T) {
	e := newEnv(t)
	cb := cb32()
	for _, mech := range []string{HTSHA256Expr, HTSHA256Endp, HTSHA256Uniq} {
		c := phone
		c.AgentID = mech // one client per mechanism, so none supersedes another
		tok := e.issue("alice", c, mech)
		_, out, err := e.login(mech, Params{AgentID: c.AgentID, CBData: cb}, InitialResponse("alice", tok.Token, cb))
		if err != nil {
			t.Fatalf("%s: %v", mech, err)
		}
		if !bytes.Equal(out, ServerFinal(tok.Token, cb)) {
			t.Fatalf("%s: final message not bound to the channel", mech)
		}
	}
	// A channel-binding mechanism without the data cannot start.
	if _, err := e.svc.NewNegotiator(HTSHA256Expr, Params{AgentID: "x"}); failure(t, err).Condition != "invalid-mechanism" {
		t.Fatalf("EXPR without cb data: %v", err)
	}
	for _, m := range []string{"SCRAM-SHA-256", "HT-SHA-512-NONE", ""} {
		if _, err := e.svc.NewNegotiator(m, Params{}); failure(t, err).Condition != "invalid-mechanism" {
			t.Fatalf("NewNegotiator(%q): %v", m, err)
		}
	}
}

// TestRefusals covers every way a token login fails: what the client is
// told and the reason kept for logs and metrics.
func TestRefusals(t *testing.T) {
	e := newEnv(t)
	cb := cb32()
	tok := e.issue("alice", phone, HTSHA256Expr)
	good := InitialResponse("alice", tok.Token, cb)
	ok := Params{AgentID: phone.AgentID, CBData: cb}
	generic := auth.Failure{Condition: "not-authorized", Text: "invalid token"}

	other, _ := newToken()
	for _, c := range []struct {
		name   string
		mech   string
		p      Params
		in     []byte
		reason Reason
		want   auth.Failure
	}{
		{"wrong token", HTSHA256Expr, ok, InitialResponse("alice", other, cb), ReasonUnknownToken, generic},
		{"unknown user", HTSHA256Expr, ok, InitialResponse("mallory", tok.Token, cb), ReasonUnknownUser, generic},
		{"invalid username", HTSHA256Expr, ok, InitialResponse("a@b", tok.Token, cb), ReasonUnknownUser, generic},
		{"another user's name", HTSHA256Expr, ok, InitialResponse("bob", tok.Token, cb), ReasonUnknownToken, generic},
		{"wrong channel binding", HTSHA256Expr, Params{AgentID: phone.AgentID, CBData: bytes.Repeat([]byte{9}, 32)},
			InitialResponse("alice", tok.Token, bytes.Repeat([]byte{9}, 31)), ReasonUnknownToken, generic},
		{"client bound another channel", HTSHA256Expr, ok, InitialResponse("alice", tok.Token, bytes.Repeat([]byte{9}, 32)), ReasonUnknownToken, generic},
		{"wrong agent", HTSHA256Expr, Params{AgentID: "another-client", CBData: cb}, good, ReasonWrongAgent,
			auth.Failure{Condition: "not-authorized", Text: "token was issued to another client"}},
		{"no agent", HTSHA256Expr, Params{CBData: cb}, good, ReasonWrongAgent,
			auth.Failure{Condition: "not-authorized", Text: "token was issued to another client"}},
		{"downgrade to NONE", HTSHA256None, Params{AgentID: phone.AgentID}, InitialResponse("alice", tok.Token, nil), ReasonWrongMechanism,
			auth.Failure{Condition: "not-authorized", Text: "token is not valid for HT-SHA-256-NONE"}},
		{"another binding", HTSHA256Endp, ok, good, ReasonWrongMechanism,
			auth.Failure{Condition: "not-authorized", Text: "token is not valid for HT-SHA-256-ENDP"}},
		{"malformed", HTSHA256Expr, ok, []byte("alice"), ReasonMalformed,
			auth.Failure{Condition: "malformed-request", Text: "HT initial response: no NUL after the authentication identity"}},
	} {
		n, _, err := e.login(c.mech, c.p, c.in)
		if f := failure(t, err); *f != c.want || n.Reason() != c.reason || n.Username() != "" {
			t.Errorf("%s: %+v, reason %q, user %q; want %+v, %q", c.name, *f, n.Reason(), n.Username(), c.want, c.reason)
		}
	}
	// None of these used up the token.
	if _, _, err := e.login(HTSHA256Expr, ok, good); err != nil {
		t.Fatalf("the token after the refusals: %v", err)
	}
	if got := e.svc.Metrics.Logins(ReasonUnknownToken); got != 4 {
		t.Errorf("unknown-token count %d, want 4", got)
	}
}

func TestRefusedExpired(t *testing.T) {
	e := newEnv(t)
	tok := e.issue("alice", phone, HTSHA256None)
	in := InitialResponse("alice", tok.Token, nil)
	e.clk.Add(14*day - time.Second)
	if _, _, err := e.login(HTSHA256None, Params{AgentID: phone.AgentID}, in); err != nil {
		t.Fatalf("a second before expiry: %v", err)
	}
	e.clk.Add(time.Second)
	n, _, err := e.login(HTSHA256None, Params{AgentID: phone.AgentID}, in)
	if f := failure(t, err); f.Condition != "credentials-expired" || f.Text != "token expired" || n.Reason() != ReasonExpired {
		t.Fatalf("at expiry: %+v, %q", f, n.Reason())
	}
}

func TestRefusedRevoked(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name   string
		revoke func(e *env) error
		text   string
	}{
		{"owner", func(e *env) error { _, err := e.svc.Revoke(ctx, "alice", phone.AgentID, RevokedByUser); return err },
			"token revoked: this device was logged out by the account's owner"},
		{"admin", func(e *env) error { _, err := Revoke(ctx, e.st, "alice", "", RevokedByAdmin); return err },
			"token revoked by the server's administrator"},
		{"password change", func(e *env) error { return PasswordChanged(ctx, e.st, "alice") },
			"token revoked: the account's password was changed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			tok := e.issue("alice", phone, HTSHA256None)
			if err := c.revoke(e); err != nil {
				t.Fatal(err)
			}
			n, _, err := e.login(HTSHA256None, Params{AgentID: phone.AgentID}, InitialResponse("alice", tok.Token, nil))
			if f := failure(t, err); f.Condition != "credentials-expired" || f.Text != c.text || n.Reason() != ReasonRevoked {
				t.Fatalf("%+v, %q; want credentials-expired %q", f, n.Reason(), c.text)
			}
			// A password login issues a working token again.
			tok = e.issue("alice", phone, HTSHA256None)
			if _, _, err := e.login(HTSHA256None, Params{AgentID: phone.AgentID}, InitialResponse("alice", tok.Token, nil)); err != nil {
				t.Fatalf("new token after revocation: %v", err)
			}
		})
	}
}

// TestAccountDeletion: deleting the account deletes its tokens; a
// re-created account of the same name does not inherit them.
func TestAccountDeletion(t *testing.T) {
	e := newEnv(t)
	tok := e.issue("alice", phone, HTSHA256None)
	if err := e.st.DeleteUser(t.Context(), "alice"); err != nil {
		t.Fatal(err)
	}
	in := InitialResponse("alice", tok.Token, nil)
	n, _, err := e.login(HTSHA256None, Params{AgentID: phone.AgentID}, in)
	if f := failure(t, err); f.Text != "invalid token" || n.Reason() != ReasonUnknownUser {
		t.Fatalf("after deletion: %+v, %q", f, n.Reason())
	}
	if err := e.st.CreateUser(t.Context(), "alice", nil); err != nil {
		t.Fatal(err)
	}
	n, _, err = e.login(HTSHA256None, Params{AgentID: phone.AgentID}, in)
	if f := failure(t, err); f.Text != "invalid token" || n.Reason() != ReasonUnknownToken {
		t.Fatalf("re-created account: %+v, %q", f, n.Reason())
	}
}

func TestReplayCount(t *testing.T) {
	e := newEnv(t)
	tok := e.issue("alice", phone, HTSHA256None)
	in := InitialResponse("alice", tok.Token, nil)
	p := func(c int64) Params { return Params{AgentID: phone.AgentID, Count: c} }
	replayed := func(c int64) {
		t.Helper()
		n, _, err := e.login(HTSHA256None, p(c), in)
		if f := failure(t, err); f.Condition != "not-authorized" || f.Text != "count already used with this token" || n.Reason() != ReasonReplay {
			t.Fatalf("count %d replayed: %+v, %q", c, f, n.Reason())
		}
	}
	if _, _, err := e.login(HTSHA256None, p(1), in); err != nil {
		t.Fatalf("count 1: %v", err)
	}
	replayed(1)
	if _, _, err := e.login(HTSHA256None, p(2), in); err != nil {
		t.Fatalf("count 2: %v", err)
	}
	replayed(2)
	replayed(1)
	// Without a count (no TLS 0-RTT), no replay check.
	if _, _, err := e.login(HTSHA256None, p(0), in); err != nil {
		t.Fatalf("no count: %v", err)
	}
	// Concurrent logins with one count (a replayed 0-RTT flight): one wins.
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := e.svc.NewNegotiator(HTSHA256None, p(3))
			if err != nil {
				t.Error(err)
				return
			}
			if _, _, err := n.Step(context.Background(), in); err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			} else if n.Reason() != ReasonReplay {
				t.Errorf("concurrent replay: %v (%q)", err, n.Reason())
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d of 8 logins with count 3 succeeded, want 1", wins)
	}
}

// TestRotation follows XEP-0484 §"Token rotation": a token used in the
// second half of its life is replaced; the old one works until the new
// one is used, and not after.
func TestRotation(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	p := Params{AgentID: phone.AgentID}
	old := e.issue("alice", phone, HTSHA256None)
	oldIn := InitialResponse("alice", old.Token, nil)

	e.clk.Add(6 * day) // 8 days left of 14: no rotation
	n, _, err := e.login(HTSHA256None, p, oldIn)
	if err != nil || n.RotationDue() {
		t.Fatalf("at 6 days: %v, rotate %v", err, n.RotationDue())
	}
	if tok, err := e.svc.TokenAfterSuccess(ctx, "alice", phone, Inline{Fast: true}, n); tok != nil || err != nil {
		t.Fatalf("TokenAfterSuccess with nothing due: %v, %v", tok, err)
	}
	e.clk.Add(2 * day) // 6 days left: rotate
	n, _, err = e.login(HTSHA256None, p, oldIn)
	if err != nil || !n.RotationDue() {
		t.Fatalf("at 8 days: %v, rotate %v", err, n.RotationDue())
	}
	fresh, err := e.svc.TokenAfterSuccess(ctx, "alice", phone, Inline{Fast: true}, n)
	if err != nil || fresh == nil || fresh.Mechanism != HTSHA256None || !fresh.Expiry.Equal(e.clk.Now().Add(14*day)) {
		t.Fatalf("rotated token: %+v, %v", fresh, err)
	}
	if e.svc.Metrics.Rotated.Load() != 1 {
		t.Fatal("rotation not counted")
	}
	// The client lost the <success/>: the old token still works...
	if _, _, err := e.login(HTSHA256None, p, oldIn); err != nil {
		t.Fatalf("old token before the new one is used: %v", err)
	}
	// ...until the new one is used once.
	if _, _, err := e.login(HTSHA256None, p, InitialResponse("alice", fresh.Token, nil)); err != nil {
		t.Fatalf("new token: %v", err)
	}
	n, _, err = e.login(HTSHA256None, p, oldIn)
	if failure(t, err).Text != "invalid token" || n.Reason() != ReasonUnknownToken {
		t.Fatalf("old token after the new one was used: %v (%q)", err, n.Reason())
	}
	if d, _ := e.svc.Devices(ctx, "alice"); len(d) != 1 || d[0].Tokens != 1 {
		t.Fatalf("devices after rotation: %+v", d)
	}
}

// TestRequestToken: <request-token/> gets a token after any login (also a
// token login, for another mechanism), and a new token replaces the
// client's unused one at once.
func TestRequestToken(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	// After a password login (no negotiator).
	t1, err := e.svc.TokenAfterSuccess(ctx, "alice", phone, Inline{RequestToken: HTSHA256None}, nil)
	if err != nil || t1 == nil {
		t.Fatalf("requested token: %v, %v", t1, err)
	}
	t2, err := e.svc.TokenAfterSuccess(ctx, "alice", phone, Inline{RequestToken: HTSHA256Expr}, nil)
	if err != nil || t2.Mechanism != HTSHA256Expr {
		t.Fatalf("second requested token: %+v, %v", t2, err)
	}
	// t1 was never used: superseded by t2.
	if _, _, err := e.login(HTSHA256None, Params{AgentID: phone.AgentID}, InitialResponse("alice", t1.Token, nil)); failure(t, err).Text != "invalid token" {
		t.Fatalf("unused token after a newer one: %v", err)
	}
	// No token without the client's id, or for an unknown mechanism.
	if _, err := e.svc.TokenAfterSuccess(ctx, "alice", Client{}, Inline{RequestToken: HTSHA256None}, nil); !errors.Is(err, ErrNoAgent) {
		t.Fatalf("without user-agent id: %v", err)
	}
	if _, err := e.svc.TokenAfterSuccess(ctx, "alice", phone, Inline{RequestToken: "PLAIN"}, nil); !errors.Is(err, ErrUnknownMechanism) {
		t.Fatalf("for PLAIN: %v", err)
	}
	if tok, err := e.svc.TokenAfterSuccess(ctx, "alice", phone, Inline{}, nil); tok != nil || err != nil {
		t.Fatalf("password login without request: %v, %v", tok, err)
	}
	if _, err := e.svc.Issue(ctx, "nobody", phone, HTSHA256None); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("token for an unknown account: %v", err)
	}
}

func TestInvalidate(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	tok := e.issue("alice", phone, HTSHA256None)
	in := InitialResponse("alice", tok.Token, nil)
	e.clk.Add(13 * day) // due for rotation, but invalidation wins
	n, _, err := e.login(HTSHA256None, Params{AgentID: phone.AgentID, Invalidate: true}, in)
	if err != nil {
		t.Fatalf("login with invalidate: %v", err)
	}
	if n.RotationDue() {
		t.Fatal("rotation due after invalidate")
	}
	if tok, _ := e.svc.TokenAfterSuccess(ctx, "alice", phone, Inline{Fast: true, Invalidate: true}, n); tok != nil {
		t.Fatal("a token was issued after invalidate without request-token")
	}
	if _, _, err := e.login(HTSHA256None, Params{AgentID: phone.AgentID}, in); failure(t, err).Text != "invalid token" {
		t.Fatalf("token after invalidate: %v", err)
	}
	// invalidate together with request-token: the new token is issued.
	tok = e.issue("alice", phone, HTSHA256None)
	n, _, err = e.login(HTSHA256None, Params{AgentID: phone.AgentID, Invalidate: true}, InitialResponse("alice", tok.Token, nil))
	if err != nil {
		t.Fatal(err)
	}
	if tok, err := e.svc.TokenAfterSuccess(ctx, "alice", phone, Inline{RequestToken: HTSHA256None, Fast: true, Invalidate: true}, n); tok == nil || err != nil {
		t.Fatalf("invalidate + request-token: %v, %v", tok, err)
	}
}

func TestEviction(t *testing.T) {
	e := newEnv(t, func(f *config.Fast) { f.MaxTokensPerAccount = 2 })
	a := e.issue("alice", Client{AgentID: "A"}, HTSHA256None)
	e.clk.Add(time.Minute)
	b := e.issue("alice", Client{AgentID: "B"}, HTSHA256None)
	e.clk.Add(time.Minute)
	// A logs in again: B is now the least recently used.
	if _, _, err := e.login(HTSHA256None, Params{AgentID: "A"}, InitialResponse("alice", a.Token, nil)); err != nil {
		t.Fatal(err)
	}
	e.clk.Add(time.Minute)
	e.issue("alice", Client{AgentID: "C"}, HTSHA256None)
	n, _, err := e.login(HTSHA256None, Params{AgentID: "B"}, InitialResponse("alice", b.Token, nil))
	if f := failure(t, err); f.Text != "token revoked: too many devices are logged in to this account" || n.Reason() != ReasonRevoked {
		t.Fatalf("evicted client: %+v", f)
	}
	devs, _ := e.svc.Devices(t.Context(), "alice")
	var ids []string
	for _, d := range devs {
		ids = append(ids, d.AgentID)
	}
	if !slices.Equal(ids, []string{"C", "A"}) {
		t.Fatalf("devices %v, want [C A] (most recent first)", ids)
	}
}

func TestDevices(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	e.issue("alice", phone, HTSHA256None)
	e.clk.Add(time.Hour)
	tab := Client{AgentID: "tablet", Software: "Monal", Device: "iPad"}
	tt := e.issue("alice", tab, HTSHA256None)
	e.clk.Add(time.Hour)
	e.issue("alice", Client{AgentID: "gone"}, HTSHA256None)
	e.svc.Revoke(ctx, "alice", "gone", RevokedByUser)
	e.clk.Add(time.Hour)
	if _, _, err := e.login(HTSHA256None, Params{AgentID: "tablet"}, InitialResponse("alice", tt.Token, nil)); err != nil {
		t.Fatal(err)
	}
	devs, err := e.svc.Devices(ctx, "alice")
	if err != nil || len(devs) != 2 {
		t.Fatalf("Devices = %+v, %v", devs, err)
	}
	d := devs[0]
	if d.AgentID != "tablet" || d.Software != "Monal" || d.Device != "iPad" || !d.LastUsed.Equal(e.clk.Now()) || d.Tokens != 1 {
		t.Fatalf("first device %+v", d)
	}
	if devs[1].AgentID != phone.AgentID || !devs[1].LastUsed.Equal(devs[1].Since) {
		t.Fatalf("second device %+v", devs[1])
	}
	// Long strings are clipped.
	long := Client{AgentID: "x", Software: string(bytes.Repeat([]byte("é"), 300))}
	e.clk.Add(time.Minute)
	e.issue("alice", long, HTSHA256None)
	devs, _ = e.svc.Devices(ctx, "alice")
	if len(devs[0].Software) > maxInfo || devs[0].Software[len(devs[0].Software)-2:] != "é" {
		t.Fatalf("software not clipped at a rune: %d bytes", len(devs[0].Software))
	}
	if _, err := e.svc.Issue(ctx, "alice", Client{AgentID: string(bytes.Repeat([]byte("a"), 300))}, HTSHA256None); err == nil {
		t.Fatal("a 300-byte user-agent id was accepted")
	}
}

func TestDisabled(t *testing.T) {
	e := newEnv(t, func(f *config.Fast) { f.Enabled = false })
	if m := e.svc.Mechanisms(true, CBTLSExporter); m != nil {
		t.Fatalf("mechanisms when disabled: %v", m)
	}
	if e.svc.Feature(true) != nil || e.svc.Commands() != nil {
		t.Fatal("feature or commands offered when disabled")
	}
	if _, err := e.svc.NewNegotiator(HTSHA256None, Params{}); failure(t, err).Condition != "invalid-mechanism" {
		t.Fatalf("negotiator when disabled: %v", err)
	}
	if _, err := e.svc.Issue(t.Context(), "alice", phone, HTSHA256None); !errors.Is(err, ErrDisabled) {
		t.Fatalf("Issue when disabled: %v", err)
	}
}

func TestMechanisms(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		tls  bool
		cb   []string
		want []string
	}{
		{false, []string{CBTLSExporter}, nil},
		{true, nil, []string{HTSHA256None}},
		{true, []string{CBTLSServerEndPoint, CBTLSExporter}, []string{HTSHA256Expr, HTSHA256Endp, HTSHA256None}},
		{true, []string{CBTLSUnique, "tls-whatever"}, []string{HTSHA256Uniq, HTSHA256None}},
	} {
		if got := e.svc.Mechanisms(c.tls, c.cb...); !slices.Equal(got, c.want) {
			t.Errorf("Mechanisms(%v, %v) = %v, want %v", c.tls, c.cb, got, c.want)
		}
	}
	f := e.svc.Feature(true, CBTLSExporter)
	if f.Space != NS || f.Name != "fast" || f.Attr("tls-0rtt") != "" || len(f.Elements()) != 2 || f.Elements()[0].Text() != HTSHA256Expr {
		t.Fatalf("feature %s", f)
	}
	if e.svc.Feature(false) != nil {
		t.Fatal("feature offered without TLS")
	}
	for m, cb := range map[string]string{HTSHA256None: "", HTSHA256Expr: CBTLSExporter, HTSHA256Endp: CBTLSServerEndPoint, HTSHA256Uniq: CBTLSUnique, "PLAIN": ""} {
		if ChannelBinding(m) != cb {
			t.Errorf("ChannelBinding(%s) = %q, want %q", m, ChannelBinding(m), cb)
		}
	}
}

func TestParseInline(t *testing.T) {
	parse := func(children ...*xmlstream.Element) (Inline, error) {
		a := xmlstream.New("urn:xmpp:sasl:2", "authenticate", "mechanism", HTSHA256None)
		a.Append(children...)
		return ParseInline(a)
	}
	for _, c := range []struct {
		name string
		els  []*xmlstream.Element
		want Inline
		bad  bool
	}{
		{"none", nil, Inline{}, false},
		{"request", []*xmlstream.Element{xmlstream.New(NS, "request-token", "mechanism", HTSHA256Expr)}, Inline{RequestToken: HTSHA256Expr}, false},
		{"request without mechanism", []*xmlstream.Element{xmlstream.New(NS, "request-token")}, Inline{}, true},
		{"fast", []*xmlstream.Element{xmlstream.New(NS, "fast")}, Inline{Fast: true}, false},
		{"fast count invalidate", []*xmlstream.Element{xmlstream.New(NS, "fast", "count", "12", "invalidate", "true")}, Inline{Fast: true, Count: 12, Invalidate: true}, false},
		{"invalidate 1", []*xmlstream.Element{xmlstream.New(NS, "fast", "invalidate", "1")}, Inline{Fast: true, Invalidate: true}, false},
		{"invalidate false", []*xmlstream.Element{xmlstream.New(NS, "fast", "invalidate", "false")}, Inline{Fast: true}, false},
		{"count 0", []*xmlstream.Element{xmlstream.New(NS, "fast", "count", "0")}, Inline{}, true},
		{"count -1", []*xmlstream.Element{xmlstream.New(NS, "fast", "count", "-1")}, Inline{}, true},
		{"count x", []*xmlstream.Element{xmlstream.New(NS, "fast", "count", "x")}, Inline{}, true},
		{"count huge", []*xmlstream.Element{xmlstream.New(NS, "fast", "count", "99999999999999999999")}, Inline{}, true},
		{"invalidate yes", []*xmlstream.Element{xmlstream.New(NS, "fast", "invalidate", "yes")}, Inline{}, true},
		{"other namespace", []*xmlstream.Element{xmlstream.New("urn:other", "fast")}, Inline{}, false},
	} {
		got, err := parse(c.els...)
		if (err != nil) != c.bad || !c.bad && got != c.want {
			t.Errorf("%s: %+v, %v; want %+v (error %v)", c.name, got, err, c.want, c.bad)
		}
	}
}

// TestSweep: expired and revoked tokens stay one lifetime past their
// expiry (their holder is told why), then go.
func TestSweep(t *testing.T) {
	e := newEnv(t)
	tok := e.issue("alice", phone, HTSHA256None)
	ctx, cancel := context.WithCancel(t.Context())
	e.clk.Add(14*day + time.Hour)
	done := make(chan struct{})
	go func() { e.svc.Sweep(ctx, time.Hour); close(done) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	<-done
	n, _, err := e.login(HTSHA256None, Params{AgentID: phone.AgentID}, InitialResponse("alice", tok.Token, nil))
	if n.Reason() != ReasonExpired {
		t.Fatalf("just expired: %v (%q), want it still told", err, n.Reason())
	}
	e.clk.Add(14 * day)
	ctx, cancel = context.WithCancel(t.Context())
	done = make(chan struct{})
	go func() { e.svc.Sweep(ctx, time.Hour); close(done) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	<-done
	if toks, _ := e.st.FastTokens(t.Context(), "alice"); len(toks) != 0 {
		t.Fatalf("%d tokens left after a lifetime past expiry", len(toks))
	}
}

func TestMetricsText(t *testing.T) {
	e := newEnv(t)
	e.issue("alice", phone, HTSHA256None)
	e.login(HTSHA256None, Params{AgentID: phone.AgentID}, []byte("x"))
	text, err := metrics.Text(e.svc.Metrics.Collectors()...)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`bluetick_fast_logins_total{result="malformed"} 1`, `bluetick_fast_logins_total{result="ok"} 0`, "bluetick_fast_tokens_issued_total 1"} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q:\n%s", want, text)
		}
	}
}

// TestLastUsedWrites: a login with nothing else to record writes the
// token's last use at most once per lastUsedRefresh, so a phone that
// reconnects every minute costs a read, not a write; a count, an older
// token to remove or an invalidation is always written.
func TestLastUsedWrites(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	p := Params{AgentID: phone.AgentID}
	tok := e.issue("alice", phone, HTSHA256None)
	in := InitialResponse("alice", tok.Token, nil)
	lastUsed := func() time.Time {
		t.Helper()
		toks, err := e.st.FastTokens(ctx, "alice")
		if err != nil || len(toks) != 1 {
			t.Fatalf("tokens = %+v, %v", toks, err)
		}
		return toks[0].LastUsed
	}
	login := func(p Params) {
		t.Helper()
		if _, _, err := e.login(HTSHA256None, p, in); err != nil {
			t.Fatal(err)
		}
	}
	login(p) // never used: written
	first := e.clk.Now()
	if !lastUsed().Equal(first) {
		t.Fatalf("first use not recorded: %v", lastUsed())
	}
	e.clk.Add(time.Minute)
	login(p)
	if !lastUsed().Equal(first) {
		t.Fatalf("a reconnect a minute later wrote last use %v", lastUsed())
	}
	e.clk.Add(lastUsedRefresh)
	login(p)
	if !lastUsed().Equal(e.clk.Now()) {
		t.Fatalf("after %v last use is still %v", lastUsedRefresh, lastUsed())
	}
	// A count is always recorded (and checked: its replay is refused).
	e.clk.Add(time.Minute)
	login(Params{AgentID: phone.AgentID, Count: 7})
	if n, _, err := e.login(HTSHA256None, Params{AgentID: phone.AgentID, Count: 7}, in); failure(t, err).Condition != "not-authorized" || n.Reason() != ReasonReplay {
		t.Fatalf("count 7 again: %v", err)
	}
	if !lastUsed().Equal(e.clk.Now()) {
		t.Fatal("a login with a count did not record its use")
	}
}
