package server

import (
	"context"
	"sync"

	"bluetick/internal/jid"
	"bluetick/internal/stanza"
	"bluetick/internal/xmlstream"
)

// Requests the server itself sends to a client (a disco#info query for
// XEP-0115 capabilities) and the goroutines waiting for their answers.
// An answer is matched by id and by its sender, which the server stamped
// (from = the session's full JID), so one client cannot answer a query
// sent to another.

type waiter struct {
	to jid.JID
	ch chan *xmlstream.Element
}

type pendingIQs struct {
	mu sync.Mutex
	m  map[string]waiter
}

// Query sends <iq type='get'/> with payload from the domain to a full JID
// and waits for the answer (or ctx): the result's payload (nil if empty),
// or the stanza error the client answered with.
func (s *Server) Query(ctx context.Context, to jid.JID, payload *xmlstream.Element) (*xmlstream.Element, error) {
	r := s.Router.Session(to)
	if r == nil {
		return nil, ErrNoSession
	}
	id := "bt-" + NewID()
	ch := make(chan *xmlstream.Element, 1)
	s.pending.mu.Lock()
	if s.pending.m == nil {
		s.pending.m = map[string]waiter{}
	}
	s.pending.m[id] = waiter{to: to, ch: ch}
	s.pending.mu.Unlock()
	defer func() {
		s.pending.mu.Lock()
		delete(s.pending.m, id)
		s.pending.mu.Unlock()
	}()
	iq := xmlstream.New(xmlstream.NSClient, "iq", "type", "get", "id", id, "from", s.Domain.String(), "to", to.String())
	if err := r.Send(iq.Append(payload)); err != nil {
		return nil, err
	}
	select {
	case el := <-ch:
		if el.Attr("type") == "error" {
			se := stanza.NewError("undefined-condition", "")
			if e := el.Child(xmlstream.NSClient, "error"); e != nil {
				for _, c := range e.Elements() {
					if c.Space == stanza.NSStanzas && c.Name != "text" {
						se = stanza.NewError(c.Name, "")
					}
				}
			}
			return nil, se
		}
		return el.FirstChild(), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// answered hands an IQ result or error from a session to the Query
// waiting for it; false if none waits (the caller drops it, as before).
func (s *Server) answered(from jid.JID, el *xmlstream.Element) bool {
	id := el.Attr("id")
	s.pending.mu.Lock()
	w, ok := s.pending.m[id]
	if ok && w.to == from {
		delete(s.pending.m, id)
	}
	s.pending.mu.Unlock()
	if !ok || w.to != from {
		return false
	}
	w.ch <- el
	return true
}
