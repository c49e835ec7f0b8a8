package store

import (
	"context"
	"time"
)

// LoginStats is what the server remembers of an account's logins: what the
// owner is told after failed attempts, what `bluetick user info` shows, and
// the per-account login throttle's shared state (package auth).
type LoginStats struct {
	Failed          int       // failed password checks since the last successful login
	LastFailure     time.Time // zero: none recorded
	LastFailureAddr string
	LastSuccess     time.Time // zero: none recorded
	LastSuccessAddr string
	// Streak counts the failures from addresses the account has never
	// logged in from, in the current streak: a failure more than
	// LoginPolicy.StreakWindow after StreakLast (the latest) starts a new
	// one. A success does not end it. Every node's throttle reads it.
	Streak     int
	StreakLast time.Time
	// Known are the addresses (a host for IPv4, a /64 for IPv6) the
	// account logged in from, most recently used first.
	Known []KnownAddress
}

// KnownAddress is an address an account logged in from, and when it last did.
type KnownAddress struct {
	Prefix   string
	LastSeen time.Time
}

// LoginEvent is one login outcome to record.
type LoginEvent struct {
	User    string
	At      time.Time
	Addr    string // the client's address
	Success bool
	// For a failure: whether it counts in the Streak (the address is not
	// a known one). For a success: Prefix ("" = none) becomes or stays a
	// known address, seen At.
	Stranger bool
	Prefix   string
}

// LoginPolicy parameterises RecordLogins.
type LoginPolicy struct {
	StreakWindow time.Duration // see LoginStats.Streak
	KeepKnown    int           // known addresses kept per account, the most recently used; <= 0: all
}

// Logins records login outcomes per account.
type Logins interface {
	// RecordLogins applies events in order, in one transaction: a
	// failure adds one to Failed (and to Streak if Stranger) and sets
	// LastFailure; a success resets Failed to 0, sets LastSuccess and
	// records its Prefix. Events of absent accounts are skipped.
	RecordLogins(ctx context.Context, events []LoginEvent, p LoginPolicy) error
	// LoginStats returns an account's record: the zero value if nothing
	// was recorded, ErrNotFound if the account does not exist.
	LoginStats(ctx context.Context, user string) (LoginStats, error)
}
