package xmlstream

import "slices"

// Shared is one stanza sent to many recipients that differ only in their
// attributes — a group message fanned out to every occupant, where only
// 'to' changes. Share serializes the children once; each recipient's
// element (With) reuses those bytes, so the per-recipient cost is a small
// element and a memcpy instead of a deep copy and a full serialization
// with escaping (see BenchmarkFanout in package muc).
//
// Instances share their child elements: treat them as read-only. The
// mutators of Element (Append, AppendText, RemoveChildren) give an
// instance its own child list first; Copy returns a private deep copy.
type Shared struct {
	el   *Element
	body []byte
}

// Share serializes e's children once. e must not change afterwards.
func Share(e *Element) *Shared {
	s := &Shared{el: e}
	if len(e.Children) > 0 {
		body := make([]byte, 0, 256)
		for _, n := range e.Children {
			if n.Elem != nil {
				body = Append(body, n.Elem, e.Space)
			} else {
				body = appendEscaped(body, n.Text, false)
			}
		}
		s.body = body
	}
	return s
}

// Element returns the shared element itself (read-only).
func (s *Shared) Element() *Element { return s.el }

// With returns an instance of the shared element with attribute name set
// to value (added, replaced, or removed when value is empty).
func (s *Shared) With(name, value string) *Element {
	e := &Element{Space: s.el.Space, Name: s.el.Name, body: s.body}
	e.Attrs = make([]Attr, len(s.el.Attrs), len(s.el.Attrs)+1)
	copy(e.Attrs, s.el.Attrs)
	e.SetAttr(name, value)
	if n := len(s.el.Children); n > 0 {
		e.Children = s.el.Children[:n:n]
	}
	return e
}

// unshare gives an instance made by With its own child list before a
// mutation, and forgets the pre-serialized body.
func (e *Element) unshare() {
	if e.body != nil {
		e.body = nil
		e.Children = slices.Clone(e.Children)
	}
}
