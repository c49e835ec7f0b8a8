package c2s

import (
	"context"
	"strconv"
	"strings"
	"time"

	"bluetick/internal/jid"
	"bluetick/internal/server"
	"bluetick/internal/session"
	"bluetick/internal/stanza"
	"bluetick/internal/xmlstream"
)

// bind handles resource binding (RFC 6120 §7). It returns true once a
// session is bound; false after an error reply the client may retry.
func (st *stream) bind(iq *xmlstream.Element) (bool, error) {
	if iq.Attr("type") != "set" {
		return false, st.t.Write([]*xmlstream.Element{stanza.ErrorReply(iq, stanza.ErrBadRequest)})
	}
	// Cloned: the JID lives as long as the session and must not pin the
	// decoder's memory block of this stanza.
	res := strings.Clone(iq.Child(nsBind, "bind").ChildText(nsBind, "resource"))
	if res == "" {
		res = "bt-" + server.NewID()[:10]
	}
	full, err := jid.New(st.user, st.svc.cfg.Domain, res)
	if err != nil {
		return false, st.t.Write([]*xmlstream.Element{stanza.ErrorReply(iq, stanza.NewError("bad-request", "the resource is not valid"))})
	}
	s := session.New(server.NewID(), full, st.svc.cfg.Limits.MaxQueue, st.hooks())
	st.adopt(s)
	s.Attach(st.t)
	st.svc.im.Bound(context.Background(), s)
	result := xmlstream.New(xmlstream.NSClient, "iq", "type", "result", "id", iq.Attr("id"))
	result.Append(xmlstream.New(nsBind, "bind").Append(xmlstream.New(nsBind, "jid").AppendText(full.String())))
	_ = s.Send(result)
	st.log = st.log.With("jid", full.String())
	return true, nil
}

// hooks are the IM core's hooks plus ending the session when its queue
// overflows.
func (st *stream) hooks() session.Hooks {
	h := st.svc.im.Hooks()
	h.Overflow = func(s *session.Session) {
		st.svc.Overflowed.Add(1)
		st.log.Warn("session cut: too many unacknowledged stanzas; its queue moves to the offline store",
			"max_queue", st.svc.cfg.Limits.MaxQueue)
		st.closedBy.Store(true)
		go st.svc.end(s)
	}
	return h
}

// adopt makes st the owner of s.
func (st *stream) adopt(s *session.Session) {
	st.svc.rmu.Lock()
	o := st.svc.sessions[s.ID()]
	if o == nil {
		o = &owned{sess: s, since: time.Now()}
		st.svc.sessions[s.ID()] = o
	}
	o.owner = st
	st.svc.rmu.Unlock()
	st.sess = s
	st.cur.Store(s)
	st.bound.Store(true)
}

// resume takes over a session after a dropped connection (XEP-0198 §5).
func (st *stream) resume(el *xmlstream.Element) (bool, error) {
	r, failed, err := st.takeOver(el.Attr("previd"), el.Attr("h"))
	if err != nil {
		return false, err
	}
	if failed != nil {
		return false, st.t.Write([]*xmlstream.Element{failed})
	}
	if err := st.t.Write([]*xmlstream.Element{r.answer}); err != nil {
		return false, err
	}
	st.resumed(r)
	return true, nil
}

// resumption is a session a new connection has taken over, before the
// client is told.
type resumption struct {
	sess   *session.Session
	answer *xmlstream.Element // <resumed/>
	remote bool               // taken over from another node of the cluster
}

// takeOver takes over the resumable session previd of st.user with the
// client's count h (XEP-0198 §5), from this node or, in cluster mode, from
// the node that holds it; it is then this stream's session. With no
// session to resume it returns the <failed/> to send instead; a count of
// stanzas never sent ends the session (its queue goes to the offline
// store) and returns the stream error of XEP-0198 §4.
//
// The caller writes r.answer (alone for <resume/>, inside <success/> for
// SASL2's inline resumption) and then calls resumed, which writes what
// the client has not acknowledged.
func (st *stream) takeOver(id, hAttr string) (*resumption, *xmlstream.Element, error) {
	h, err := strconv.ParseUint(hAttr, 10, 32)
	if err != nil || id == "" {
		return nil, smFailed("bad-request", "previd and h are required"), nil
	}
	st.svc.rmu.Lock()
	o := st.svc.sessions[id]
	var prev *stream
	ok := o != nil && o.sess.JID().Local() == st.user
	if ok {
		if _, resumable := o.sess.SM(); !resumable || o.sess.Closed() {
			ok = false
		}
	}
	if ok {
		prev = o.owner
		o.owner = st // from now on the old connection cannot end it
	}
	st.svc.rmu.Unlock()
	if !ok && o == nil && st.svc.remote != nil {
		return st.takeOverRemote(id, uint32(h))
	}
	if !ok {
		return nil, smFailed("item-not-found", "no session to resume"), nil
	}
	s := o.sess
	if prev != nil {
		prev.fail(&stanza.StreamError{Condition: "conflict", Text: "session resumed by another connection"})
	}
	s.Detach()
	seqs, err := s.Ack(uint32(h))
	if err != nil {
		st.svc.rmu.Lock()
		o.owner = nil
		st.svc.rmu.Unlock()
		go st.svc.end(s)
		return nil, nil, handledTooHigh(s, h)
	}
	if len(seqs) > 0 {
		st.svc.im.Hooks().Delivered(s, seqs)
	}
	st.sess = s
	st.cur.Store(s)
	st.bound.Store(true)
	st.log = st.log.With("jid", s.JID().String(), "resumed", id)
	return &resumption{sess: s, answer: resumedElement(s, id)}, nil, nil
}

// resumedElement is XEP-0198's <resumed/> for session s, formerly previd.
func resumedElement(s *session.Session, previd string) *xmlstream.Element {
	return xmlstream.New(nsSM, "resumed", "previd", previd, "h", strconv.FormatUint(uint64(s.InboundH()), 10))
}

// resumed continues a resumption once the client has been told: the
// session writes everything unacknowledged to this connection.
func (st *stream) resumed(r *resumption) {
	s := r.sess
	s.Attach(st.t)
	// Messages that arrived during a hand-over from another node went
	// to the store.
	if r.remote && s.Available() && s.Priority() >= 0 {
		st.svc.im.Router.Drain(context.Background(), s)
	}
}

// smNonza handles <enable/>, <r/> and <a/> on a bound session.
func (st *stream) smNonza(el *xmlstream.Element) error {
	s := st.sess
	switch el.Name {
	case "enable":
		if sm, _ := s.SM(); sm {
			s.SendControl(smFailed("unexpected-request", "stream management is already enabled"))
			return nil
		}
		s.SendControl(st.enableSM(s, el))
	case "r":
		if sm, _ := s.SM(); !sm {
			return nil
		}
		answer := func() {
			s.SendControl(xmlstream.New(nsSM, "a", "h", strconv.FormatUint(uint64(s.InboundH()), 10)))
		}
		if st.fin.busy() {
			// Answered once everything received before it is handled,
			// so the <a/> covers all of it.
			st.fin.add(answer)
		} else {
			answer()
		}
	case "a":
		h, err := strconv.ParseUint(el.Attr("h"), 10, 32)
		if err != nil {
			return &stanza.StreamError{Condition: "bad-format", Text: "<a/> needs a numeric h"}
		}
		seqs, err := s.Ack(uint32(h))
		if err != nil {
			return handledTooHigh(s, h)
		}
		if len(seqs) > 0 {
			st.svc.im.Hooks().Delivered(s, seqs)
		}
	default:
		return &stanza.StreamError{Condition: "unsupported-stanza-type", Text: "unknown stream management element"}
	}
	return nil
}

// enableSM enables stream management on s as <enable/> asks (XEP-0198
// §3) and returns the <enabled/> answer.
func (st *stream) enableSM(s *session.Session, enable *xmlstream.Element) *xmlstream.Element {
	resume := enable.Attr("resume") == "true" || enable.Attr("resume") == "1"
	s.EnableSM(resume)
	en := xmlstream.New(nsSM, "enabled", "id", s.ID())
	if resume {
		en.SetAttr("resume", "true")
		en.SetAttr("max", strconv.Itoa(int(st.svc.cfg.Stream.ResumeTimeout.Seconds())))
	}
	return en
}

// smFailed is XEP-0198's <failed/> with a stanza error condition.
func smFailed(cond, text string) *xmlstream.Element {
	f := xmlstream.New(nsSM, "failed")
	f.Append(xmlstream.New(stanza.NSStanzas, cond))
	if text != "" {
		f.Append(xmlstream.New(stanza.NSStanzas, "text").AppendText(text))
	}
	return f
}

// handledTooHigh is the stream error for an ack of stanzas never sent
// (XEP-0198 §4).
func handledTooHigh(s *session.Session, h uint64) *stanza.StreamError {
	sent := strconv.FormatUint(uint64(s.SentCount()), 10)
	return &stanza.StreamError{
		Condition: "undefined-condition",
		Text:      "you acknowledged " + strconv.FormatUint(h, 10) + " stanzas, but only " + sent + " were sent",
		App:       xmlstream.New(nsSM, "handled-count-too-high", "h", strconv.FormatUint(h, 10), "send-count", sent),
	}
}

// takeOverRemote takes the session over from the node that holds it
// (cluster mode) for takeOver.
func (st *stream) takeOverRemote(id string, h uint32) (*resumption, *xmlstream.Element, error) {
	ctx := context.Background()
	snap, err := st.svc.remote.Resume(ctx, id, st.user, h)
	if err != nil {
		return nil, smFailed("item-not-found", "no session to resume"), nil
	}
	s := session.Restore(snap, st.svc.cfg.Limits.MaxQueue, st.hooks())
	st.adopt(s)
	st.svc.im.Bound(ctx, s)
	st.log = st.log.With("jid", s.JID().String(), "resumed", id, "from_node", true)
	return &resumption{sess: s, answer: resumedElement(s, id), remote: true}, nil, nil
}
