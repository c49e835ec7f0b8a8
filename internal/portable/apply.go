package portable

import (
	"context"
	"errors"
	"fmt"
	"time"

	"bluetick/internal/pep"
	"bluetick/internal/store"
	"bluetick/internal/xmlstream"
)

// Importer puts what files hold into a store, through the store
// interfaces, so it works on SQLite and PostgreSQL alike.
//
// Importing is safe to repeat (after an interrupted run, or the same file
// twice): an account that exists keeps its password and gets the file's
// data merged in; roster items, the vCard, private XML and PEP items of
// the same id are replaced; PEP nodes that exist keep their
// configuration; an offline message already waiting for the account (the
// same serialized stanza) is not stored again; rooms that exist get the
// file's configuration, subject and affiliations.
type Importer struct {
	St     store.Store
	Domain string // the one host imported; accounts of others are skipped
	Now    func() time.Time
	Sum    Summary
}

// Summary is what an import did, for the operator.
type Summary struct {
	Users, UsersExisting int
	Contacts             int // roster items written
	VCards               int
	VCardsFromPEP        int // of VCards: built from a vCard4 PEP node (Prosody's mod_vcard_legacy)
	Private              int // private XML elements
	PEPNodes, PEPItems   int
	Offline              int // offline messages stored
	OfflineDuplicate     int // offline messages already there
	Blocked              int
	Rooms                int
	Affiliations         int
	// NoPassword lists "name: why" for accounts imported without a usable
	// credential: they cannot log in until given a password.
	NoPassword []string
	// SHA1Only lists accounts whose only credential is SCRAM-SHA-1.
	SHA1Only []string
	// Invalid lists accounts not imported at all, with why.
	Invalid []string
	// OtherHosts counts accounts of hosts other than Domain, by host.
	OtherHosts map[string]int
	// Skipped lists what was read but not imported ("name: what").
	Skipped []string
}

func (im *Importer) now() time.Time {
	if im.Now != nil {
		return im.Now()
	}
	return time.Now()
}

// Account imports one account.
func (im *Importer) Account(ctx context.Context, a *Account) error {
	s := &im.Sum
	if a.Host != im.Domain {
		if s.OtherHosts == nil {
			s.OtherHosts = map[string]int{}
		}
		s.OtherHosts[a.Host]++
		return nil
	}
	if a.Invalid != "" {
		s.Invalid = append(s.Invalid, a.Invalid)
		return nil
	}
	for _, sk := range a.Skipped {
		s.Skipped = append(s.Skipped, a.Name+": "+sk)
	}
	err := im.St.CreateUser(ctx, a.Name, a.Creds)
	switch {
	case errors.Is(err, store.ErrExists):
		s.UsersExisting++
	case err != nil:
		return fmt.Errorf("account %s: %w", a.Name, err)
	default:
		s.Users++
		if a.NoPassword != "" {
			s.NoPassword = append(s.NoPassword, a.Name+": "+a.NoPassword)
		} else if len(a.Creds) == 1 && a.Creds[0].Mechanism == "SCRAM-SHA-1" {
			s.SHA1Only = append(s.SHA1Only, a.Name)
		}
	}
	for _, it := range a.Roster {
		if it.Contact == a.Name+"@"+im.Domain {
			continue // a contact of oneself: RFC 6121 has no such item
		}
		if it.Groups == nil {
			it.Groups = []string{}
		}
		if _, err := im.St.PutRosterItem(ctx, a.Name, it); err != nil {
			return fmt.Errorf("account %s: roster item %s: %w", a.Name, it.Contact, err)
		}
		s.Contacts++
	}
	if a.VCard != nil {
		if err := im.St.SetVCard(ctx, a.Name, xmlstream.Append(nil, a.VCard, "")); err != nil {
			return fmt.Errorf("account %s: vCard: %w", a.Name, err)
		}
		s.VCards++
	} else if v := vcardFromPEP(a); v != nil {
		// Only where the account has none: a vcard-temp set on Bluetick
		// is newer than the old server's vCard4.
		if _, err := im.St.VCard(ctx, a.Name); errors.Is(err, store.ErrNotFound) {
			if err := im.St.SetVCard(ctx, a.Name, xmlstream.Append(nil, v, "")); err != nil {
				return fmt.Errorf("account %s: vCard: %w", a.Name, err)
			}
			s.VCards++
			s.VCardsFromPEP++
		} else if err != nil {
			return fmt.Errorf("account %s: vCard: %w", a.Name, err)
		}
	}
	for _, p := range a.Private {
		if p.Space == "" {
			s.Skipped = append(s.Skipped, a.Name+": private XML <"+p.Name+"/> without a namespace")
			continue
		}
		if err := im.St.SetPrivateXML(ctx, a.Name, p.Space, xmlstream.Append(nil, p, "")); err != nil {
			return fmt.Errorf("account %s: private XML %s: %w", a.Name, p.Space, err)
		}
		s.Private++
	}
	for _, n := range a.PEP {
		if err := im.pepNode(ctx, a.Name, n); err != nil {
			return fmt.Errorf("account %s: PEP node %s: %w", a.Name, n.Node, err)
		}
	}
	if err := im.offline(ctx, a); err != nil {
		return fmt.Errorf("account %s: offline messages: %w", a.Name, err)
	}
	if len(a.Blocked) > 0 {
		if err := im.St.Block(ctx, a.Name, a.Blocked); err != nil {
			return fmt.Errorf("account %s: blocklist: %w", a.Name, err)
		}
		s.Blocked += len(a.Blocked)
	}
	return nil
}

// pepNode creates the node unless it exists (an existing node keeps its
// configuration) and publishes the items, oldest first, under the node's
// item limit.
func (im *Importer) pepNode(ctx context.Context, user string, n PEPNode) error {
	keep := 0
	cur, err := im.St.PEPNode(ctx, user, n.Node)
	switch {
	case errors.Is(err, store.ErrNotFound):
		raw, k, skipped := pep.ImportNodeConfig(n.Form)
		for _, f := range skipped {
			im.Sum.Skipped = append(im.Sum.Skipped, fmt.Sprintf("%s: PEP node %s: option %s", user, n.Node, f))
		}
		if err := im.St.CreatePEPNode(ctx, user, store.PEPNode{Node: n.Node, Config: raw}); err != nil {
			return err
		}
		keep = k
		im.Sum.PEPNodes++
	case err != nil:
		return err
	default:
		keep = pep.NodeKeep(cur.Config)
	}
	publisher := user + "@" + im.Domain
	for _, it := range n.Items {
		item := store.PEPItem{ID: it.ID, Publisher: publisher, Published: im.now().UTC(), Payload: xmlstream.Append(nil, it.Payload, "")}
		if err := im.St.PublishPEPItem(ctx, user, n.Node, item, keep); err != nil {
			return err
		}
		im.Sum.PEPItems++
	}
	return nil
}

// offline stores the account's offline messages after those already
// waiting, skipping any already there: the same stanza, compared without
// its XEP-0203 delays, since a message the file has without one gets one
// stamped at import time, a different one at each import. A stored
// message that does not parse is compared as it is.
func (im *Importer) offline(ctx context.Context, a *Account) error {
	if len(a.Offline) == 0 {
		return nil
	}
	have, err := im.St.OfflineMessages(ctx, a.Name, 0)
	if err != nil {
		return err
	}
	seen := make(map[string]bool, len(have))
	for _, h := range have {
		if el, err := xmlstream.Parse(h.Data, storedLimits); err == nil {
			seen[undelayed(el)] = true
		} else {
			seen[string(h.Data)] = true
		}
	}
	now := im.now().UTC()
	for _, m := range a.Offline {
		key := undelayed(m)
		if seen[key] {
			im.Sum.OfflineDuplicate++
			continue
		}
		seen[key] = true
		stored := now
		if d := m.Child(nsDelay, "delay"); d == nil {
			m.Append(xmlstream.New(nsDelay, "delay", "from", im.Domain, "stamp", now.Format("2006-01-02T15:04:05.000Z")).AppendText("Offline Storage"))
		} else if t, err := time.Parse(time.RFC3339Nano, d.Attr("stamp")); err == nil {
			stored = t
		}
		msg := store.OfflineMessage{From: m.Attr("from"), Stored: stored, Data: xmlstream.Append(nil, m, "")}
		if _, err := im.St.StoreOffline(ctx, a.Name, msg, 0); err != nil {
			return err
		}
		im.Sum.Offline++
	}
	return nil
}

// undelayed is a message's serialization without its delay elements: the
// identity of an offline message across imports.
func undelayed(m *xmlstream.Element) string {
	c := xmlstream.Element{Name: m.Name, Attrs: m.Attrs, Children: make([]xmlstream.Node, 0, len(m.Children))}
	for _, n := range m.Children {
		if n.Elem != nil && n.Elem.Space == nsDelay && n.Elem.Name == "delay" {
			continue
		}
		c.Children = append(c.Children, n)
	}
	c.Space = nsClient
	return string(xmlstream.Append(nil, &c, ""))
}

// Room imports one group chat room of host.
func (im *Importer) Room(ctx context.Context, host string, r *Room) error {
	if host != im.Domain {
		return nil
	}
	room := store.Room{JID: r.JID, Config: r.Config, Subject: r.Subject, SubjectFrom: r.SubjectFrom, Created: r.Created}
	if room.Created.IsZero() {
		room.Created = im.now().UTC()
	}
	err := im.St.CreateRoom(ctx, room)
	if errors.Is(err, store.ErrExists) {
		err = im.St.UpdateRoom(ctx, room)
	}
	if err != nil {
		return fmt.Errorf("room %s: %w", r.JID, err)
	}
	im.Sum.Rooms++
	for _, a := range r.Affiliations {
		if err := im.St.SetAffiliation(ctx, r.JID, a); err != nil {
			return fmt.Errorf("room %s: affiliation of %s: %w", r.JID, a.JID, err)
		}
		im.Sum.Affiliations++
	}
	return nil
}
