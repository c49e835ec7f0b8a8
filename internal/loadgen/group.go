package loadgen

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// MUC namespaces the group scenario speaks.
const (
	nsMUC      = "http://jabber.org/protocol/muc"
	nsMUCUser  = "http://jabber.org/protocol/muc#user"
	nsMUCOwner = "http://jabber.org/protocol/muc#owner"
	nsData     = "jabber:x:data"
	nsRoomConf = "http://jabber.org/protocol/muc#roomconfig"
)

// groupMember is one occupant of the benchmark room.
type groupMember struct {
	idx    int // member index (0 = the owner, < GroupSenders = a sender)
	c      *Conn
	nick   string
	joined chan *Elem    // our own presence from the room, or a presence error
	iq     chan *Elem    // iq results and errors (the owner's configuration)
	window chan struct{} // senders: own messages not yet reflected by the room
	seen   []uint64      // bitmap of sender*M+k received (reader goroutine only)
	dups   int64
	lat    []int64
}

// maxUsersFor is the room size to configure: the smallest of the values
// ejabberd lists in its form (it refuses others) that holds n occupants.
func maxUsersFor(n int) int {
	for _, v := range []int{5, 10, 20, 30, 50, 100, 200, 500, 1000, 2000, 5000, 50000} {
		if v >= n {
			return v
		}
	}
	return n
}

// hasStatus reports whether a room presence carries the muc#user status code.
func hasStatus(e *Elem, code string) bool {
	x := e.Child("x", nsMUCUser)
	if x == nil {
		return false
	}
	for _, ch := range x.Children {
		if ch.Local() == "status" && ch.Attr("code") == code {
			return true
		}
	}
	return false
}

// groupBody is the body of run message k of sender s: the run id (history
// of earlier runs is ignored), sender, sequence and send time.
func groupBody(run string, s, k int, t time.Time, pad string) string {
	b := make([]byte, 0, 48+len(pad))
	b = append(b, run...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(s), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(k), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, t.UnixNano(), 10)
	b = append(b, ' ')
	b = append(b, pad...)
	return string(b)
}

// parseGroupBody reads a body built by groupBody; ok is false for any
// other text, or another run's.
func parseGroupBody(body, run string) (s, k int, t int64, ok bool) {
	f := strings.SplitN(body, " ", 5)
	if len(f) < 4 || f[0] != run {
		return 0, 0, 0, false
	}
	var err1, err2, err3 error
	s, err1 = strconv.Atoi(f[1])
	k, err2 = strconv.Atoi(f[2])
	t, err3 = strconv.ParseInt(f[3], 10, 64)
	return s, k, t, err1 == nil && err2 == nil && err3 == nil && s >= 0 && k >= 0
}

// group: member 0 creates the room (instant room, then a configuration
// that opens it: not members-only, persistent, big enough); all members
// join; then the first S members each send M groupchat messages, at most
// Window of their own not yet reflected back by the room. Every member,
// senders included (the room reflects a message to its sender too), must
// receive every message: S*M*N deliveries.
func (w *worker) group() error {
	N, S, M := w.cfg.GroupMembers, w.cfg.GroupSenders, w.cfg.GroupMessages
	room := w.cfg.Room + "@" + w.cfg.MUCService
	run := w.cfg.RunID()
	var idx []int
	for i := 0; i < N; i++ {
		if w.mine(i) {
			idx = append(idx, i)
		}
	}
	conns := w.loginMany(w.ctx, idx, LoginOptions{Presence: true}, "login")
	byConn := map[*Conn]*groupMember{}
	var members []*groupMember
	var owner *groupMember
	for k, c := range conns {
		if c == nil {
			continue
		}
		m := &groupMember{idx: idx[k], c: c, nick: fmt.Sprintf("m%d", idx[k]),
			joined: make(chan *Elem, 1), iq: make(chan *Elem, 4), seen: make([]uint64, (S*M+63)/64)}
		if m.idx < S {
			m.window = make(chan struct{}, w.cfg.Window)
		}
		if m.idx == 0 {
			owner = m
		}
		byConn[c] = m
		members = append(members, m)
	}
	var recv, last atomic.Int64
	deliveries := w.p.series("messages", w.cfg)
	h := func(c *Conn, e *Elem) {
		m := byConn[c]
		switch e.Local() {
		case "presence":
			from := e.Attr("from")
			if !strings.HasPrefix(from, room+"/") {
				return
			}
			if e.Attr("type") == "error" || hasStatus(e, "110") || (e.Attr("type") == "" && from == room+"/"+m.nick) {
				select {
				case m.joined <- e:
				default:
				}
			}
		case "iq":
			if t := e.Attr("type"); t == "result" || t == "error" {
				select {
				case m.iq <- e:
				default:
				}
			}
		case "message":
			if e.Attr("type") == "error" {
				atomic.AddInt64(&w.p.MsgErrors, 1)
				return
			}
			if e.Attr("type") != "groupchat" {
				return
			}
			b := e.Child("body", "")
			if b == nil {
				return
			}
			s, k, t, ok := parseGroupBody(b.Text, run)
			if !ok || s >= S || k >= M {
				return
			}
			now := time.Now()
			bit := s*M + k
			if m.seen[bit/64]&(1<<(bit%64)) != 0 {
				m.dups++
				return
			}
			m.seen[bit/64] |= 1 << (bit % 64)
			m.lat = append(m.lat, now.UnixNano()-t)
			if s == m.idx && m.window != nil {
				select {
				case <-m.window:
				default:
				}
			}
			deliveries.add(now)
			recv.Add(1)
			maxTime(&last, now.UnixNano())
		}
	}
	rwg := w.serveAll(conns, h)
	end := func(err error) error {
		closeAll(conns)
		rwg.Wait()
		w.p.Received = recv.Load()
		for _, m := range members {
			w.p.Lat = append(w.p.Lat, m.lat...)
			w.p.Duplicates += m.dups
		}
		return err
	}
	joinPresence := func(m *groupMember) string {
		return "<presence to='" + escape(room+"/"+m.nick) + "'><x xmlns='" + nsMUC + "'><history maxstanzas='0'/></x></presence>"
	}
	// join sends the join presence and waits for the room's answer.
	join := func(m *groupMember) (*Elem, error) {
		if err := m.c.Send(joinPresence(m)); err != nil {
			return nil, &PhaseError{"join", err}
		}
		tm := time.NewTimer(w.cfg.Opt.timeout())
		defer tm.Stop()
		select {
		case e := <-m.joined:
			if e.Attr("type") == "error" {
				return nil, &PhaseError{"join", fmt.Errorf("refused: %s", stanzaErr(e))}
			}
			return e, nil
		case <-tm.C:
			return nil, &PhaseError{"join", fmt.Errorf("no presence from the room in %s", w.cfg.Opt.timeout())}
		case <-w.ctx.Done():
			return nil, &PhaseError{"join", w.ctx.Err()}
		}
	}
	iq := func(m *groupMember, id, payload string) error {
		if err := m.c.Send("<iq type='set' id='" + id + "' to='" + escape(room) + "'>" + payload + "</iq>"); err != nil {
			return err
		}
		tm := time.NewTimer(w.cfg.Opt.timeout())
		defer tm.Stop()
		for {
			select {
			case e := <-m.iq:
				if e.Attr("id") != id {
					continue
				}
				if e.Attr("type") == "error" {
					return fmt.Errorf("refused: %s", stanzaErr(e))
				}
				return nil
			case <-tm.C:
				return fmt.Errorf("no answer in %s", w.cfg.Opt.timeout())
			case <-w.ctx.Done():
				return w.ctx.Err()
			}
		}
	}

	// The owner (shard 0) creates and configures the room before anyone
	// else joins: a new room is locked until configured.
	var joinedN atomic.Int64
	cstart := time.Now()
	if owner != nil {
		err := func() error {
			e, err := join(owner)
			if err != nil {
				return err
			}
			if hasStatus(e, "201") { // new: the instant room unlocks it
				if err := iq(owner, "inst", "<query xmlns='"+nsMUCOwner+"'><x xmlns='"+nsData+"' type='submit'/></query>"); err != nil {
					return &PhaseError{"instant room", err}
				}
			}
			form := "<query xmlns='" + nsMUCOwner + "'><x xmlns='" + nsData + "' type='submit'>" +
				"<field var='FORM_TYPE' type='hidden'><value>" + nsRoomConf + "</value></field>" +
				"<field var='muc#roomconfig_membersonly'><value>0</value></field>" +
				"<field var='muc#roomconfig_persistentroom'><value>1</value></field>" +
				"<field var='muc#roomconfig_maxusers'><value>" + strconv.Itoa(maxUsersFor(N)) + "</value></field>" +
				"</x></query>"
			if err := iq(owner, "conf", form); err != nil {
				return &PhaseError{"configure room", err}
			}
			return nil
		}()
		if err != nil {
			w.p.fail(err)
			w.p.note("room %s: %v", room, err)
		} else {
			joinedN.Add(1)
			w.p.span("create", cstart, time.Now())
		}
	}
	if _, err := w.barrier("room"); err != nil {
		return end(err)
	}
	// Everyone else joins, Concurrency at a time per process.
	jstart := time.Now()
	sem := make(chan struct{}, w.cfg.Concurrency)
	var jwg sync.WaitGroup
	joined := make([]bool, len(members))
	for k, m := range members {
		if m == owner {
			joined[k] = joinedN.Load() == 1
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-w.ctx.Done():
		}
		if w.ctx.Err() != nil {
			break
		}
		jwg.Add(1)
		go func() {
			defer jwg.Done()
			defer func() { <-sem }()
			if _, err := join(m); err != nil {
				w.p.fail(err)
				return
			}
			joined[k] = true
			joinedN.Add(1)
		}()
	}
	jwg.Wait()
	w.p.span("join", jstart, time.Now())
	// Presence of the last joins still fans out: let it settle.
	sleepUntil(w.ctx, time.Now().Add(time.Second))

	// Every joined member of this process must get every message.
	expected := int64(S*M) * joinedN.Load()
	w.p.Expected = expected
	t0, err := w.barrier("start")
	if err != nil {
		return end(err)
	}
	w.measureStart()
	pad := w.body()
	var swg sync.WaitGroup
	var sent atomic.Int64
	for k, m := range members {
		if m.window == nil || !joined[k] {
			continue
		}
		swg.Add(1)
		go func() {
			defer swg.Done()
			if !sleepUntil(w.ctx, t0) {
				return
			}
			head := "<message to='" + escape(room) + "' type='groupchat' id='"
			for k := 0; k < M; k++ {
				select {
				case m.window <- struct{}{}:
				case <-w.ctx.Done():
					return
				}
				now := time.Now()
				if m.c.Send(head+msgID('g', now, k)+"'><body>"+groupBody(run, m.idx, k, now, pad)+"</body></message>") != nil {
					return
				}
				sent.Add(1)
			}
		}()
	}
	// Done when everything arrived; or, once this process has sent all it
	// will, when nothing arrived for quiet (lost deliveries).
	const quiet = 10 * time.Second
	sendersDone := make(chan struct{})
	go func() { swg.Wait(); close(sendersDone) }()
	tk := time.NewTicker(5 * time.Millisecond)
	defer tk.Stop()
	sendingOver := false
wait:
	for recv.Load() < expected {
		select {
		case <-w.ctx.Done():
			break wait
		case <-sendersDone:
			sendingOver, sendersDone = true, nil
		case <-tk.C:
			if sendingOver {
				lastAt := time.Unix(0, max(last.Load(), t0.UnixNano()))
				if time.Since(lastAt) > quiet {
					w.p.note("shard %d: %d of %d deliveries after %s without any", w.cfg.Shard, recv.Load(), expected, quiet)
					break wait
				}
			}
		}
	}
	swg.Wait()
	// Late duplicates would show up here.
	sleepUntil(w.ctx, time.Now().Add(200*time.Millisecond))
	w.p.Sent = sent.Load()
	w.p.span("group", t0, time.Unix(0, max(last.Load(), t0.UnixNano())))
	_, err = w.barrier("end")
	w.measureEnd()
	return end(err)
}
