// Package cluster joins Bluetick nodes over NATS, with no consensus of our
// own: NATS carries stanzas between nodes, and a JetStream key-value bucket
// holds the session directory (which node holds which resource, with its
// priority and presence).
//
// Why a KV bucket watched by every node: a lookup ("where is bob?") happens
// for every message and every presence broadcast, so it must be a local map
// read, not a network round trip. Each node keeps a replica of the
// directory fed by a KV watch; writes happen only when a session binds,
// changes presence or ends, which is rare next to messages.
//
// Liveness: every node refreshes its key in a second bucket every
// Heartbeat. A node whose heartbeat is older than three intervals is dead:
// its directory entries are ignored at once and purged by the survivors,
// and deliveries to it fall back to the offline store (a request that gets
// no answer is an error the router handles).
package cluster

import (
	"context"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"bluetick/internal/jid"
	"bluetick/internal/router"
	"bluetick/internal/session"
	"bluetick/internal/xmlstream"
)

// Config selects and tunes cluster mode.
type Config struct {
	// NATS is the NATS URL list (comma-separated); empty means single node.
	NATS string
	// Node names this node; it must be unique in the cluster. Empty: a
	// random name is chosen at start.
	Node string
	// Heartbeat is how often the node says it is alive; it is declared dead
	// after three missed heartbeats.
	Heartbeat time.Duration
	// RequestTimeout bounds one node-to-node delivery.
	RequestTimeout time.Duration
	// Gone is told the available sessions of a node found dead, so this
	// node can tell its local users those contacts went offline.
	Gone func(sessions []jid.JID)
	// HandOver gives up a local resumable session for a resumption on
	// another node (c2s implements it); false if this node does not hold
	// it.
	HandOver func(previd, user string, h uint32) (session.Snapshot, bool)
}

const (
	sessionsBucket = "bluetick_sessions"
	nodesBucket    = "bluetick_nodes"
	subjectPrefix  = "bluetick.node."
)

// entry is one session in the directory.
type entry struct {
	Node       string `json:"n"`
	JID        string `json:"j"`
	Priority   int    `json:"p"`
	Available  bool   `json:"a"`
	Interested bool   `json:"i"`
	Carbons    bool   `json:"c,omitempty"`
	Presence   string `json:"x,omitempty"` // last available presence, serialized

	rev uint64 // the entry's revision in the bucket (not serialized)
}

// Node is this server's membership in the cluster. It implements
// router.Directory.
type Node struct {
	id   string
	cfg  Config
	nc   *nats.Conn
	kv   jetstream.KeyValue
	live jetstream.KeyValue
	r    *router.Router
	log  *slog.Logger
	lim  xmlstream.Limits

	mu       sync.RWMutex
	byUser   map[jid.JID]map[string]*entry // bare JID -> directory key -> entry (other nodes only)
	lastBeat map[string]time.Time          // node -> when its heartbeat was last seen

	m nodeMetrics

	ctx    context.Context // ends when the node leaves
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Start connects to NATS, creates the buckets if needed, loads the
// directory and starts serving requests from other nodes for r's sessions.
func Start(ctx context.Context, cfg Config, r *router.Router, log *slog.Logger) (*Node, error) {
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 2 * time.Second
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 3 * time.Second
	}
	if cfg.Node == "" {
		cfg.Node = "node-" + strings.ToLower(randomID())
	}
	if strings.ContainsAny(cfg.Node, ". *>") {
		return nil, fmt.Errorf("cluster.node %q must not contain dots, spaces, * or >", cfg.Node)
	}
	nc, err := nats.Connect(cfg.NATS, nats.Name("bluetick "+cfg.Node), nats.MaxReconnects(-1))
	if err != nil {
		return nil, fmt.Errorf("cluster.nats %q: %v (is nats-server running with JetStream enabled?)", cfg.NATS, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	// A JetStream cluster that is starting too (all machines booting at
	// once) has no meta leader for a few seconds: retry until it does.
	cctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	var kv, live jetstream.KeyValue
	for {
		kv, live, err = buckets(cctx, js, cfg.Heartbeat)
		if err == nil {
			break
		}
		if cctx.Err() != nil {
			nc.Close()
			return nil, fmt.Errorf("cluster: creating the directory buckets: %v (nats-server needs JetStream: -js)", err)
		}
		log.Warn("cluster: JetStream not ready, retrying", "err", err)
		time.Sleep(500 * time.Millisecond)
	}
	n := &Node{
		m:  newMetrics(),
		id: cfg.Node, cfg: cfg, nc: nc, kv: kv, live: live, r: r,
		log:      log.With("node", cfg.Node),
		lim:      xmlstream.Limits{MaxElementBytes: 1 << 20},
		byUser:   map[jid.JID]map[string]*entry{},
		lastBeat: map[string]time.Time{},
	}
	if _, err := nc.Subscribe(subjectPrefix+n.id, n.serve); err != nil {
		nc.Close()
		return nil, err
	}
	if _, err := nc.Subscribe(resumeSubject, n.serveResume); err != nil {
		nc.Close()
		return nil, err
	}
	if _, err := nc.Subscribe(resumeSubject+"."+n.id, n.serveResumeHere); err != nil {
		nc.Close()
		return nil, err
	}
	// The first heartbeat, retried like the buckets: a bucket just created
	// on a JetStream cluster that is still starting may not have elected
	// its leader yet ("no response from stream").
	for {
		bctx, bcancel := context.WithTimeout(cctx, 5*time.Second)
		err = n.beat(bctx)
		bcancel()
		if err == nil {
			break
		}
		if cctx.Err() != nil {
			nc.Close()
			return nil, fmt.Errorf("cluster: first heartbeat: %v", err)
		}
		log.Warn("cluster: JetStream not ready for the first heartbeat, retrying", "err", err)
		time.Sleep(500 * time.Millisecond)
	}
	rctx, rcancel := context.WithCancel(context.Background())
	n.ctx, n.cancel = rctx, rcancel
	ready := make(chan struct{}, 2)
	if err := n.watch(rctx, live, n.applyBeat, ready); err != nil {
		n.Close()
		return nil, err
	}
	if err := n.watch(rctx, kv, n.applyEntry, ready); err != nil {
		n.Close()
		return nil, err
	}
	for i := 0; i < 2; i++ {
		select {
		case <-ready:
		case <-cctx.Done():
			n.Close()
			return nil, errors.New("cluster: timed out loading the directory")
		}
	}
	n.wg.Add(1)
	go n.heartbeat(rctx)
	r.SetDirectory(n)
	n.log.Info("joined cluster", "nats", cfg.NATS)
	return n, nil
}

// Connected reports whether the NATS connection is up.
func (n *Node) Connected() bool { return n.nc.IsConnected() }

// buckets creates (or opens) the directory and heartbeat buckets,
// replicated on three NATS servers when the NATS cluster has them (so the
// directory survives the loss of one), else on one.
func buckets(ctx context.Context, js jetstream.JetStream, heartbeat time.Duration) (kv, live jetstream.KeyValue, err error) {
	for _, replicas := range []int{3, 1} {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		kv, err = js.CreateOrUpdateKeyValue(actx, jetstream.KeyValueConfig{
			Bucket: sessionsBucket, History: 1, Storage: jetstream.MemoryStorage, Replicas: replicas,
			Description: "Bluetick session directory: node -> bound resources",
		})
		if err == nil {
			live, err = js.CreateOrUpdateKeyValue(actx, jetstream.KeyValueConfig{
				Bucket: nodesBucket, History: 1, Storage: jetstream.MemoryStorage, Replicas: replicas,
				TTL: 10 * heartbeat, Description: "Bluetick node heartbeats",
			})
		}
		cancel()
		if err == nil || !replicaProblem(err) {
			return kv, live, err
		}
	}
	return kv, live, err
}

// replicaProblem tells whether err means the NATS deployment cannot hold
// three replicas (a standalone server or a smaller cluster).
func replicaProblem(err error) bool {
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "replicas") || strings.Contains(msg, "insufficient resources") || strings.Contains(msg, "no suitable peers")
}

// ID is this node's name.
func (n *Node) ID() string { return n.id }

// Close withdraws this node's sessions and leaves the cluster.
func (n *Node) Close() {
	if n.cancel != nil {
		n.cancel()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	n.purgeNode(ctx, n.id)
	n.live.Delete(ctx, n.id)
	n.wg.Wait()
	n.nc.Drain()
}

func (n *Node) beat(ctx context.Context) error {
	_, err := n.live.Put(ctx, n.id, []byte(time.Now().UTC().Format(time.RFC3339Nano)))
	return err
}

// heartbeat refreshes this node's liveness and purges dead nodes' entries.
func (n *Node) heartbeat(ctx context.Context) {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := n.beat(ctx); err != nil && ctx.Err() == nil {
			n.log.Warn("cluster heartbeat failed", "err", err)
		}
		for _, dead := range n.deadNodes() {
			n.log.Warn("cluster node is dead; purging its sessions", "dead", dead)
			if gone := n.availableOn(dead); len(gone) > 0 && n.cfg.Gone != nil {
				n.cfg.Gone(gone)
			}
			n.purgeNode(ctx, dead)
			n.mu.Lock()
			delete(n.lastBeat, dead)
			n.mu.Unlock()
		}
	}
}

func (n *Node) alive(node string) bool {
	t, ok := n.lastBeat[node]
	return ok && time.Since(t) < 3*n.cfg.Heartbeat
}

// availableOn lists the available sessions the replica holds for node,
// except those a newer login on another node replaced.
func (n *Node) availableOn(node string) []jid.JID {
	n.mu.RLock()
	defer n.mu.RUnlock()
	var out []jid.JID
	for _, m := range n.byUser {
		for _, en := range m {
			if en.Node == node && en.Available && !n.shadowed(m, en) {
				if j, err := jid.Parse(en.JID); err == nil {
					out = append(out, j)
				}
			}
		}
	}
	return out
}

func (n *Node) deadNodes() []string {
	n.mu.RLock()
	defer n.mu.RUnlock()
	var out []string
	for node := range n.lastBeat {
		if node != n.id && !n.alive(node) {
			out = append(out, node)
		}
	}
	return out
}

// purgeNode deletes every directory entry of a node.
func (n *Node) purgeNode(ctx context.Context, node string) {
	keys, err := n.kv.ListKeys(ctx, jetstream.MetaOnly())
	if err != nil {
		return
	}
	prefix := node + "."
	for k := range keys.Keys() {
		if strings.HasPrefix(k, prefix) {
			n.kv.Delete(ctx, k)
		}
	}
}

// watch applies every update of a bucket; ready is signalled once the
// initial values are loaded.
func (n *Node) watch(ctx context.Context, kv jetstream.KeyValue, apply func(jetstream.KeyValueEntry), ready chan<- struct{}) error {
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return err
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer w.Stop()
		signalled := false
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e == nil {
					if !signalled {
						signalled = true
						ready <- struct{}{}
					}
					continue
				}
				apply(e)
			}
		}
	}()
	return nil
}

func (n *Node) applyBeat(e jetstream.KeyValueEntry) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if e.Operation() != jetstream.KeyValuePut {
		delete(n.lastBeat, e.Key())
		return
	}
	// The entry's time is the NATS server's clock: on the initial load a
	// node that died a while ago must not look alive. Clocks of the NATS
	// servers and this node are assumed NTP-synchronized.
	t := e.Created()
	if now := time.Now(); t.After(now) {
		t = now
	}
	n.lastBeat[e.Key()] = t
}

func (n *Node) applyEntry(e jetstream.KeyValueEntry) {
	key := e.Key()
	node, _, ok := strings.Cut(key, ".")
	if !ok || node == n.id {
		return // our own sessions are in the router already
	}
	bare, err := bareOfKey(key)
	if err != nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if e.Operation() != jetstream.KeyValuePut {
		if m := n.byUser[bare]; m != nil {
			delete(m, key)
			if len(m) == 0 {
				delete(n.byUser, bare)
			}
		}
		return
	}
	var en entry
	if json.Unmarshal(e.Value(), &en) != nil {
		return
	}
	en.rev = e.Revision()
	m := n.byUser[bare]
	if m == nil {
		m = map[string]*entry{}
		n.byUser[bare] = m
	}
	m[key] = &en
}

// key is node.<base32 of the full JID>: KV keys allow only [-/_=.a-zA-Z0-9].
var keyEnc = base32.StdEncoding.WithPadding(base32.NoPadding)

func keyOf(node string, full jid.JID) string {
	return node + "." + keyEnc.EncodeToString([]byte(full.String()))
}

func bareOfKey(key string) (jid.JID, error) {
	_, enc, _ := strings.Cut(key, ".")
	b, err := keyEnc.DecodeString(enc)
	if err != nil {
		return jid.JID{}, err
	}
	j, err := jid.Parse(string(b))
	if err != nil {
		return jid.JID{}, err
	}
	return j.Bare(), nil
}

// Publish implements router.Directory.
func (n *Node) Publish(s router.Session) {
	en := entry{Node: n.id, JID: s.JID().String(), Priority: s.Priority(), Available: s.Available(), Interested: s.Interested(), Carbons: s.Carbons()}
	if p := s.Presence(); p != nil {
		en.Presence = string(xmlstream.Append(nil, p, ""))
	}
	b, _ := json.Marshal(en)
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.RequestTimeout)
	defer cancel()
	if _, err := n.kv.Put(ctx, keyOf(n.id, s.JID()), b); err != nil {
		n.log.Error("cluster: publishing session", "jid", en.JID, "err", err)
	}
}

// Withdraw implements router.Directory.
func (n *Node) Withdraw(s router.Session) {
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.RequestTimeout)
	defer cancel()
	if err := n.kv.Delete(ctx, keyOf(n.id, s.JID())); err != nil {
		n.log.Error("cluster: withdrawing session", "jid", s.JID().String(), "err", err)
	}
}

// Remote implements router.Directory: the user's sessions on live nodes
// other than this one.
//
// One full JID may have entries on two nodes for a moment: a client whose
// node died logs in again elsewhere with the same resource before the
// dead node's entry is gone (the binding node removes it, see Kick). The
// newer login wins: of two entries for one full JID, only the later
// written (higher revision) counts.
func (n *Node) Remote(bare jid.JID) []router.Session {
	n.mu.RLock()
	defer n.mu.RUnlock()
	m := n.byUser[bare]
	if len(m) == 0 {
		return nil
	}
	out := make([]router.Session, 0, len(m))
	for _, en := range m {
		if !n.alive(en.Node) || n.shadowed(m, en) {
			continue
		}
		full, err := jid.Parse(en.JID)
		if err != nil {
			continue
		}
		rs := &remoteSession{n: n, node: en.Node, rev: en.rev, jid: full, prio: en.Priority, avail: en.Available, interested: en.Interested, carbons: en.Carbons}
		if en.Presence != "" {
			if p, err := xmlstream.Parse([]byte(en.Presence), n.lim); err == nil {
				rs.presence = p
			}
		}
		out = append(out, rs)
	}
	return out
}

// shadowed reports whether another live node has a newer entry for the
// same full JID as en (n.mu held).
func (n *Node) shadowed(m map[string]*entry, en *entry) bool {
	for _, o := range m {
		if o != en && o.JID == en.JID && o.rev > en.rev && n.alive(o.Node) {
			return true
		}
	}
	return false
}

// forget removes a session of another node from the directory, if its
// entry is still the revision rev: that node did not confirm it ended the
// session when asked to (it is dead, hung or no longer has it), and a
// newer login replaces it. Every node drops it from its replica at once
// instead of waiting until the node is declared dead — and then does not
// tell contacts that the (replaced) resource went offline.
func (n *Node) forget(node string, full jid.JID, rev uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.RequestTimeout)
	defer cancel()
	var opts []jetstream.KVDeleteOpt
	if rev > 0 {
		opts = append(opts, jetstream.LastRevision(rev))
	}
	if err := n.kv.Delete(ctx, keyOf(node, full), opts...); err != nil {
		n.log.Debug("cluster: removing a replaced session's entry", "node_of_session", node, "jid", full.String(), "err", err)
		return
	}
	n.log.Info("cluster: removed the entry of a session replaced by a newer login", "node_of_session", node, "jid", full.String())
}

func randomID() string {
	var b [5]byte
	if _, err := randRead(b[:]); err != nil {
		return fmt.Sprint(time.Now().UnixNano())
	}
	return keyEnc.EncodeToString(b[:])
}
