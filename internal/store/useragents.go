package store

import (
	"context"
	"time"
)

// UserAgent is one client installation that logged in to an account with
// SASL2 (XEP-0388 <user-agent/>): what the owner is shown as "your
// devices", and what per-device features (stable Bind2 resources, FAST
// tokens) key on. It is never shown to anyone else.
type UserAgent struct {
	ID       string // the client's stable installation id (a UUID, lower case)
	Software string // the client's own description, "" if it gave none
	Device   string
	LastSeen time.Time // the last login with this id
	LastAddr string    // the address of that login
}

// UserAgents records the client installations of each account.
type UserAgents interface {
	// PutUserAgent records a login of ua for user: the row for ua.ID is
	// inserted or replaced (Software, Device, LastSeen, LastAddr are the
	// latest login's). Then only the keep most recently seen rows of the
	// account are kept (keep <= 0: all). ErrNotFound if the account does
	// not exist (nothing is stored then).
	PutUserAgent(ctx context.Context, user string, ua UserAgent, keep int) error
	// UserAgents returns the account's user agents, most recently seen
	// first (ties by ID); none for an unknown account.
	UserAgents(ctx context.Context, user string) ([]UserAgent, error)
	// DeleteUserAgent forgets one; ErrNotFound if the account has no such
	// user agent.
	DeleteUserAgent(ctx context.Context, user, id string) error
}
