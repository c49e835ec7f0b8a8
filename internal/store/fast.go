package store

import (
	"context"
	"errors"
	"time"
)

// ErrReplay is returned by UseFastToken when the <fast count="..."/> it is
// given is not above the highest count already processed for the token
// (XEP-0484's replay protection).
var ErrReplay = errors.New("store: count already used")

// FastToken is one XEP-0484 (FAST) login token of an account, issued to
// one client installation (the SASL2 user-agent id) for one HT-*
// mechanism. The store never holds the token itself, only Hash (package
// fast says what it is and why). A token is live until it is revoked,
// superseded by a newer token of the same client, or expires; revoked
// tokens are kept, so the holder can be told why its login fails, until
// ExpireFastTokens removes them.
type FastToken struct {
	User      string
	AgentID   string // the client's SASL2 <user-agent id=''/>
	Hash      []byte // unique per user; identifies the token
	Mechanism string // the one HT-* mechanism it is valid for
	Software  string // the client's <user-agent/> <software/>, informational
	Device    string // the client's <user-agent/> <device/>, informational
	Created   time.Time
	Expires   time.Time
	LastUsed  time.Time // last successful login with it; zero: never used
	// Count is the highest <fast count="..."/> processed for the token (0:
	// none yet).
	Count        int64
	Revoked      time.Time // zero: not revoked
	RevokeReason string    // why, when Revoked is set (package fast's reason names)
}

// FastUse is one successful login with a token, for UseFastToken.
type FastUse struct {
	User string
	Hash []byte
	At   time.Time
	// Count is the login's <fast count="..."/>; 0 when the client sent none.
	Count int64
	// Invalidate removes the token (and every other live token of its
	// client) instead of keeping it: <fast invalidate='true'/>.
	Invalidate bool
}

// FastTokens holds the FAST tokens of accounts. All of an account's
// tokens go with it (DeleteUser).
type FastTokens interface {
	// PutFastToken stores a new token t, in one transaction with what
	// XEP-0484 asks of a new token: the same client's (User, AgentID)
	// live tokens that were never used are removed (a newer token
	// supersedes them; the used one stays valid until the new one is
	// used, see UseFastToken). Then, if maxAgents > 0 and the account's
	// live, unexpired tokens (as of t.Created) belong to more than
	// maxAgents clients, the tokens of the clients active least recently
	// (latest Created or LastUsed) are revoked with reason "evicted";
	// t's client is never evicted. Of the account's revoked tokens, only
	// the 2*maxAgents most recently revoked are kept. ErrNotFound if the
	// account does not exist; ErrExists if it already has a token with
	// t.Hash.
	PutFastToken(ctx context.Context, t FastToken, maxAgents int) error
	// FastTokens returns all of user's tokens, live, expired and revoked,
	// ordered by Created then Hash; none for an unknown account.
	FastTokens(ctx context.Context, user string) ([]FastToken, error)
	// UseFastToken records a successful login with the live token
	// (u.User, u.Hash), atomically with its replay check: if u.Count > 0
	// it must be above the token's Count, which it then becomes (else
	// ErrReplay, and nothing changes). LastUsed becomes u.At. The same
	// client's other live tokens that expire no later than this one are
	// removed (XEP-0484: using a token invalidates the client's older
	// ones). With u.Invalidate, the token and all other live tokens of
	// its client are removed instead. ErrNotFound if there is no such
	// token or it was revoked.
	UseFastToken(ctx context.Context, u FastUse) error
	// RevokeFastTokens marks user's live tokens revoked at `at` with
	// reason: those of the client agentID, or all if agentID is "". It
	// returns how many it revoked (0 for an unknown account).
	RevokeFastTokens(ctx context.Context, user, agentID string, at time.Time, reason string) (int, error)
	// ExpireFastTokens removes every token, revoked or not, whose Expires
	// is before `before`, and returns how many it removed.
	ExpireFastTokens(ctx context.Context, before time.Time) (int, error)
}
