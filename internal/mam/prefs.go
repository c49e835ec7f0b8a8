package mam

import (
	"context"
	"errors"

	"bluetick/internal/jid"
	"bluetick/internal/stanza"
	"bluetick/internal/store"
	"bluetick/internal/xmlstream"
)

// Archiving preferences (XEP-0441, formerly XEP-0313 §6): a default of
// always, never or roster, and JIDs always or never archived. They are
// per user and in the store, so every device and every node honours them.

// maxPrefsJIDs bounds one preferences list.
const maxPrefsJIDs = 1000

// ParsePrefs reads a <prefs/> of an IQ set.
func ParsePrefs(el *xmlstream.Element) (store.ArchivePrefs, error) {
	var p store.ArchivePrefs
	switch d := el.Attr("default"); d {
	case "always", "never", "roster":
		p.Default = d
	default:
		return p, badRequest("default must be always, never or roster")
	}
	seen := map[string]bool{}
	for _, list := range el.Elements() {
		if list.Space != NS || (list.Name != "always" && list.Name != "never") {
			continue
		}
		for _, j := range list.Elements() {
			if j.Space != NS || j.Name != "jid" {
				continue
			}
			v, err := jid.Parse(j.Text())
			if err != nil {
				return p, stanza.NewError("jid-malformed", "not a valid JID in the preferences")
			}
			s := v.String()
			if seen[s] {
				return p, badRequest(s + " is listed twice")
			}
			seen[s] = true
			if list.Name == "always" {
				p.Always = append(p.Always, s)
			} else {
				p.Never = append(p.Never, s)
			}
			if len(seen) > maxPrefsJIDs {
				return p, stanza.NewError("policy-violation", "too many JIDs in the preferences")
			}
		}
	}
	return p, nil
}

// PrefsElement renders preferences.
func PrefsElement(p store.ArchivePrefs) *xmlstream.Element {
	el := xmlstream.New(NS, "prefs", "default", p.Default)
	always, never := xmlstream.New(NS, "always"), xmlstream.New(NS, "never")
	for _, j := range p.Always {
		always.Append(xmlstream.New(NS, "jid").AppendText(j))
	}
	for _, j := range p.Never {
		never.Append(xmlstream.New(NS, "jid").AppendText(j))
	}
	return el.Append(always, never)
}

// Prefs returns the user's preferences, the default (always) if unset.
func (a *Archive) Prefs(ctx context.Context, user jid.JID) (store.ArchivePrefs, error) {
	p, err := a.st.ArchivePrefs(ctx, user.Local())
	if errors.Is(err, store.ErrNotFound) {
		return store.ArchivePrefs{Default: "always"}, nil
	}
	return p, err
}

// SetPrefs stores the user's preferences.
func (a *Archive) SetPrefs(ctx context.Context, user jid.JID, p store.ArchivePrefs) error {
	return a.st.SetArchivePrefs(ctx, user.Local(), p)
}
