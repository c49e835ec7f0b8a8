// Package privacy holds the user's privacy controls: the XEP-0191 blocking
// command (a blocklist that drops a contact's stanzas both ways) and
// Bluetick's last-seen visibility setting (urn:bluetick:lastseen:0, see
// docs/privacy.md), which governs XEP-0012 last activity answers.
//
// Everything is in the store, so it holds on every node of a cluster:
// the node that routes a stanza checks both the sender's and the
// recipient's blocklist before routing, since it can read both.
package privacy

import (
	"context"
	"sync"

	"bluetick/internal/jid"
	"bluetick/internal/stanza"
	"bluetick/internal/store"
	"bluetick/internal/xmlstream"
)

// Namespaces of XEP-0191.
const (
	NSBlocking = "urn:xmpp:blocking"
	NSErrors   = "urn:xmpp:blocking:errors"
)

// MaxItems bounds one block or unblock command and a blocklist.
const MaxItems = 1000

// ErrBlocked is what a user gets back for a stanza to a JID it blocked
// (XEP-0191 §3.6): not-acceptable with <blocked/>.
var ErrBlocked = &stanza.Error{Type: "cancel", Condition: "not-acceptable",
	App: xmlstream.New(NSErrors, "blocked")}

// ParseItems reads the <item jid=.../> children of a block or unblock
// element, normalised; bad-request for an item without a JID,
// jid-malformed for an invalid one. Duplicates are kept once.
func ParseItems(el *xmlstream.Element) ([]jid.JID, error) {
	var out []jid.JID
	seen := map[jid.JID]bool{}
	for _, it := range el.Elements() {
		if it.Space != NSBlocking || it.Name != "item" {
			continue
		}
		s := it.Attr("jid")
		if s == "" {
			return nil, stanza.NewError("bad-request", "an item needs a jid")
		}
		j, err := jid.Parse(s)
		if err != nil {
			return nil, stanza.NewError("jid-malformed", "not a valid JID: "+s)
		}
		if !seen[j] {
			seen[j] = true
			out = append(out, j)
		}
		if len(out) > MaxItems {
			return nil, stanza.NewError("policy-violation", "too many items")
		}
	}
	return out, nil
}

// Forms returns the blocklist entries that match j, in the order of
// XEP-0191 §5 (XEP-0016 matching): user@domain/resource, user@domain,
// domain/resource, domain.
func Forms(j jid.JID) []string {
	out := make([]string, 0, 4)
	if j.Local() != "" {
		if j.Resource() != "" {
			out = append(out, j.String())
		}
		out = append(out, j.BareString())
	}
	if j.Resource() != "" {
		out = append(out, j.Domain()+"/"+j.Resource())
	}
	return append(out, j.Domain())
}

// Blocker answers "did user block this JID?" from the store. On a single
// node it caches each user's answer set (all writes go through this
// process, which invalidates it); in a cluster, where another node may
// change the list, it reads the store every time.
type Blocker struct {
	st    store.Blocking
	cache bool

	mu    sync.Mutex
	lists map[string]Set // user -> blocked JIDs
	gen   uint64         // bumped by every change, so a read that raced one is not cached
}

// maxCached bounds the cache: past it, it is dropped and refilled.
const maxCached = 100000

// NewBlocker returns a Blocker; cache is safe only when no other process
// writes the blocklists (single node).
func NewBlocker(st store.Blocking, cache bool) *Blocker {
	return &Blocker{st: st, cache: cache, lists: map[string]Set{}}
}

// Set is one user's blocklist, for checking many JIDs against it.
// It must not be modified (it may be the cached one).
type Set map[string]bool

// Blocks reports whether the list covers j.
func (s Set) Blocks(j jid.JID) bool {
	if len(s) == 0 {
		return false
	}
	for _, f := range Forms(j) {
		if s[f] {
			return true
		}
	}
	return false
}

// Blocks reports whether user (a local account's localpart) blocks j.
func (b *Blocker) Blocks(ctx context.Context, user string, j jid.JID) (bool, error) {
	if !b.cache {
		return b.st.BlockedAny(ctx, user, Forms(j))
	}
	set, err := b.Set(ctx, user)
	return set.Blocks(j), err
}

// Set returns the user's whole blocklist: one store read (none when
// cached) for checking many JIDs.
func (b *Blocker) Set(ctx context.Context, user string) (Set, error) {
	if !b.cache {
		l, err := b.st.Blocklist(ctx, user)
		return setOf(l), err
	}
	b.mu.Lock()
	set, ok := b.lists[user]
	gen := b.gen
	b.mu.Unlock()
	if !ok {
		l, err := b.st.Blocklist(ctx, user)
		if err != nil {
			return nil, err
		}
		set = setOf(l)
		b.mu.Lock()
		if len(b.lists) >= maxCached {
			clear(b.lists)
		}
		if b.gen == gen {
			b.lists[user] = set
		}
		b.mu.Unlock()
	}
	return set, nil
}

// setOf makes the Set of a blocklist. An empty list — nearly every
// user's — is the nil Set: the cache then holds no map per user.
func setOf(l []string) Set {
	if len(l) == 0 {
		return nil
	}
	set := make(Set, len(l))
	for _, s := range l {
		set[s] = true
	}
	return set
}

// List returns the user's blocklist.
func (b *Blocker) List(ctx context.Context, user string) ([]string, error) {
	return b.st.Blocklist(ctx, user)
}

// Block adds JIDs to the user's blocklist.
func (b *Blocker) Block(ctx context.Context, user string, jids []jid.JID) error {
	defer b.forget(user)
	l, err := b.st.Blocklist(ctx, user)
	if err != nil {
		return err
	}
	if len(l)+len(jids) > MaxItems {
		return stanza.NewError("resource-constraint", "the blocklist is full")
	}
	return b.st.Block(ctx, user, strs(jids))
}

// Unblock removes JIDs from the user's blocklist; none removes all.
func (b *Blocker) Unblock(ctx context.Context, user string, jids []jid.JID) error {
	defer b.forget(user)
	return b.st.Unblock(ctx, user, strs(jids))
}

func (b *Blocker) forget(user string) {
	b.mu.Lock()
	delete(b.lists, user)
	b.gen++
	b.mu.Unlock()
}

func strs(jids []jid.JID) []string {
	out := make([]string, len(jids))
	for i, j := range jids {
		out[i] = j.String()
	}
	return out
}

// Matches reports whether a blocklist entry (any of the four forms)
// covers j.
func Matches(entry string, j jid.JID) bool {
	for _, f := range Forms(j) {
		if f == entry {
			return true
		}
	}
	return false
}
