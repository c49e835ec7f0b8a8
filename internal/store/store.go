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
	// RosterCounts returns how many items a user has (InRoster or not)
	// and how many of them are PendingOut, for the roster limits; zeros
	// for an unknown account.
	RosterCounts(ctx context.Context, user string) (items, pendingOut int, err error)
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
	// ApplyOffline runs a batch of inserts and deletes, in order, in one
	// transaction: one commit (one fsync) for all of them. An insert's
	// refusal (ErrNotFound, ErrQuota) is recorded in its Err and does not
	// fail the batch; a returned error means nothing was applied.
	ApplyOffline(ctx context.Context, ws []*OfflineWrite) error
}

// OfflineWrite is one write of an ApplyOffline batch: an insert of Msg for
// User (with Quota as StoreOffline), or, with Msg nil, a delete of Seqs.
type OfflineWrite struct {
	User  string
	Msg   *OfflineMessage
	Quota int
	Seqs  []int64
	// Set by ApplyOffline for an insert: the new row's Seq, or why the
	// insert was refused.
	Seq int64
	Err error
}

// LastActivity remembers when each user's last session ended (XEP-0012).
type LastActivity interface {
	// SetLastActivity records that user went offline at t with a status text.
	SetLastActivity(ctx context.Context, user string, t time.Time, status string) error
	// LastActivity returns the last logout time and status; ErrNotFound if
	// the user never logged out.
	LastActivity(ctx context.Context, user string) (time.Time, string, error)
}

// ArchivedMessage is one message of a user's archive (XEP-0313).
type ArchivedMessage struct {
	// ID is the archive UID, which is also the XEP-0359 stanza-id the
	// user's clients saw on the message; unique per user.
	ID string
	// With is the other party's JID as on the stanza (full or bare); the
	// store also keeps its bare form for bare 'with' filters.
	With string
	// Stored is when the server archived it. A store never lets it go
	// backwards within one archive (it is raised to the latest so far),
	// so archive order, (Stored, insertion), is also time order.
	Stored time.Time
	Data   []byte // the serialized stanza, exactly as archived
}

// ArchiveQuery selects a page of an archive. The zero value of a field
// means no restriction; results are ordered by (Stored, insertion).
type ArchiveQuery struct {
	With       string    // a bare JID matches every resource; a full JID only itself
	Start, End time.Time // inclusive time bounds
	// After and Before are exclusive bounds by archive ID; every ID must
	// exist in the archive, else ErrNotFound. Several IDs: the tightest wins.
	After, Before []string
	IDs           []string // only these messages; each must exist, else ErrNotFound
	Max           int      // most messages returned; <= 0 returns none (Complete still tells if any match)
	FromEnd       bool     // the last Max matches instead of the first (RSM <before/>)
}

// ArchivePage is the answer to an ArchiveQuery.
type ArchivePage struct {
	Messages []ArchivedMessage // in archive order, also when FromEnd
	// Complete: nothing else matches beyond this page in the direction of
	// paging (after the last one, or before the first one when FromEnd).
	Complete bool
}

// ArchivePrefs are a user's archiving preferences (XEP-0441, the prefs of
// urn:xmpp:mam:2): Default is "always", "never" or "roster"; Always and
// Never list bare JIDs that override it.
type ArchivePrefs struct {
	Default       string
	Always, Never []string
}

// Archive is the server-side message history of users (XEP-0313).
type Archive interface {
	// AppendArchive stores messages, each in its user's archive, in one
	// durable transaction (a 1:1 message goes to the sender's and the
	// recipient's archives at once). ErrNotFound if a user does not
	// exist (nothing is stored then); ErrExists if an ID is taken.
	AppendArchive(ctx context.Context, entries []ArchiveEntry) error
	// QueryArchive returns a page of user's archive.
	QueryArchive(ctx context.Context, user string, q ArchiveQuery) (ArchivePage, error)
	// ExpireArchive removes every message stored before t, in all
	// archives, and returns how many were removed.
	ExpireArchive(ctx context.Context, before time.Time) (int, error)
	// ArchivePrefs returns a user's preferences; ErrNotFound if never set.
	ArchivePrefs(ctx context.Context, user string) (ArchivePrefs, error)
	// SetArchivePrefs replaces them; ErrNotFound for an absent account.
	SetArchivePrefs(ctx context.Context, user string, p ArchivePrefs) error
}

// ArchiveEntry is one message to append to one user's archive.
type ArchiveEntry struct {
	User string
	ArchivedMessage
}

// Blocking holds each user's XEP-0191 blocklist: JIDs as strings in any
// of the four forms (user@domain/resource, user@domain, domain/resource,
// domain).
type Blocking interface {
	// Blocklist returns the user's blocked JIDs in byte order.
	Blocklist(ctx context.Context, user string) ([]string, error)
	// Block adds JIDs (already blocked ones are kept once); ErrNotFound
	// for an absent account.
	Block(ctx context.Context, user string, jids []string) error
	// Unblock removes JIDs; an empty list removes all.
	Unblock(ctx context.Context, user string, jids []string) error
	// BlockedAny reports whether any of jids is on the user's blocklist
	// (the caller passes every form that matches one address).
	BlockedAny(ctx context.Context, user string, jids []string) (bool, error)
}

// Privacy holds per-user privacy settings.
type Privacy interface {
	// LastSeenVisibility returns who may see the user's last activity
	// ("everyone", "contacts" or "nobody"); ErrNotFound if never set.
	LastSeenVisibility(ctx context.Context, user string) (string, error)
	// SetLastSeenVisibility sets it; ErrNotFound for an absent account.
	SetLastSeenVisibility(ctx context.Context, user, v string) error
}

// Store is everything a node needs, opened and closed as one.
type Store interface {
	Users
	Rosters
	Offline
	LastActivity
	Archive  // mam branch
	Blocking // mam branch
	Privacy  // mam branch
	PEP
	Rooms
	Push
	Logins
	FastTokens // XEP-0484 login tokens (fast.go)
	UserAgents // XEP-0388 user agents
	Disabling  // disabled accounts (disabled.go)
	Close() error
}

// PEPNode is one node of a user's personal eventing service (XEP-0163).
// Config is the node configuration as JSON, owned by package pep: new
// options need no schema change, and nothing but pep reads it.
type PEPNode struct {
	Node   string
	Config []byte
}

// PEPItem is one published item. Payload is the serialized payload element
// (the one child of <item/>), delivered unchanged.
type PEPItem struct {
	ID        string
	Publisher string // full JID of the publishing resource
	Published time.Time
	Payload   []byte
}

// PEP holds personal eventing nodes and their items, private XML
// (XEP-0049) and vcard-temp (XEP-0054): the per-account data of the
// profile and end-to-end encryption features. Writes for an absent account
// return ErrNotFound; reads for one find nothing.
type PEP interface {
	// CreatePEPNode adds a node; ErrExists if the user has it already.
	CreatePEPNode(ctx context.Context, user string, n PEPNode) error
	// PEPNode returns one node; ErrNotFound if there is none.
	PEPNode(ctx context.Context, user, node string) (PEPNode, error)
	// PEPNodes returns all nodes of a user, sorted by name.
	PEPNodes(ctx context.Context, user string) ([]PEPNode, error)
	// SetPEPNodeConfig replaces a node's configuration and keeps only its
	// maxItems newest items (maxItems <= 0: all); ErrNotFound if absent.
	SetPEPNodeConfig(ctx context.Context, user, node string, config []byte, maxItems int) error
	// DeletePEPNode removes a node and its items; ErrNotFound if absent.
	DeletePEPNode(ctx context.Context, user, node string) error
	// PublishPEPItem stores an item as the newest of the node, replacing
	// an item with the same ID, then keeps only the maxItems newest
	// (maxItems <= 0: all); ErrNotFound if the node does not exist.
	PublishPEPItem(ctx context.Context, user, node string, it PEPItem, maxItems int) error
	// PEPItems returns items of a node, oldest first: those with the given
	// IDs if ids is not empty, else the max newest (max <= 0: all).
	// ErrNotFound if the node does not exist.
	PEPItems(ctx context.Context, user, node string, ids []string, max int) ([]PEPItem, error)
	// RetractPEPItem removes one item; ErrNotFound if the node or the item
	// does not exist.
	RetractPEPItem(ctx context.Context, user, node, id string) error
	// PurgePEPItems removes every item of a node; ErrNotFound if absent.
	PurgePEPItems(ctx context.Context, user, node string) error

	// PrivateXML returns the element stored under namespace ns
	// (XEP-0049); ErrNotFound if none.
	PrivateXML(ctx context.Context, user, ns string) ([]byte, error)
	// SetPrivateXML stores (replaces) the element for ns.
	SetPrivateXML(ctx context.Context, user, ns string, data []byte) error
	// VCard returns the user's vcard-temp element; ErrNotFound if none.
	VCard(ctx context.Context, user string) ([]byte, error)
	// SetVCard stores (replaces) the user's vcard-temp element.
	SetVCard(ctx context.Context, user string, data []byte) error

	// CapsInfo returns the disco#info result cached for a verified
	// XEP-0115 hash (key is "algo ver"); ErrNotFound if unknown. Shared by
	// all nodes of a cluster, so one node's verification serves all.
	CapsInfo(ctx context.Context, key string) ([]byte, error)
	// PutCapsInfo caches a verified disco#info result.
	PutCapsInfo(ctx context.Context, key string, info []byte) error
}

// Room is a persistent group chat (XEP-0045 room) of the MUC service. The
// store keeps the configuration as an opaque document owned by package
// muc (JSON), so adding a room option needs no schema change.
type Room struct {
	JID         string // bare room JID, e.g. "friends@groups.example.com"
	Config      []byte // room configuration, encoded by package muc
	Subject     string
	SubjectFrom string // nick (or JID) that set the subject
	Created     time.Time
}

// Affiliation is a user's standing in a room (XEP-0045 §5.2): "owner",
// "admin", "member" or "outcast". Nick is the member's reserved nickname
// (may be empty).
type Affiliation struct {
	JID         string // bare JID of the user
	Affiliation string
	Nick        string
	Reason      string
}

// RoomMessage is one message of a room's archive (XEP-0313 on the room).
// Data is the serialized message as the room sent it, with its stanza-id.
type RoomMessage struct {
	Seq      int64  // assigned by the store, increasing per store
	StanzaID string // XEP-0359 id stamped by the room; unique per room
	Sender   string // bare JID of the occupant who sent it (the MAM 'with' filter)
	Nick     string
	Stored   time.Time
	Data     []byte
}

// RoomQuery selects a page of a room archive (XEP-0313 filters and
// XEP-0059 paging). Start and End bound Stored (inclusive, zero = open);
// With filters on Sender. After and Before are stanza ids (ErrNotFound when
// not in the archive); Last asks for the last page (<before/> empty). Max
// bounds the page (0 = no limit).
type RoomQuery struct {
	With       string
	Start, End time.Time
	After      string
	Before     string
	Last       bool
	Max        int
}

// RoomInvite is an invite link token (see docs/groups.md): whoever joins
// the room with it becomes a member.
type RoomInvite struct {
	Token   string
	Room    string // bare room JID
	Creator string // bare JID of the admin who made it
	Created time.Time
}

// Rooms holds the MUC service's persistent rooms, their affiliations,
// archive and invite tokens. Rooms are independent of accounts: deleting an
// account leaves its affiliations (a re-created account is not the same
// person, but rooms are managed by their admins, as in XEP-0045).
type Rooms interface {
	// CreateRoom adds a room; ErrExists if the JID is taken.
	CreateRoom(ctx context.Context, r Room) error
	// UpdateRoom replaces a room's config and subject; ErrNotFound if absent.
	UpdateRoom(ctx context.Context, r Room) error
	// Room returns one room; ErrNotFound if absent.
	Room(ctx context.Context, jid string) (Room, error)
	// ListRooms returns every room, sorted by JID.
	ListRooms(ctx context.Context) ([]Room, error)
	// DeleteRoom removes a room with its affiliations, archive and
	// invites; ErrNotFound if absent.
	DeleteRoom(ctx context.Context, jid string) error

	// SetAffiliation sets or replaces a user's affiliation; affiliation
	// "none" removes it. ErrNotFound if the room does not exist.
	SetAffiliation(ctx context.Context, room string, a Affiliation) error
	// Affiliations returns every affiliation of a room, sorted by JID.
	Affiliations(ctx context.Context, room string) ([]Affiliation, error)
	// RoomsOf returns the JIDs of the rooms where user (a bare JID) is
	// owner, admin or member, sorted: the user's list of groups.
	RoomsOf(ctx context.Context, user string) ([]string, error)

	// ArchiveRoomMessage appends a message to the room's archive and
	// returns its Seq; ErrNotFound if the room does not exist.
	ArchiveRoomMessage(ctx context.Context, room string, m RoomMessage) (int64, error)
	// RoomMessages returns one page of the archive, oldest first, and
	// whether more messages match beyond the page in the paging direction
	// (after the page when paging forward, before it when paging back).
	RoomMessages(ctx context.Context, room string, q RoomQuery) ([]RoomMessage, bool, error)
	// ExpireRoomMessages removes archived messages stored before t from
	// every room and returns how many were removed.
	ExpireRoomMessages(ctx context.Context, before time.Time) (int, error)

	// PutRoomInvite stores an invite token; ErrExists if the token is
	// taken, ErrNotFound if the room does not exist.
	PutRoomInvite(ctx context.Context, inv RoomInvite) error
	// RoomInvite returns the invite of a token; ErrNotFound if unknown.
	RoomInvite(ctx context.Context, token string) (RoomInvite, error)
	// RoomInvites lists a room's tokens, oldest first.
	RoomInvites(ctx context.Context, room string) ([]RoomInvite, error)
	// DeleteRoomInvite revokes a token of a room; ErrNotFound if the room
	// has no such token.
	DeleteRoomInvite(ctx context.Context, room, token string) error

	// MUCSecret returns the service's random secret (for XEP-0421
	// occupant ids), creating it on first use; every node of a cluster
	// gets the same one.
	MUCSecret(ctx context.Context) ([]byte, error)
}
