package mam

import (
	"strconv"
	"strings"
	"time"

	"bluetick/internal/jid"
	"bluetick/internal/stanza"
	"bluetick/internal/store"
	"bluetick/internal/xmlstream"
)

// Paging limits. A client that asks for no maximum gets DefaultMax; one
// that asks for more than MaxPage gets MaxPage (XEP-0313 §4.3.3 lets the
// server limit pages; the fin tells the client it is not complete), so
// one query costs the server a bounded amount of work and queue.
const (
	DefaultMax = 50
	MaxPage    = 250
	// maxIDs bounds the 'ids' field the same way.
	maxIDs = MaxPage
)

// Query is one parsed archive query: the store's selection plus what only
// the protocol layer needs.
type Query struct {
	store.ArchiveQuery
	QueryID string
	Flip    bool // XEP-0313 §4.3.4 flip-page: send the page newest first
}

func badRequest(text string) error { return stanza.NewError("bad-request", text) }

// ParseQuery reads a <query xmlns='urn:xmpp:mam:2'/> of an IQ set: its
// XEP-0004 form (FORM_TYPE, with, start, end, before-id, after-id, ids)
// and XEP-0059 set (max, after, before). Bad input is a *stanza.Error:
// bad-request for malformed values, jid-malformed for a bad 'with',
// feature-not-implemented for fields and RSM features it does not know
// (XEP-0313 §4.1.2, XEP-0059 §2.5).
func ParseQuery(q *xmlstream.Element) (Query, error) {
	var out Query
	out.QueryID = q.Attr("queryid")
	out.Max = DefaultMax
	if q.Attr("node") != "" {
		return out, stanza.NewError("item-not-found", "a user archive has no nodes")
	}
	for _, c := range q.Elements() {
		switch {
		case c.Space == NSData && c.Name == "x":
			if err := parseForm(c, &out); err != nil {
				return out, err
			}
		case c.Space == NSRSM && c.Name == "set":
			if err := parseRSM(c, &out); err != nil {
				return out, err
			}
		case c.Space == NS && c.Name == "flip-page":
			out.Flip = true
		default:
			return out, stanza.NewError("feature-not-implemented", "unknown element <"+c.Name+"/> in the query")
		}
	}
	return out, nil
}

// fieldValues returns the <value/> texts of a form field.
func fieldValues(f *xmlstream.Element) []string {
	var vs []string
	for _, v := range f.Elements() {
		if v.Space == NSData && v.Name == "value" {
			vs = append(vs, v.Text())
		}
	}
	return vs
}

func parseForm(x *xmlstream.Element, q *Query) error {
	if t := x.Attr("type"); t != "submit" && t != "" {
		return badRequest("the query form must be of type submit")
	}
	seen := map[string]bool{}
	for _, f := range x.Elements() {
		if f.Space != NSData || f.Name != "field" {
			continue
		}
		name := f.Attr("var")
		if seen[name] {
			return badRequest("field " + name + " appears twice")
		}
		seen[name] = true
		vs := fieldValues(f)
		single := func() (string, bool, error) {
			switch len(vs) {
			case 0:
				return "", false, nil
			case 1:
				return strings.TrimSpace(vs[0]), vs[0] != "", nil
			}
			return "", false, badRequest("field " + name + " takes one value")
		}
		switch name {
		case "FORM_TYPE":
			v, _, err := single()
			if err != nil {
				return err
			}
			if v != NS {
				return badRequest("FORM_TYPE must be " + NS)
			}
		case "with":
			v, ok, err := single()
			if err != nil || !ok {
				return err
			}
			j, err := jid.Parse(v)
			if err != nil {
				return stanza.NewError("jid-malformed", "the 'with' field is not a valid JID")
			}
			q.With = j.String()
		case "start", "end":
			v, ok, err := single()
			if err != nil || !ok {
				return err
			}
			t, err := parseTime(v)
			if err != nil {
				return badRequest("field " + name + " is not a XEP-0082 date-time")
			}
			if name == "start" {
				q.Start = t
			} else {
				q.End = t
			}
		case "before-id", "after-id":
			v, ok, err := single()
			if err != nil || !ok {
				return err
			}
			if name == "before-id" {
				q.Before = append(q.Before, v)
			} else {
				q.After = append(q.After, v)
			}
		case "ids":
			if len(vs) > maxIDs {
				return stanza.NewError("policy-violation", "too many ids")
			}
			for _, v := range vs {
				if v = strings.TrimSpace(v); v == "" {
					return badRequest("empty id")
				}
				q.IDs = append(q.IDs, v)
			}
		default:
			return stanza.NewError("feature-not-implemented", "unknown query field "+name)
		}
	}
	return nil
}

// parseTime reads a XEP-0082 DateTime (CCYY-MM-DDThh:mm:ss[.sss]TZD).
func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}

func parseRSM(set *xmlstream.Element, q *Query) error {
	seen := map[string]bool{}
	for _, c := range set.Elements() {
		if c.Space != NSRSM {
			continue
		}
		if seen[c.Name] {
			return badRequest("<" + c.Name + "/> appears twice in the result set")
		}
		seen[c.Name] = true
		v := strings.TrimSpace(c.Text())
		switch c.Name {
		case "max":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return badRequest("<max/> must be a non-negative integer")
			}
			q.Max = min(n, MaxPage)
		case "after":
			if v == "" {
				return badRequest("<after/> needs an id")
			}
			q.After = append(q.After, v)
		case "before":
			// Empty: the last page (XEP-0059 §2.5); with an id: the
			// page before it. Either way the page ends at the bound.
			q.FromEnd = true
			if v != "" {
				q.Before = append(q.Before, v)
			}
		case "index":
			return stanza.NewError("feature-not-implemented", "paging by index is not supported; use after/before")
		}
	}
	return nil
}
