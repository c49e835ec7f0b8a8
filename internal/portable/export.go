package portable

import (
	"context"
	"errors"
	"fmt"

	"bluetick/internal/store"
	"bluetick/internal/xmlstream"
)

// storedLimits bound the stored documents parsed for export: generous,
// since the server wrote them and an avatar-laden vCard or a large PEP
// item is legitimate.
var storedLimits = xmlstream.Limits{MaxElementBytes: 16 << 20}

// readAccount collects everything the store holds for user. A stored
// document that no longer parses (a hand-edited database) is left out
// and named in Skipped rather than failing the export.
func readAccount(ctx context.Context, st store.Store, domain, user string) (*Account, error) {
	a := &Account{Host: domain, Name: user}
	for _, mech := range []string{"SCRAM-SHA-256", "SCRAM-SHA-1"} {
		c, err := st.Credential(ctx, user, mech)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		a.Creds = append(a.Creds, c)
	}
	items, _, err := st.Roster(ctx, user)
	if err != nil {
		return nil, err
	}
	a.Roster = items
	parse := func(what string, b []byte) *xmlstream.Element {
		el, err := xmlstream.Parse(b, storedLimits)
		if err != nil {
			a.Skipped = append(a.Skipped, fmt.Sprintf("%s: unreadable in the store (%v)", what, err))
			return nil
		}
		return el
	}
	if b, err := st.VCard(ctx, user); err == nil {
		a.VCard = parse("vCard", b)
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if pl, ok := st.(store.PrivateLister); ok {
		nss, err := pl.PrivateXMLNamespaces(ctx, user)
		if err != nil {
			return nil, err
		}
		for _, ns := range nss {
			b, err := st.PrivateXML(ctx, user, ns)
			if err != nil {
				return nil, err
			}
			if el := parse("private XML "+ns, b); el != nil {
				a.Private = append(a.Private, el)
			}
		}
	} else {
		a.Skipped = append(a.Skipped, "private XML: this store cannot list it")
	}
	nodes, err := st.PEPNodes(ctx, user)
	if err != nil {
		return nil, err
	}
	for _, n := range nodes {
		node := PEPNode{Node: n.Node, Form: exportNodeConfig(n.Config)}
		its, err := st.PEPItems(ctx, user, n.Node, nil, 0)
		if err != nil {
			return nil, err
		}
		for _, it := range its {
			if el := parse("PEP item "+n.Node+"/"+it.ID, it.Payload); el != nil {
				node.Items = append(node.Items, PEPItem{ID: it.ID, Payload: el})
			}
		}
		a.PEP = append(a.PEP, node)
	}
	msgs, err := st.OfflineMessages(ctx, user, 0)
	if err != nil {
		return nil, err
	}
	for _, m := range msgs {
		if el := parse(fmt.Sprintf("offline message %d", m.Seq), m.Data); el != nil {
			el.Space = nsClient
			a.Offline = append(a.Offline, el)
		}
	}
	if a.Blocked, err = st.Blocklist(ctx, user); err != nil {
		return nil, err
	}
	return a, nil
}

// readRoom collects one room and its affiliations.
func readRoom(ctx context.Context, st store.Store, r store.Room) (*Room, error) {
	affs, err := st.Affiliations(ctx, r.JID)
	if err != nil {
		return nil, err
	}
	return &Room{JID: r.JID, Config: r.Config, Subject: r.Subject, SubjectFrom: r.SubjectFrom, Created: r.Created, Affiliations: affs}, nil
}
