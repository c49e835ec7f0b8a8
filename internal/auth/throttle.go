package auth

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"bluetick/internal/store"
)

// Throttle limits password guessing per account, whichever addresses the
// guesses come from (the caller limits each address on its own).
//
// The attempts on an account are counted in buckets: one for every address
// the account has never logged in from (strangers), and one per known
// address (a host for IPv4, a /64 for IPv6: AddressPrefix) from which it
// logged in successfully before. After Failures counted attempts in a
// bucket, each further one must wait Backoff, doubling per attempt up to
// BackoffMax; one that comes earlier is refused at once, without a password
// check (Admit returns the time to wait). A bucket is forgotten after
// Window without attempts. So strangers share one slow lane per account,
// and cannot lock out the owner's devices, which log in from known
// addresses, each in its own lane.
//
// An attempt is counted when it is admitted, before its password is
// checked, so parallel guesses cannot slip in between a check and its
// verdict; a success gives the count back (and empties a known address's
// bucket).
//
// Outcomes go to the store in batches (every FlushEvery, one transaction):
// the failures since the last success (shown to the owner and by `bluetick
// user info`), the strangers' streak, and the known addresses. Every
// admitted stranger attempt reads the account's streak from the store, so
// the nodes of a cluster sharing PostgreSQL share the limit (up to what
// each admits before the others' failures are written), and a restart
// forgets nothing.
//
// Accounts that do not exist are throttled the same way (in memory only),
// so the answers do not tell them apart.
type Throttle struct {
	cfg ThrottleConfig
	st  store.Logins
	log *slog.Logger
	now func() time.Time

	Metrics ThrottleMetrics

	mu       sync.Mutex
	buckets  map[bucketKey]*bucket
	accounts map[string]*account     // known addresses, as last read from the store
	pending  []store.LoginEvent      // outcomes not written yet, in order
	since    map[string]*pendingFail // per account: the failures in pending since its last success there
	timer    *time.Timer             // flushes pending; nil when nothing is pending
	closed   bool

	// flushMu orders reading an account's record (plus pending) against
	// writing pending: Flush holds it exclusively from taking pending to
	// the commit.
	flushMu sync.RWMutex
}

// ThrottleConfig parameterises a Throttle. Zero fields other than
// Failures take the defaults.
type ThrottleConfig struct {
	Failures   int // counted attempts per bucket before back-off; 0: no throttle, outcomes still recorded
	Backoff    time.Duration
	BackoffMax time.Duration
	Window     time.Duration
	KeepKnown  int           // known addresses remembered per account (default 10)
	FlushEvery time.Duration // how long outcomes may wait to be written (default 1s)
	KnownTTL   time.Duration // how long the known addresses read from the store are trusted (default 1m)
	MaxEntries int           // bound on buckets and cached accounts each (default 100,000)
}

// ThrottleMetrics counts what the login limits did.
type ThrottleMetrics struct {
	Failures         atomic.Uint64 // failed password checks (counted by the caller)
	ThrottledAccount atomic.Uint64 // attempts refused by the per-account throttle
	ThrottledAddress atomic.Uint64 // attempts refused by the caller's per-address limit
	Unrecorded       atomic.Uint64 // outcomes dropped because too many waited to be written
}

var (
	failuresDesc = prometheus.NewDesc("bluetick_auth_failures_total",
		"Failed SASL password checks (wrong password or no such account).", nil, nil)
	throttledDesc = prometheus.NewDesc("bluetick_auth_throttled_total",
		"Login attempts refused with temporary-auth-failure before any password check, by the limit that refused them (account, address).",
		[]string{"scope"}, nil)
	unrecordedDesc = prometheus.NewDesc("bluetick_auth_unrecorded_total",
		"Login outcomes not written to the store (too many waiting, or a store error).", nil, nil)
)

// Describe implements prometheus.Collector.
func (m *ThrottleMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- failuresDesc
	ch <- throttledDesc
	ch <- unrecordedDesc
}

// Collect implements prometheus.Collector.
func (m *ThrottleMetrics) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(failuresDesc, prometheus.CounterValue, float64(m.Failures.Load()))
	ch <- prometheus.MustNewConstMetric(throttledDesc, prometheus.CounterValue, float64(m.ThrottledAccount.Load()), "account")
	ch <- prometheus.MustNewConstMetric(throttledDesc, prometheus.CounterValue, float64(m.ThrottledAddress.Load()), "address")
	ch <- prometheus.MustNewConstMetric(unrecordedDesc, prometheus.CounterValue, float64(m.Unrecorded.Load()))
}

// maxPending bounds the outcomes waiting to be written.
const maxPending = 100000

// bucketKey names a bucket: prefix "" is the account's strangers.
type bucketKey struct{ user, prefix string }

type bucket struct {
	n      int       // counted attempts in this streak
	last   time.Time // the latest counted attempt
	next   time.Time // none admitted before this
	warned bool      // the back-off was logged
}

type account struct {
	known  []string
	loaded time.Time
}

type pendingFail struct {
	n     int
	last  time.Time
	addr  string
	reset bool // a success is pending too: the stored count is void
}

// NewThrottle returns a throttle recording outcomes in st.
func NewThrottle(cfg ThrottleConfig, st store.Logins, log *slog.Logger) *Throttle {
	if cfg.KeepKnown <= 0 {
		cfg.KeepKnown = 10
	}
	if cfg.FlushEvery <= 0 {
		cfg.FlushEvery = time.Second
	}
	if cfg.KnownTTL <= 0 {
		cfg.KnownTTL = time.Minute
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = 100000
	}
	return &Throttle{
		cfg: cfg, st: st, log: log, now: time.Now,
		buckets:  map[bucketKey]*bucket{},
		accounts: map[string]*account{},
		since:    map[string]*pendingFail{},
	}
}

// AddressPrefix is what an account remembers of an address it logged in
// from: the address itself for IPv4, its /64 for IPv6 (one subscriber's
// network, in which privacy addresses change). "" for no address.
func AddressPrefix(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// Attempt is one admitted login attempt; report its outcome with Failed
// or Succeeded (an attempt that ends otherwise stays counted).
type Attempt struct {
	t      *Throttle
	key    bucketKey
	user   string
	addr   string
	prefix string
	known  bool
}

// Known reports whether the attempt comes from an address the account
// logged in from before.
func (a *Attempt) Known() bool { return a.known }

// Admit decides whether the password of user may be checked now for a
// client at addr. It returns the attempt to report on, or nil and how long
// the client should wait.
func (t *Throttle) Admit(ctx context.Context, user string, addr netip.Addr) (*Attempt, time.Duration) {
	now := t.now()
	a := &Attempt{t: t, user: user, addr: addr.Unmap().String(), prefix: AddressPrefix(addr)}
	if !addr.IsValid() {
		a.addr = ""
	}
	known, ls, fresh := t.knownAddress(ctx, user, a.prefix, now)
	a.known = known
	a.key = bucketKey{user: user}
	if known {
		a.key.prefix = a.prefix
	}
	if t.cfg.Failures <= 0 {
		return a, 0
	}
	if wait := t.wait(a.key, now); wait > 0 {
		return nil, wait
	}
	if !known {
		// The streak as every node has written it.
		if !fresh {
			ls, fresh = t.load(ctx, user, now)
		}
		if fresh {
			t.adopt(a.key, ls, now)
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.bucket(a.key, now)
	if now.Before(b.next) {
		return nil, t.refuse(a.key, b, now)
	}
	b.n++
	b.last = now
	b.next = now.Add(t.delay(b.n))
	return a, 0
}

// wait returns how long the bucket key is in back-off (0: not).
func (t *Throttle) wait(key bucketKey, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.buckets[key]
	if b == nil || !now.Before(b.next) {
		return 0
	}
	return t.refuse(key, b, now)
}

// refuse counts and (once per streak) logs a refusal; t.mu is held.
func (t *Throttle) refuse(key bucketKey, b *bucket, now time.Time) time.Duration {
	t.Metrics.ThrottledAccount.Add(1)
	wait := b.next.Sub(now)
	if !b.warned {
		b.warned = true
		from := "addresses it never logged in from"
		if key.prefix != "" {
			from = key.prefix
		}
		t.log.Warn("login throttle: account in back-off, attempts refused before any password check",
			"user", key.user, "from", from, "attempts", b.n, "retry_after", wait.Round(time.Millisecond))
	}
	return wait
}

// delay is the wait after the n-th counted attempt of a streak.
func (t *Throttle) delay(n int) time.Duration { return t.cfg.Delay(n) }

// Delay is the back-off after the n-th failure of a streak: none before
// Failures, then Backoff doubling per failure up to BackoffMax.
func (c ThrottleConfig) Delay(n int) time.Duration {
	if c.Failures <= 0 || n < c.Failures {
		return 0
	}
	if shift := n - c.Failures; shift < 30 {
		if d := c.Backoff << shift; d < c.BackoffMax {
			return d
		}
	}
	return c.BackoffMax
}

// bucket returns key's bucket, new or restarted after a quiet window;
// t.mu is held.
func (t *Throttle) bucket(key bucketKey, now time.Time) *bucket {
	b := t.buckets[key]
	if b != nil && now.Sub(b.last) > t.cfg.Window && !now.Before(b.next) {
		*b = bucket{}
	}
	if b == nil {
		if len(t.buckets) >= t.cfg.MaxEntries {
			t.sweep(now)
		}
		b = &bucket{}
		t.buckets[key] = b
	}
	return b
}

// sweep drops forgotten buckets and stale accounts and, if that is not
// enough, arbitrary ones, down to 90% of the bound: memory stays bounded
// whatever names are guessed. A real account's strangers' streak is read
// back from the store; a dropped known address's bucket starts again.
func (t *Throttle) sweep(now time.Time) {
	for k, b := range t.buckets {
		if now.Sub(b.last) > t.cfg.Window && !now.Before(b.next) {
			delete(t.buckets, k)
		}
	}
	for k := range t.buckets {
		if len(t.buckets) < t.cfg.MaxEntries*9/10 {
			break
		}
		delete(t.buckets, k)
	}
	for u, a := range t.accounts {
		if now.Sub(a.loaded) > t.cfg.KnownTTL || len(t.accounts) >= t.cfg.MaxEntries*9/10 {
			delete(t.accounts, u)
		}
	}
}

// adopt raises key's bucket to the streak read from the store.
func (t *Throttle) adopt(key bucketKey, ls store.LoginStats, now time.Time) {
	if ls.Streak == 0 || now.Sub(ls.StreakLast) > t.cfg.Window {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.bucket(key, now)
	if ls.Streak <= b.n {
		return
	}
	b.n = ls.Streak
	if ls.StreakLast.After(b.last) {
		b.last = ls.StreakLast
	}
	if next := ls.StreakLast.Add(t.delay(ls.Streak)); next.After(b.next) {
		b.next = next
	}
}

// knownAddress reports whether user logged in from prefix before, from
// the cache or the store; fresh tells whether ls was just read.
func (t *Throttle) knownAddress(ctx context.Context, user, prefix string, now time.Time) (known bool, ls store.LoginStats, fresh bool) {
	if prefix == "" {
		return false, ls, false
	}
	t.mu.Lock()
	a := t.accounts[user]
	if a != nil && now.Sub(a.loaded) <= t.cfg.KnownTTL {
		known = slices.Contains(a.known, prefix)
		t.mu.Unlock()
		return known, ls, false
	}
	t.mu.Unlock()
	ls, fresh = t.load(ctx, user, now)
	return slices.ContainsFunc(ls.Known, func(k store.KnownAddress) bool { return k.Prefix == prefix }), ls, fresh
}

// load reads user's record and caches its known addresses. An account
// that does not exist reads as empty; on a store error, ok is false.
func (t *Throttle) load(ctx context.Context, user string, now time.Time) (ls store.LoginStats, ok bool) {
	ls, err := t.st.LoginStats(ctx, user)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.log.Error("login throttle: reading the account's logins", "user", user, "err", err)
		return store.LoginStats{}, false
	}
	known := make([]string, 0, len(ls.Known))
	for _, k := range ls.Known {
		known = append(known, k.Prefix)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.accounts) >= t.cfg.MaxEntries {
		t.sweep(now)
	}
	if old := t.accounts[user]; old != nil {
		// Keep what this node learnt and has not written yet.
		for _, p := range old.known {
			if !slices.Contains(known, p) {
				known = append(known, p)
			}
		}
	}
	t.accounts[user] = &account{known: known, loaded: now}
	return ls, true
}

// Failed records that the attempt's password was wrong.
func (a *Attempt) Failed() {
	a.t.record(store.LoginEvent{User: a.user, At: a.t.now(), Addr: a.addr, Stranger: !a.known})
}

// Succeeded records a successful login and returns the account's record
// as it was just before (its Failed counts the failures since the previous
// success, written or not). The attempt's count is given back, and its
// address becomes a known one.
func (a *Attempt) Succeeded(ctx context.Context) (store.LoginStats, error) {
	t := a.t
	now := t.now()
	t.mu.Lock()
	if b := t.buckets[a.key]; b != nil {
		if a.known {
			delete(t.buckets, a.key)
		} else if b.n > 0 {
			b.n--
			if b.n < t.cfg.Failures {
				b.next = time.Time{}
			}
		}
	}
	if acc := t.accounts[a.user]; acc != nil && a.prefix != "" && !slices.Contains(acc.known, a.prefix) {
		acc.known = append(acc.known, a.prefix)
	}
	t.mu.Unlock()

	t.flushMu.RLock()
	defer t.flushMu.RUnlock()
	prev, err := t.st.LoginStats(ctx, a.user)
	t.mu.Lock()
	defer t.mu.Unlock()
	if p := t.since[a.user]; p != nil {
		if p.reset {
			prev.Failed = 0
		}
		prev.Failed += p.n
		if p.n > 0 {
			prev.LastFailure, prev.LastFailureAddr = p.last, p.addr
		}
	}
	seen := slices.ContainsFunc(prev.Known, func(k store.KnownAddress) bool { return k.Prefix == a.prefix })
	if err != nil || prev.Failed > 0 || !seen || now.Sub(prev.LastSuccess) > time.Hour || t.since[a.user] != nil {
		t.recordLocked(store.LoginEvent{User: a.user, At: now, Addr: a.addr, Success: true, Prefix: a.prefix})
	}
	return prev, err
}

// record queues an outcome for the store.
func (t *Throttle) record(ev store.LoginEvent) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.recordLocked(ev)
}

func (t *Throttle) recordLocked(ev store.LoginEvent) {
	if len(t.pending) >= maxPending {
		t.Metrics.Unrecorded.Add(1)
		return
	}
	t.pending = append(t.pending, ev)
	p := t.since[ev.User]
	if p == nil {
		p = &pendingFail{}
		t.since[ev.User] = p
	}
	if ev.Success {
		*p = pendingFail{reset: true}
	} else {
		p.n++
		p.last, p.addr = ev.At, ev.Addr
	}
	if t.timer == nil && !t.closed {
		t.timer = time.AfterFunc(t.cfg.FlushEvery, func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			t.Flush(ctx)
		})
	}
}

// Flush writes the outcomes waiting to be written.
func (t *Throttle) Flush(ctx context.Context) error {
	t.flushMu.Lock()
	defer t.flushMu.Unlock()
	t.mu.Lock()
	evs := t.pending
	t.pending = nil
	clear(t.since)
	if t.timer != nil {
		t.timer.Stop()
		t.timer = nil
	}
	t.mu.Unlock()
	if len(evs) == 0 {
		return nil
	}
	err := t.st.RecordLogins(ctx, evs, store.LoginPolicy{StreakWindow: t.cfg.Window, KeepKnown: t.cfg.KeepKnown})
	if err != nil {
		t.Metrics.Unrecorded.Add(uint64(len(evs)))
		t.log.Error("login throttle: recording login outcomes", "events", len(evs), "err", err)
	}
	return err
}

// Close writes what is pending; outcomes reported later are written only
// by another Flush.
func (t *Throttle) Close(ctx context.Context) error {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	return t.Flush(ctx)
}
