package c2s

import (
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"bluetick/internal/metrics"
	"bluetick/internal/ratelimit"
	"bluetick/internal/stanza"
	"bluetick/internal/xmlstream"
)

// shaper holds one session to limits.stanzas_per_second and
// limits.bytes_per_second, as ejabberd's shapers do: each element read
// takes tokens, and a session in debt is not read again until the debt is
// paid. The client is slowed, not refused: its stanzas wait in the socket
// buffers and TCP flow control stops it, so nothing is lost and a client
// that merely bursts (a reconnect catching up on receipts) just takes
// longer. Only a session held back without a break for
// limits.flood_disconnect is cut, with a policy-violation stream error.
//
// Every element counts, stream-management and CSI nonzas too. A shaper
// belongs to its stream's read loop: no locking.
type shaper struct {
	stanzas, bytes *ratelimit.Bucket // nil: that rate is off
	cutAfter       time.Duration     // 0: never cut
	m              *ShaperMetrics

	since  time.Time // start of the current run of held-back reads; zero when not held back
	shaped bool      // counted in m.Shaped already
}

// newShaper returns the shaper for a client at remote, or nil when none
// applies (both rates off, or a loopback client with exempt_loopback).
func (svc *Service) newShaper(remote netip.Addr) *shaper {
	l := svc.cfg.Limits
	if (l.StanzasPerSecond <= 0 && l.BytesPerSecond <= 0) || svc.exempt(remote.String()) {
		return nil
	}
	now := time.Now()
	sh := &shaper{cutAfter: l.FloodDisconnect.Duration, m: &svc.Shaper}
	burst := l.ShaperBurst.Seconds()
	if r := float64(l.StanzasPerSecond); r > 0 {
		sh.stanzas = ratelimit.NewBucket(r, r*burst, now)
	}
	if r := float64(l.BytesPerSecond); r > 0 {
		sh.bytes = ratelimit.NewBucket(r, r*burst, now)
	}
	return sh
}

// wait charges el and sleeps while the session is over its rates; it
// returns a policy-violation stream error instead when the session has
// been held back for longer than cutAfter.
func (sh *shaper) wait(st *stream, el *xmlstream.Element) error {
	if sh == nil {
		return nil
	}
	now := time.Now()
	var d time.Duration
	if sh.stanzas != nil {
		d = sh.stanzas.Take(1, now)
	}
	if sh.bytes != nil {
		d = max(d, sh.bytes.Take(float64(approxSize(el, "")), now))
	}
	if d <= 0 {
		sh.since = time.Time{} // within the rates: a break
		return nil
	}
	if sh.since.IsZero() {
		sh.since = now
	}
	if !sh.shaped {
		sh.shaped = true
		sh.m.Shaped.Add(1)
		st.log.Info("c2s: client slowed by the shaper", "user", st.user,
			"stanzas_per_second", st.svc.cfg.Limits.StanzasPerSecond, "bytes_per_second", st.svc.cfg.Limits.BytesPerSecond)
	}
	if held := now.Add(d).Sub(sh.since); sh.cutAfter > 0 && held > sh.cutAfter {
		sh.m.Cut.Add(1)
		st.log.Warn("c2s: client cut for flooding", "user", st.user, "held_back", held.Round(time.Millisecond).String())
		return &stanza.StreamError{Condition: "policy-violation",
			Text: fmt.Sprintf("over the stanza rate limit for %s (limits: %d stanzas/s, %d bytes/s)",
				sh.cutAfter, st.svc.cfg.Limits.StanzasPerSecond, st.svc.cfg.Limits.BytesPerSecond)}
	}
	sh.m.Nanos.Add(uint64(d))
	// In slices, so that a connection closed meanwhile (a kick, a
	// shutdown) ends now rather than after what its decoder buffered.
	g, _ := st.t.(interface{ gone() bool })
	for d > 0 {
		step := min(d, 100*time.Millisecond)
		time.Sleep(step)
		d -= step
		if g != nil && g.gone() {
			return net.ErrClosed
		}
	}
	return nil
}

// gone reports whether Close was called: the shaper stops waiting.
func (t *tcpTransport) gone() bool { return t.closing.Load() }

func (t *boshTransport) gone() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closed
}

// approxSize is about the size of el as the client wrote it (names,
// attributes, text and namespace declarations; not escapes or white
// space between elements), which the transports do not report per
// element. It walks the tree the parser just built, so it costs little
// next to the parse.
func approxSize(el *xmlstream.Element, parentNS string) int {
	n := 2*len(el.Name) + 5
	if el.Space != parentNS {
		n += len(el.Space) + 9
	}
	for _, a := range el.Attrs {
		n += len(a.Name) + len(a.Value) + 4
	}
	for _, c := range el.Children {
		if c.Elem != nil {
			n += approxSize(c.Elem, el.Space)
		} else {
			n += len(c.Text)
		}
	}
	return n
}

// ShaperMetrics counts what the per-session stanza shaper did (served at
// /metrics through Collectors).
type ShaperMetrics struct {
	Shaped atomic.Uint64 // sessions slowed at least once
	Cut    atomic.Uint64 // sessions cut for staying over the limit
	Nanos  atomic.Uint64 // time reads were held back, summed over sessions
}

// Collectors are the shaper's counters.
func (m *ShaperMetrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{
		metrics.Counter("bluetick_c2s_shaped_sessions_total", "Client sessions slowed by the stanza shaper (limits.stanzas_per_second, limits.bytes_per_second).", nil, metrics.Uint(&m.Shaped)),
		metrics.Counter("bluetick_c2s_flood_disconnects_total", "Client sessions cut with policy-violation after limits.flood_disconnect over the rate.", nil, metrics.Uint(&m.Cut)),
		metrics.Counter("bluetick_c2s_shaper_delay_seconds_total", "Time the shaper held back reading from clients.", nil, func() float64 { return float64(m.Nanos.Load()) / 1e9 }),
	}
}
