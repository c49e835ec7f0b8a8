// Package loadgen is the load generator behind `bluetick bench`: a small
// XMPP client of its own (STARTTLS, SCRAM, bind, stream management,
// receipts) and four scenarios — idle connections, chat between online
// pairs, offline storage and drain, and a reconnect storm — that run the
// same way against Bluetick, ejabberd and Prosody. One process may hold at
// most ~20,000 files here, so a run can spread its clients over several
// child processes of itself; the parent samples the server's memory and CPU
// at barriers the children reach together.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config is everything a run needs.
type Config struct {
	Opt         *Options
	Label       string // server name for reports (bluetick, ejabberd, prosody)
	Users       string // pattern with one %d, e.g. user%d
	First       int    // index of the first user (default 1)
	Password    string
	Register    bool // register the scenario's users in-band first
	RegisterN   int  // how many users to register (0 = what the scenario needs)
	Scenario    string
	PID         int // server process to sample (0 = none)
	Duration    time.Duration
	Concurrency int // logins in flight per process
	Procs       int
	SaltCache   string // file keeping SCRAM salted passwords between runs
	Warm        bool   // after registering, log every user in once (fills SaltCache)

	Conns int
	Hold  time.Duration
	// Wake: after the hold, measure the first message to this many parked
	// sessions against one to the same sessions awake (conns; wake.go).
	Wake            int
	Pairs           int
	Messages        int
	Window          int
	Rate            int // chat: total messages per second across senders, 0 = as fast as the window allows
	BodySize        int
	OfflineUsers    int
	OfflineMessages int
	Storm           int
	StormWindow     time.Duration

	// group: one MUC room of GroupMembers occupants; the first GroupSenders
	// of them each send GroupMessages groupchat messages.
	GroupMembers  int
	GroupSenders  int
	GroupMessages int
	MUCService    string // MUC domain ("" = groups.<domain>)
	Room          string // room local part ("" = bench-<run id>)

	// reconnect: ReconnectClients clients log in once, then each drops its
	// connection and reconnects Reconnects times, ReconnectPause apart,
	// in the ReconnectMode modes (legacy, sasl2 or both).
	ReconnectClients int
	Reconnects       int
	ReconnectMode    string
	ReconnectPause   time.Duration
	FastCount        bool // sasl2 token logins send <fast count=""/>

	// Child mode (set by the parent for its children).
	Shard, Shards int
	T0            time.Time

	Args []string // the command line, handed to children
}

// Scenarios is the list of scenario names.
var Scenarios = []string{"conns", "chat", "offline", "storm", "group", "reconnect", "register"}

// User returns the name of the i-th user of the run (0-based).
func (c *Config) User(i int) string {
	return fmt.Sprintf(c.Users, c.First+i)
}

// needed is how many users the scenario touches.
func (c *Config) needed() int {
	switch c.Scenario {
	case "conns":
		return c.Conns
	case "chat":
		return 2 * c.Pairs
	case "offline":
		return 2 * c.OfflineUsers
	case "storm":
		return c.Storm
	case "group":
		return c.GroupMembers
	case "reconnect":
		return c.ReconnectClients
	case "register":
		return c.RegisterN
	}
	return 0
}

// Validate fills defaults and checks the config.
func (c *Config) Validate() error {
	if c.Opt == nil || c.Opt.Server == "" {
		return errors.New("--server host:port is required")
	}
	if c.Opt.Domain == "" {
		host, _, _ := net.SplitHostPort(c.Opt.Server)
		c.Opt.Domain = host
	}
	switch c.Opt.TLS {
	case "starttls", "none", "direct":
	default:
		return fmt.Errorf("--tls %q: use starttls, none or direct", c.Opt.TLS)
	}
	switch c.Opt.Mech {
	case "", "SCRAM-SHA-1", "SCRAM-SHA-256", "PLAIN":
	default:
		return fmt.Errorf("--mech %q: use SCRAM-SHA-1, SCRAM-SHA-256 or PLAIN", c.Opt.Mech)
	}
	if strings.Count(c.Users, "%d") != 1 {
		return fmt.Errorf("--users %q must contain exactly one %%d", c.Users)
	}
	ok := false
	for _, s := range Scenarios {
		ok = ok || s == c.Scenario
	}
	if !ok {
		return fmt.Errorf("--scenario %q: use one of %s", c.Scenario, strings.Join(Scenarios, ", "))
	}
	if c.Scenario == "register" && c.RegisterN <= 0 {
		return errors.New("--scenario register needs --register-count N")
	}
	if c.Scenario == "register" {
		c.Register = true
	}
	if c.Scenario == "group" {
		if c.GroupMembers < 1 || c.GroupSenders < 1 || c.GroupMessages < 1 {
			return errors.New("--scenario group needs --group-members, --group-senders and --group-messages of at least 1")
		}
		if c.GroupSenders > c.GroupMembers {
			return fmt.Errorf("--group-senders %d is more than --group-members %d (senders are members)", c.GroupSenders, c.GroupMembers)
		}
	}
	if c.Scenario == "reconnect" {
		if c.ReconnectClients == 0 {
			c.ReconnectClients = 1000
		}
		if c.Reconnects == 0 {
			c.Reconnects = 5
		}
		if c.ReconnectClients < 0 || c.Reconnects < 0 || c.ReconnectPause < 0 {
			return errors.New("--reconnect-clients, --reconnects and --reconnect-pause must not be negative")
		}
		if _, err := reconnectModes(c.ReconnectMode); err != nil {
			return err
		}
	}
	if c.First == 0 {
		c.First = 1
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 50
	}
	if c.Procs <= 0 {
		c.Procs = 1
	}
	if c.Shards <= 0 {
		c.Shards = 1
	}
	if c.Window <= 0 {
		c.Window = 1
	}
	if c.Duration <= 0 {
		c.Duration = 5 * time.Minute
	}
	if c.T0.IsZero() {
		c.T0 = time.Now()
	}
	if c.MUCService == "" {
		c.MUCService = "groups." + c.Opt.Domain
	}
	if c.Room == "" {
		// Derived from T0, which the children get from the parent: every
		// process of a run names the same room, and each run a new one.
		c.Room = "bench-" + c.RunID()
	}
	return nil
}

// RunID names this run (all its processes agree: it is derived from T0).
func (c *Config) RunID() string { return strconv.FormatInt(c.T0.UnixNano()/1e6, 36) }

// Span is when a phase ran, in unix nanoseconds (min start, max end over
// all processes).
type Span struct {
	Start int64 `json:"start"`
	End   int64 `json:"end"`
}

// Seconds is the span's length.
func (s Span) Seconds() float64 {
	if s.End <= s.Start {
		return 0
	}
	return float64(s.End-s.Start) / 1e9
}

// Partial is what one process measured; the parent merges them.
type Partial struct {
	Attempts   int            `json:"attempts"`
	OK         int            `json:"ok"`
	Failed     int            `json:"failed"`
	Errors     map[string]int `json:"errors,omitempty"`
	Registered int            `json:"registered"`
	Existing   int            `json:"existing"`
	RegFailed  int            `json:"register_failed"`
	Sent       int64          `json:"sent"`
	Received   int64          `json:"received"`
	Receipts   int64          `json:"receipts"`
	Expected   int64          `json:"expected"`
	Flushed    int64          `json:"flushed"`
	Dropped    int64          `json:"dropped"` // connections lost during the measured phase
	Duplicates int64          `json:"duplicates"`
	MsgErrors  int64          `json:"message_errors"`
	Lat        []int64        `json:"lat,omitempty"`
	RTT        []int64        `json:"rtt,omitempty"`
	Ack        []int64        `json:"ack,omitempty"` // sender's ✓: message to the server's XEP-0198 ack
	Login      []int64        `json:"login,omitempty"`
	// conns --wake: send → receive of a message to a parked session, and
	// of the next one to the same session, awake (nanoseconds).
	WakeParked []int64            `json:"wake_parked,omitempty"`
	WakeActive []int64            `json:"wake_active,omitempty"`
	Spans      map[string]Span    `json:"spans,omitempty"`
	GenCPU     float64            `json:"gen_cpu"`
	BytesIn    int64              `json:"bytes_in"`
	BytesOut   int64              `json:"bytes_out"`
	TLS        map[string]int     `json:"tls,omitempty"`
	Timeline   map[string][]int64 `json:"timeline,omitempty"`
	TimedOut   bool               `json:"timed_out"`
	Notes      []string           `json:"notes,omitempty"`
	// reconnect: by mode (legacy, sasl2)
	Reconnect map[string]*ReconnectPart `json:"reconnect,omitempty"`
	mu        sync.Mutex                `json:"-"`
	tl        map[string]*counter       `json:"-"`
}

// counter counts events per bucket of the timeline.
type counter struct {
	t0      time.Time
	buckets []atomic.Int64
}

// TimelineBucket is the resolution of the timeline.
const TimelineBucket = 100 * time.Millisecond

func newPartial(c *Config) *Partial {
	return &Partial{Errors: map[string]int{}, Spans: map[string]Span{}, TLS: map[string]int{}, tl: map[string]*counter{}}
}

func (p *Partial) series(name string, c *Config) *counter {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.tl[name]
	if s == nil {
		n := int(c.Duration/TimelineBucket) + 600
		s = &counter{t0: c.T0, buckets: make([]atomic.Int64, n)}
		p.tl[name] = s
	}
	return s
}

func (s *counter) add(t time.Time) {
	i := int(t.Sub(s.t0) / TimelineBucket)
	if i >= 0 && i < len(s.buckets) {
		s.buckets[i].Add(1)
	}
}

func (p *Partial) fail(err error) {
	p.mu.Lock()
	p.Failed++
	p.Errors[Class(err)]++
	p.mu.Unlock()
}

func (p *Partial) note(format string, a ...any) {
	p.mu.Lock()
	p.Notes = append(p.Notes, fmt.Sprintf(format, a...))
	p.mu.Unlock()
}

func (p *Partial) span(name string, start, end time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.Spans[name]
	st, en := start.UnixNano(), end.UnixNano()
	if !ok || st < s.Start {
		s.Start = st
	}
	if en > s.End {
		s.End = en
	}
	p.Spans[name] = s
}

// finish moves the timeline counters into the exported field.
func (p *Partial) finish() {
	p.Timeline = map[string][]int64{}
	for name, s := range p.tl {
		last := 0
		v := make([]int64, len(s.buckets))
		for i := range s.buckets {
			v[i] = s.buckets[i].Load()
			if v[i] != 0 {
				last = i + 1
			}
		}
		p.Timeline[name] = v[:last]
	}
}

func (p *Partial) merge(o *Partial) {
	p.Attempts += o.Attempts
	p.OK += o.OK
	p.Failed += o.Failed
	for k, v := range o.Errors {
		p.Errors[k] += v
	}
	p.Registered += o.Registered
	p.Existing += o.Existing
	p.RegFailed += o.RegFailed
	p.Sent += o.Sent
	p.Received += o.Received
	p.Receipts += o.Receipts
	p.Expected += o.Expected
	p.Flushed += o.Flushed
	p.Dropped += o.Dropped
	p.Duplicates += o.Duplicates
	p.MsgErrors += o.MsgErrors
	p.Lat = append(p.Lat, o.Lat...)
	p.RTT = append(p.RTT, o.RTT...)
	p.Ack = append(p.Ack, o.Ack...)
	p.Login = append(p.Login, o.Login...)
	p.WakeParked = append(p.WakeParked, o.WakeParked...)
	p.WakeActive = append(p.WakeActive, o.WakeActive...)
	for k, s := range o.Spans {
		cur, ok := p.Spans[k]
		if !ok || s.Start < cur.Start {
			cur.Start = s.Start
		}
		if s.End > cur.End {
			cur.End = s.End
		}
		p.Spans[k] = cur
	}
	p.GenCPU += o.GenCPU
	p.BytesIn += o.BytesIn
	p.BytesOut += o.BytesOut
	for k, v := range o.TLS {
		p.TLS[k] += v
	}
	if p.Timeline == nil {
		p.Timeline = map[string][]int64{}
	}
	for k, v := range o.Timeline {
		cur := p.Timeline[k]
		for len(cur) < len(v) {
			cur = append(cur, 0)
		}
		for i, x := range v {
			cur[i] += x
		}
		p.Timeline[k] = cur
	}
	p.TimedOut = p.TimedOut || o.TimedOut
	p.Notes = append(p.Notes, o.Notes...)
	for m, r := range o.Reconnect {
		p.rcPart(m).merge(r)
	}
}

// barrierFunc waits until every process reached the named point and the
// parent has taken its samples; it returns the time the parent chose as the
// start of the next phase.
type barrierFunc func(name string) (time.Time, error)

// worker runs one process's share of a scenario.
type worker struct {
	cfg     *Config
	p       *Partial
	barrier barrierFunc
	ctx     context.Context

	cpu0, cpu1 float64
	in0, out0  int64
}

// measureStart and measureEnd bracket the generator CPU and the bytes on
// the wire that are reported.
func (w *worker) measureStart() {
	w.cpu0 = SelfCPU()
	w.in0, w.out0 = w.cfg.Opt.BytesIn.Load(), w.cfg.Opt.BytesOut.Load()
}

func (w *worker) measureEnd() {
	w.cpu1 = SelfCPU()
	w.p.BytesIn = w.cfg.Opt.BytesIn.Load() - w.in0
	w.p.BytesOut = w.cfg.Opt.BytesOut.Load() - w.out0
}

// mine reports whether index i belongs to this process.
func (w *worker) mine(i int) bool { return i%w.cfg.Shards == w.cfg.Shard }

func tlsName(v uint16) string {
	switch v {
	case 0:
		return "none"
	case 0x0301:
		return "TLS1.0"
	case 0x0302:
		return "TLS1.1"
	case 0x0303:
		return "TLS1.2"
	case 0x0304:
		return "TLS1.3"
	}
	return fmt.Sprintf("0x%04x", v)
}

// login logs one user in and records the attempt.
func (w *worker) login(ctx context.Context, user string, lo LoginOptions) (*Conn, error) {
	start := time.Now()
	c, err := Login(ctx, w.cfg.Opt, user, w.cfg.Password, lo)
	w.p.mu.Lock()
	w.p.Attempts++
	w.p.mu.Unlock()
	if err != nil {
		w.p.fail(err)
		return nil, err
	}
	end := time.Now()
	w.p.mu.Lock()
	w.p.OK++
	w.p.Login = append(w.p.Login, int64(end.Sub(start)))
	name := tlsName(c.TLSVersion)
	if c.TLSVersion != 0 {
		name += "/" + c.TLSCurve.String()
	}
	w.p.TLS[name]++
	w.p.mu.Unlock()
	w.p.series("logins", w.cfg).add(end)
	return c, nil
}

// loginMany logs in users (indices) with at most Concurrency in flight and
// returns the connections in the same order (nil for failures).
func (w *worker) loginMany(ctx context.Context, idx []int, lo LoginOptions, spanName string) []*Conn {
	conns := make([]*Conn, len(idx))
	sem := make(chan struct{}, w.cfg.Concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	for k, i := range idx {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := w.login(ctx, w.cfg.User(i), lo)
			if err == nil {
				conns[k] = c
			}
		}()
	}
	wg.Wait()
	if spanName != "" {
		w.p.span(spanName, start, time.Now())
	}
	return conns
}

func closeAll(conns []*Conn) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256)
	for _, c := range conns {
		if c == nil {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			c.Close()
			<-sem
		}()
	}
	wg.Wait()
}

// register creates the users of this shard, skipping existing ones.
func (w *worker) register() {
	n := w.cfg.RegisterN
	if n <= 0 {
		n = w.cfg.needed()
	}
	sem := make(chan struct{}, w.cfg.Concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < n; i++ {
		if !w.mine(i) {
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-w.ctx.Done():
		}
		if w.ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			var err error
			for try := 0; try < 3; try++ {
				err = Register(w.ctx, w.cfg.Opt, w.cfg.User(i), w.cfg.Password)
				if err == nil || errors.Is(err, ErrExists) || w.ctx.Err() != nil {
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
			w.p.mu.Lock()
			defer w.p.mu.Unlock()
			switch {
			case err == nil:
				w.p.Registered++
			case errors.Is(err, ErrExists):
				w.p.Existing++
			default:
				w.p.RegFailed++
				w.p.Errors["register: "+Class(err)]++
			}
		}()
	}
	wg.Wait()
	w.p.span("register", start, time.Now())
	if !w.cfg.Warm {
		return
	}
	// One login per user, each closed at once (holding them all could
	// exceed the server's open-files limit).
	wstart := time.Now()
	for i := 0; i < n; i++ {
		if !w.mine(i) {
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-w.ctx.Done():
		}
		if w.ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if c, err := w.login(w.ctx, w.cfg.User(i), LoginOptions{}); err == nil {
				c.Close()
			}
		}()
	}
	wg.Wait()
	w.p.span("warm", wstart, time.Now())
	w.p.mu.Lock()
	w.p.Attempts, w.p.OK, w.p.Login = 0, 0, nil
	w.p.mu.Unlock()
}

// run executes the scenario for this process.
func (w *worker) run() error {
	if w.cfg.Register {
		w.register()
	}
	if _, err := w.barrier("registered"); err != nil {
		return err
	}
	if w.cfg.Scenario == "register" {
		return nil
	}
	var err error
	switch w.cfg.Scenario {
	case "conns":
		err = w.conns()
	case "chat":
		err = w.chat()
	case "offline":
		err = w.offline()
	case "storm":
		err = w.storm()
	case "group":
		err = w.group()
	case "reconnect":
		err = w.reconnect()
	}
	if w.cpu1 == 0 {
		w.measureEnd()
	}
	w.p.GenCPU = w.cpu1 - w.cpu0
	if w.ctx.Err() != nil {
		w.p.TimedOut = true
	}
	return err
}
