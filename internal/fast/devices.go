package fast

import (
	"context"
	"log/slog"
	"sort"
	"time"

	"bluetick/internal/store"
)

// Device is one client holding live tokens of an account: what a user
// sees as a "linked device".
type Device struct {
	AgentID   string
	Software  string // as the client last told it
	Device    string
	Mechanism string    // of its newest token
	Since     time.Time // its oldest live token was issued
	LastUsed  time.Time // its last login: a token issued (after a password login) or used
	Expires   time.Time // its newest token's expiry
	Tokens    int       // 1, or 2 in the middle of a rotation
}

// Devices lists the clients holding live (neither revoked nor expired at
// now) tokens of user, most recently used first.
func Devices(ctx context.Context, st store.FastTokens, user string, now time.Time) ([]Device, error) {
	toks, err := st.FastTokens(ctx, user)
	if err != nil {
		return nil, err
	}
	byAgent := map[string]*Device{}
	var out []*Device
	for _, t := range toks { // oldest first
		if !t.Revoked.IsZero() || !now.Before(t.Expires) {
			continue
		}
		d := byAgent[t.AgentID]
		if d == nil {
			d = &Device{AgentID: t.AgentID, Since: t.Created}
			byAgent[t.AgentID] = d
			out = append(out, d)
		}
		d.Tokens++
		if t.Software != "" || t.Device != "" {
			d.Software, d.Device = t.Software, t.Device
		}
		d.Mechanism = t.Mechanism
		d.Expires = maxTime(d.Expires, t.Expires)
		d.LastUsed = maxTime(d.LastUsed, maxTime(t.Created, t.LastUsed))
	}
	res := make([]Device, len(out))
	for i, d := range out {
		res[i] = *d
	}
	sort.SliceStable(res, func(i, j int) bool {
		if !res[i].LastUsed.Equal(res[j].LastUsed) {
			return res[i].LastUsed.After(res[j].LastUsed)
		}
		return res[i].AgentID < res[j].AgentID
	})
	return res, nil
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// Revoke revokes user's live tokens: those of client agentID, or all if
// agentID is "", recording reason (RevokedByUser, RevokedByAdmin, ...).
// It returns how many tokens it revoked. Live sessions are not touched;
// see Service.Kick.
func Revoke(ctx context.Context, st store.FastTokens, user, agentID, reason string) (int, error) {
	return st.RevokeFastTokens(ctx, user, agentID, time.Now().UTC(), reason)
}

// PasswordChanged revokes all of user's tokens: call it wherever an
// account's password changes (the logins it proved no longer count).
func PasswordChanged(ctx context.Context, st store.FastTokens, user string) error {
	_, err := Revoke(ctx, st, user, "", RevokedPassword)
	return err
}

// Devices is the package's Devices on the service's store and clock.
func (s *Service) Devices(ctx context.Context, user string) ([]Device, error) {
	return Devices(ctx, s.st, user, s.cfg.Now())
}

// Revoke revokes as the package's Revoke does and counts it.
func (s *Service) Revoke(ctx context.Context, user, agentID, reason string) (int, error) {
	n, err := s.st.RevokeFastTokens(ctx, user, agentID, s.cfg.Now().UTC(), reason)
	if err == nil && n > 0 {
		s.Metrics.Revoked.Add(uint64(n))
		s.log.Info("tokens revoked", "user", user, "agent", agentID, "reason", reason, "tokens", n)
	}
	return n, err
}

// Sweep removes, every `every` until ctx ends, the tokens that expired
// more than one token lifetime ago, revoked or not. Until then they stay,
// so a device coming back is told "token expired" or why its token was
// revoked rather than just "invalid token". Every node of a cluster may
// run it; the deletes are idempotent.
func (s *Service) Sweep(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		n, err := s.st.ExpireFastTokens(ctx, s.cfg.Now().Add(-s.lifetime()))
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Error("removing expired tokens", "err", err)
		case n > 0:
			s.log.Log(ctx, slog.LevelInfo, "expired tokens removed", "tokens", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
