package pep

import (
	"cmp"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"hash"
	"slices"
	"strings"
	"sync"
	"time"

	"bluetick/internal/jid"
	"bluetick/internal/store"
	"bluetick/internal/xmlstream"
)

// XEP-0115 entity capabilities: a client's presence carries
// <c hash='sha-1' node='…' ver='…'/>, ver being the hash of its disco#info.
// The service asks a client it has not seen the ver of for its disco#info,
// recomputes the hash and, only if it matches, remembers the answer under
// "hash ver" in the store (shared by all cluster nodes) and in memory here.
// A mismatching answer is not used: a client could otherwise poison the
// cache for every other client announcing that ver.

// capsHashes are the hash functions accepted (the IANA names XEP-0115
// uses). MD5 and the like are refused: a weak hash would let a client
// forge a ver another client uses.
var capsHashes = map[string]func() hash.Hash{
	"sha-1":   sha1.New,
	"sha-256": sha256.New,
	"sha-384": sha512.New384,
	"sha-512": sha512.New,
}

// capsRef is the <c/> of a presence.
type capsRef struct {
	hash, node, ver string
}

func (c capsRef) key() string { return c.hash + " " + c.ver }

// parseCaps returns the caps announced in a presence, if usable.
func parseCaps(p *xmlstream.Element) (capsRef, bool) {
	if p == nil {
		return capsRef{}, false
	}
	c := p.Child(NSCaps, "c")
	if c == nil {
		return capsRef{}, false
	}
	r := capsRef{hash: c.Attr("hash"), node: c.Attr("node"), ver: c.Attr("ver")}
	if capsHashes[r.hash] == nil || r.ver == "" || len(r.ver) > 200 {
		return capsRef{}, false // legacy (no hash) or unknown hash: cannot be verified
	}
	return r, true
}

var errCapsMalformed = errors.New("caps: disco#info is not valid for hashing")

// CapsVer is capsVer for other packages: the server advertises its own
// capabilities in the stream features (XEP-0115 §6.3).
func CapsVer(q *xmlstream.Element, hashName string) (string, error) { return capsVer(q, hashName) }

// capsVer computes the XEP-0115 §5.1 verification string of a disco#info
// <query/> with the named hash, rejecting what §5.4 says to reject
// (duplicate identities or features, duplicate or malformed FORM_TYPEs).
func capsVer(q *xmlstream.Element, hashName string) (string, error) {
	newHash := capsHashes[hashName]
	if newHash == nil || q == nil {
		return "", errCapsMalformed
	}
	type ident struct{ cat, typ, lang, name string }
	var ids []ident
	var feats []string
	type xform struct {
		typ    string
		fields [][]string // var, then sorted values
	}
	var forms []xform
	for _, e := range q.Elements() {
		switch {
		case e.Space == NSDiscoInfo && e.Name == "identity":
			ids = append(ids, ident{e.Attr("category"), e.Attr("type"), e.Attr("xml:lang"), e.Attr("name")})
		case e.Space == NSDiscoInfo && e.Name == "feature":
			feats = append(feats, e.Attr("var"))
		case e.Space == NSData && e.Name == "x" && e.Attr("type") == "result":
			var f xform
			hasType := false
			for _, fl := range e.Elements() {
				if fl.Space != NSData || fl.Name != "field" {
					continue
				}
				var vals []string
				for _, v := range fl.Elements() {
					if v.Space == NSData && v.Name == "value" {
						vals = append(vals, v.Text())
					}
				}
				if fl.Attr("var") == "FORM_TYPE" {
					if hasType || len(vals) != 1 {
						return "", errCapsMalformed
					}
					if fl.Attr("type") != "hidden" {
						hasType = false
						f.typ = ""
						break // §5.4 3.6: ignore this form
					}
					hasType = true
					f.typ = vals[0]
					continue
				}
				slices.Sort(vals)
				f.fields = append(f.fields, append([]string{fl.Attr("var")}, vals...))
			}
			if hasType {
				forms = append(forms, f)
			}
		}
	}
	slices.SortFunc(ids, func(a, b ident) int {
		return cmp.Or(strings.Compare(a.cat, b.cat), strings.Compare(a.typ, b.typ), strings.Compare(a.lang, b.lang), strings.Compare(a.name, b.name))
	})
	for i := 1; i < len(ids); i++ {
		if ids[i] == ids[i-1] {
			return "", errCapsMalformed
		}
	}
	slices.Sort(feats)
	for i := 1; i < len(feats); i++ {
		if feats[i] == feats[i-1] {
			return "", errCapsMalformed
		}
	}
	slices.SortFunc(forms, func(a, b xform) int { return strings.Compare(a.typ, b.typ) })
	for i := 1; i < len(forms); i++ {
		if forms[i].typ == forms[i-1].typ {
			return "", errCapsMalformed
		}
	}
	var b strings.Builder
	for _, id := range ids {
		b.WriteString(id.cat + "/" + id.typ + "/" + id.lang + "/" + id.name + "<")
	}
	for _, f := range feats {
		b.WriteString(f + "<")
	}
	for _, f := range forms {
		b.WriteString(f.typ + "<")
		slices.SortFunc(f.fields, func(a, b []string) int { return strings.Compare(a[0], b[0]) })
		for _, fl := range f.fields {
			for _, v := range fl {
				b.WriteString(v + "<")
			}
		}
	}
	h := newHash()
	h.Write([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(h.Sum(nil)), nil
}

// capsInfo is what the service needs of a verified disco#info: the
// features.
type capsInfo struct {
	features map[string]bool
}

func infoOf(q *xmlstream.Element) *capsInfo {
	ci := &capsInfo{features: map[string]bool{}}
	for _, f := range q.Elements() {
		if f.Space == NSDiscoInfo && f.Name == "feature" {
			ci.features[f.Attr("var")] = true
		}
	}
	return ci
}

// notifyNodes returns the nodes ci asks notifications for.
func (ci *capsInfo) notifyNodes() map[string]bool {
	out := map[string]bool{}
	if ci == nil {
		return out
	}
	for f := range ci.features {
		if n, ok := strings.CutSuffix(f, "+notify"); ok && n != "" {
			out[n] = true
		}
	}
	return out
}

// capsCacheMax bounds the in-memory copy; past it the copy is dropped and
// refilled from the store, which keeps everything.
const capsCacheMax = 10000

type capsCache struct {
	st Store
	mu sync.RWMutex
	m  map[string]*capsInfo
	// inflight holds a channel per key being queried, closed when done:
	// when many clients of one version come online together (a server
	// restart), one of them is asked and the others wait for its answer.
	inflight map[string]chan struct{}
}

func newCapsCache(st Store) *capsCache {
	return &capsCache{st: st, m: map[string]*capsInfo{}, inflight: map[string]chan struct{}{}}
}

// claim makes the caller the one to query key, or returns the channel of
// the query already running.
func (c *capsCache) claim(key string) (done func(), running chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ch, ok := c.inflight[key]; ok {
		return nil, ch
	}
	ch := make(chan struct{})
	c.inflight[key] = ch
	return func() {
		c.mu.Lock()
		delete(c.inflight, key)
		c.mu.Unlock()
		close(ch)
	}, nil
}

// get returns the verified info for key, from memory or the store, or nil.
func (c *capsCache) get(ctx context.Context, key string, limits xmlstream.Limits) *capsInfo {
	c.mu.RLock()
	ci := c.m[key]
	c.mu.RUnlock()
	if ci != nil {
		return ci
	}
	b, err := c.st.CapsInfo(ctx, key)
	if err != nil {
		return nil
	}
	q, err := xmlstream.Parse(b, limits)
	if err != nil {
		return nil
	}
	ci = infoOf(q)
	c.remember(key, ci)
	return ci
}

func (c *capsCache) remember(key string, ci *capsInfo) {
	c.mu.Lock()
	if len(c.m) >= capsCacheMax {
		c.m = map[string]*capsInfo{}
	}
	c.m[key] = ci
	c.mu.Unlock()
}

// capsQueryTimeout is how long the service waits for a client's
// disco#info answer.
const capsQueryTimeout = 10 * time.Second

// sessionCaps returns the verified capabilities of a session with presence
// p: from the cache, or (if learn and the service can query) by asking the
// client. nil when unknown.
func (s *Service) sessionCaps(ctx context.Context, full jid.JID, p *xmlstream.Element, learn bool) *capsInfo {
	ref, ok := parseCaps(p)
	if !ok {
		return nil
	}
	if ci := s.caps.get(ctx, ref.key(), s.limits); ci != nil {
		return ci
	}
	if !learn || s.query == nil {
		return nil
	}
	qctx, cancel := context.WithTimeout(ctx, capsQueryTimeout)
	defer cancel()
	done, running := s.caps.claim(ref.key())
	if running != nil {
		select {
		case <-running:
		case <-qctx.Done():
			return nil
		}
		if ci := s.caps.get(ctx, ref.key(), s.limits); ci != nil {
			return ci
		}
		// The other client's answer did not verify: ask this one.
	} else {
		defer done()
	}
	q := xmlstream.New(NSDiscoInfo, "query", "node", ref.node+"#"+ref.ver)
	res, err := s.query(qctx, full, q)
	if err != nil || res == nil || res.Space != NSDiscoInfo || res.Name != "query" {
		s.log.Debug("caps: disco#info query failed", "jid", full.String(), "err", err)
		return nil
	}
	ver, err := capsVer(res, ref.hash)
	if err != nil || ver != ref.ver {
		s.log.Info("caps: disco#info does not match the announced hash; ignored", "jid", full.String(), "ver", ref.ver, "computed", ver, "err", err)
		return nil
	}
	// Store the answer without its node attribute: it names the ver, which
	// the key already does.
	clean := res.Copy()
	clean.SetAttr("node", "")
	if err := s.st.PutCapsInfo(ctx, ref.key(), []byte(clean.String())); err != nil && !errors.Is(err, store.ErrExists) {
		s.log.Error("caps: storing verified info", "err", err)
	}
	ci := infoOf(clean)
	s.caps.remember(ref.key(), ci)
	return ci
}
