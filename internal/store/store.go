// Package store defines the storage Bluetick needs, as small interfaces owned
// by the features that use them. Implementations live in subpackages
// (store/sqlite now, store/postgres for cluster mode) and must all pass the
// one contract suite in store/storetest.
//
// Users are identified by their localpart (the server serves one domain);
// contacts by their bare JID string. Every method takes a context first and
// returns ErrNotFound, ErrExists or ErrQuota for the conditions callers act on.
//
// For an account that does not exist, writes (PutRosterItem,
// DeleteRosterItem, StoreOffline, SetLastActivity) return ErrNotFound and
// create nothing, while reads answer empty (Roster: no items, version 0;
// OfflineMessages: none; CountOffline: 0; DeleteOffline: no-op), so presence
// handling racing an account deletion does not fail.
package store

import (
	"context"
	"errors"
	"time"
)

// Errors callers act on. Implementations wrap them; test with errors.Is.
var (
	ErrNotFound = errors.New("store: not found")
	ErrExists   = errors.New("store: already exists")
	ErrQuota    = errors.New("store: quota exceeded")
)

// Credential is what a SASL SCRAM exchange needs to verify a password
// without the server ever keeping the password (RFC 5802 §3): the salt, the
// iteration count and the two derived keys. Mechanism is "SCRAM-SHA-1" or
// "SCRAM-SHA-256"; an account has one credential per mechanism.
type Credential struct {
	Mechanism  string
	Salt       []byte
	Iterations int
	StoredKey  []byte
	ServerKey  []byte
}

// Users holds accounts and their credentials.
type Users interface {
	// CreateUser adds an account; ErrExists if the name is taken.
	CreateUser(ctx context.Context, user string, creds []Credential) error
	// SetCredentials replaces all credentials of an account; ErrNotFound if absent.
	SetCredentials(ctx context.Context, user string, creds []Credential) error
	// DeleteUser removes an account and everything stored for it (roster,
	// offline messages, last activity); ErrNotFound if absent.
	DeleteUser(ctx context.Context, user string) error
	// Credential returns the account's credential for one mechanism;
	// ErrNotFound if the account or that credential does not exist.
	Credential(ctx context.Context, user, mechanism string) (Credential, error)
	// UserExists reports whether the account exists.
	UserExists(ctx context.Context, user string) (bool, error)
	// ListUsers returns all account names, sorted by byte order.
	ListUsers(ctx context.Context) ([]string, error)
}

// Subscription states of a roster item (RFC 6121 §2.1.2.5).
const (
	SubNone = "none"
	SubTo   = "to"
	SubFrom = "from"
	SubBoth = "both"
)

// RosterItem is one contact in a user's roster, with the full subscription
// state of RFC 6121 Appendix A: Subscription plus the two pending flags and
// pre-approval.
type RosterItem struct {
	Contact      string // bare JID of the contact
	Name         string
	Subscription string // SubNone, SubTo, SubFrom or SubBoth
	PendingOut   bool   // we asked the contact (ask='subscribe')
	PendingIn    bool   // the contact asked us and we have not answered
	Approved     bool   // pre-approved (RFC 6121 §3.4)
	Groups       []string
	// InRoster is false for an item that exists only to remember a pending
	// inbound request or a pre-approval: it is not shown in roster results.
	InRoster bool
}

// Rosters holds rosters. Every change bumps the roster version (RFC 6121
// §2.6), a per-user counter returned by each call.
type Rosters interface {
	// Roster returns all items of a user (including items with InRoster
	// false) and the current version.
	Roster(ctx context.Context, user string) ([]RosterItem, int64, error)
	// RosterItem returns one item; ErrNotFound if there is none.
	RosterItem(ctx context.Context, user, contact string) (RosterItem, error)
	// PutRosterItem inserts or replaces an item and returns the new version.
	PutRosterItem(ctx context.Context, user string, item RosterItem) (int64, error)
	// DeleteRosterItem removes an item (no error if absent) and returns the
	// new version (which may increase even if nothing was removed; it never
	// decreases).
	DeleteRosterItem(ctx context.Context, user, contact string) (int64, error)
}

// OfflineMessage is a stanza held for a user who was not online
// (XEP-0160). Data is the serialized stanza, already stamped with its
// stanza-id and delay, so delivery writes it out unchanged.
type OfflineMessage struct {
	Seq      int64 // assigned by the store; increasing per user, never reused even after deletion
	StanzaID string
	From     string // full JID of the sender
	Stored   time.Time
	Data     []byte
}

// Offline holds messages for offline users.
type Offline interface {
	// StoreOffline appends a message for user durably (it survives a crash
	// once this returns) and returns its Seq. If the user already holds
	// quota messages (quota > 0) it stores nothing and returns ErrQuota.
	StoreOffline(ctx context.Context, user string, m OfflineMessage, quota int) (int64, error)
	// OfflineMessages returns up to limit (0 = all) of a user's messages in
	// Seq order.
	OfflineMessages(ctx context.Context, user string, limit int) ([]OfflineMessage, error)
	// DeleteOffline removes the given messages of a user.
	DeleteOffline(ctx context.Context, user string, seqs []int64) error
	// CountOffline returns how many messages a user holds.
	CountOffline(ctx context.Context, user string) (int, error)
	// ExpireOffline removes every message stored before t and returns how
	// many were removed.
	ExpireOffline(ctx context.Context, before time.Time) (int, error)
}

// LastActivity remembers when each user's last session ended (XEP-0012).
type LastActivity interface {
	// SetLastActivity records that user went offline at t with a status text.
	SetLastActivity(ctx context.Context, user string, t time.Time, status string) error
	// LastActivity returns the last logout time and status; ErrNotFound if
	// the user never logged out.
	LastActivity(ctx context.Context, user string) (time.Time, string, error)
}

// Store is everything a node needs, opened and closed as one.
type Store interface {
	Users
	Rosters
	Offline
	LastActivity
	Push
	Close() error
}
