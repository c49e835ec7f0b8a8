package muc

import (
	"context"
	"errors"
	"strconv"
	"time"

	"bluetick/internal/stanza"
	"bluetick/internal/store"
	"bluetick/internal/xmlstream"
)

// Archive paging bounds (XEP-0313 §4.3 leaves them to the server).
const (
	mamDefaultPage = 50
	mamMaxPage     = 250
	historyMax     = 200
)

var parseLimits = xmlstream.Limits{}

// mamFormLocked answers a request for the query form (XEP-0313 §5.1).
func (s *Service) mamFormLocked(r *Room, iq *iqReq) (*xmlstream.Element, error) {
	f := newForm("form", NSMAM, "")
	f.field("with", "jid-single", "Sender")
	f.field("start", "text-single", "Start")
	f.field("end", "text-single", "End")
	q := xmlstream.New(NSMAM, "query")
	q.Append(f.x)
	return q, nil
}

func parseStamp(v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return t, stanza.NewError("bad-request", "timestamps are XEP-0082 date-times, e.g. 2026-01-02T15:04:05Z")
	}
	return t, nil
}

// mamQueryLocked runs an archive query on the room (XEP-0313 §4 with
// XEP-0059 paging): each match goes out as a result message, then the IQ
// result carries <fin/> with the page's first and last ids. Members only
// in a members-only room; never to outcasts.
func (s *Service) mamQueryLocked(ctx context.Context, r *Room, iq *iqReq) (*xmlstream.Element, error) {
	if !r.canRead(iq.from) {
		return nil, stanza.NewError("forbidden", "only members may read this group's archive")
	}
	var q store.RoomQuery
	if x := iq.payload.Child(NSData, "x"); x != nil {
		f, err := ParseForm(x)
		if err != nil {
			return nil, err
		}
		if ft := f.FormType(); ft != "" && ft != NSMAM {
			return nil, stanza.NewError("bad-request", "FORM_TYPE must be "+NSMAM)
		}
		for v := range f.Fields {
			switch v {
			case "FORM_TYPE", "with", "start", "end":
			default:
				return nil, stanza.NewError("bad-request", "unsupported filter field "+strconv.Quote(v))
			}
		}
		if w := f.Value("with"); w != "" {
			q.With = w
			if j, err := parseJID(w); err == nil {
				q.With = j.Bare().String()
			} else {
				return nil, stanza.NewError("jid-malformed", "with must be a JID")
			}
		}
		if v := f.Value("start"); v != "" {
			if q.Start, err = parseStamp(v); err != nil {
				return nil, err
			}
		}
		if v := f.Value("end"); v != "" {
			if q.End, err = parseStamp(v); err != nil {
				return nil, err
			}
		}
	}
	q.Max = mamDefaultPage
	zero := false
	if set := iq.payload.Child(NSRSM, "set"); set != nil {
		if m := set.Child(NSRSM, "max"); m != nil {
			n, err := strconv.Atoi(m.Text())
			if err != nil || n < 0 {
				return nil, stanza.NewError("bad-request", "rsm max must be a non-negative integer")
			}
			q.Max = min(n, mamMaxPage)
			zero = n == 0
		}
		q.After = set.ChildText(NSRSM, "after")
		if b := set.Child(NSRSM, "before"); b != nil {
			q.Before = b.Text()
			q.Last = q.Before == ""
		}
		if set.Child(NSRSM, "index") != nil {
			return nil, stanza.NewError("feature-not-implemented", "paging by index is not supported; use after/before")
		}
	}
	if zero {
		q.Max = 1 // only whether anything matches
	}
	msgs, more, err := s.st.RoomMessages(ctx, r.jid.String(), q)
	if errors.Is(err, store.ErrNotFound) {
		return nil, stanza.NewError("item-not-found", "no archived message has that id")
	}
	if err != nil {
		return nil, err
	}
	if zero {
		more, msgs = len(msgs) > 0, nil
	}
	queryID := iq.payload.Attr("queryid")
	for _, m := range msgs {
		el, err := xmlstream.Parse(m.Data, parseLimits)
		if err != nil {
			s.log.Error("muc: unreadable archived message", "room", r.jid.String(), "id", m.StanzaID, "err", err)
			continue
		}
		out := xmlstream.New(xmlstream.NSClient, "message", "from", r.jid.String(), "to", iq.from.String(), "id", newID())
		res := xmlstream.New(NSMAM, "result", "queryid", queryID, "id", m.StanzaID)
		fw := xmlstream.New(NSForward, "forwarded")
		fw.Append(xmlstream.New(NSDelay, "delay", "stamp", stamp(m.Stored)))
		fw.Append(el)
		out.Append(res.Append(fw))
		if err := s.send(ctx, iq.from, out); err != nil {
			return nil, stanza.NewError("resource-constraint", "could not deliver the results")
		}
	}
	fin := xmlstream.New(NSMAM, "fin")
	// complete: the page reaches the end of the results in the paging
	// direction (XEP-0313 §4.3).
	if !more {
		fin.SetAttr("complete", "true")
	}
	set := xmlstream.New(NSRSM, "set")
	if len(msgs) > 0 {
		set.Append(xmlstream.New(NSRSM, "first").AppendText(msgs[0].StanzaID))
		set.Append(xmlstream.New(NSRSM, "last").AppendText(msgs[len(msgs)-1].StanzaID))
	}
	fin.Append(set)
	return fin, nil
}

// sendHistoryLocked sends a joining occupant the recent messages it asked
// for (XEP-0045 §7.2.15), each with a delay stamp: by default the last
// muc.history_on_join messages; <history/> may ask for fewer or more
// (maxstanzas, up to 200), a character budget (maxchars) or a time window
// (seconds, since). Readers only: a non-member never gets here in a
// members-only room.
func (s *Service) sendHistoryLocked(ctx context.Context, r *Room, o *occupant, x *xmlstream.Element) {
	n := s.cfg.HistoryOnJoin
	maxChars := -1
	var since time.Time
	if x != nil {
		if h := x.Child(NS, "history"); h != nil {
			if v := h.Attr("maxstanzas"); v != "" {
				if k, err := strconv.Atoi(v); err == nil && k >= 0 {
					n = min(k, historyMax)
				}
			}
			if v := h.Attr("maxchars"); v != "" {
				if k, err := strconv.Atoi(v); err == nil && k >= 0 {
					maxChars = k
				}
			}
			if v := h.Attr("seconds"); v != "" {
				if k, err := strconv.Atoi(v); err == nil && k >= 0 {
					since = s.now().Add(-time.Duration(k) * time.Second)
				}
			}
			if v := h.Attr("since"); v != "" {
				if t, err := time.Parse(time.RFC3339Nano, v); err == nil && t.After(since) {
					since = t
				}
			}
		}
	}
	if n == 0 || maxChars == 0 || r.locked {
		return
	}
	msgs, _, err := s.st.RoomMessages(ctx, r.jid.String(), store.RoomQuery{Last: true, Max: n, Start: since})
	if err != nil {
		s.log.Error("muc: history", "room", r.jid.String(), "err", err)
		return
	}
	if maxChars > 0 {
		total, first := 0, len(msgs)
		for i := len(msgs) - 1; i >= 0; i-- {
			total += len(msgs[i].Data)
			if total > maxChars {
				break
			}
			first = i
		}
		msgs = msgs[first:]
	}
	for _, m := range msgs {
		el, err := xmlstream.Parse(m.Data, parseLimits)
		if err != nil {
			continue
		}
		el.SetAttr("to", o.full.String())
		el.Append(xmlstream.New(NSDelay, "delay", "from", r.jid.String(), "stamp", stamp(m.Stored)))
		_ = s.send(ctx, o.full, el)
	}
}
