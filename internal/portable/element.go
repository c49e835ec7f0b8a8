package portable

import (
	"encoding/base64"
	"strconv"
	"time"

	"bluetick/internal/pep"
	"bluetick/internal/xmlstream"
)

func exportNodeConfig(raw []byte) *xmlstream.Element { return pep.ExportNodeConfig(raw) }

// accountElement is the <user/> element of an account, in the layout of
// XEP-0227 1.1 and of Prosody's exporter.
func accountElement(a *Account) *xmlstream.Element {
	u := xmlstream.New(NS, "user", "name", a.Name)
	b64 := base64.StdEncoding.EncodeToString
	for _, c := range a.Creds {
		sc := xmlstream.New(NSSCRAM, "scram-credentials", "mechanism", c.Mechanism)
		sc.Append(
			xmlstream.New(NSSCRAM, "iter-count").AppendText(strconv.Itoa(c.Iterations)),
			xmlstream.New(NSSCRAM, "salt").AppendText(b64(c.Salt)),
			xmlstream.New(NSSCRAM, "server-key").AppendText(b64(c.ServerKey)),
			xmlstream.New(NSSCRAM, "stored-key").AppendText(b64(c.StoredKey)),
		)
		u.Append(sc)
	}
	q := xmlstream.New(nsRoster, "query")
	var pending []*xmlstream.Element
	for _, it := range a.Roster {
		if it.PendingIn {
			pending = append(pending, xmlstream.New(nsClient, "presence", "from", it.Contact, "to", a.Name+"@"+a.Host, "type", "subscribe"))
		}
		if !it.InRoster {
			continue
		}
		ask, approved := "", ""
		if it.PendingOut {
			ask = "subscribe"
		}
		if it.Approved {
			approved = "true"
		}
		item := xmlstream.New(nsRoster, "item", "jid", it.Contact, "name", it.Name, "subscription", it.Subscription, "ask", ask, "approved", approved)
		for _, g := range it.Groups {
			item.Append(xmlstream.New(nsRoster, "group").AppendText(g))
		}
		q.Append(item)
	}
	u.Append(q)
	u.Append(pending...)
	if a.VCard != nil {
		u.Append(a.VCard)
	}
	if len(a.Private) > 0 {
		u.Append(xmlstream.New(nsPrivate, "query").Append(a.Private...))
	}
	if len(a.PEP) > 0 {
		owner := xmlstream.New(nsPubSubOwner, "pubsub")
		items := xmlstream.New(nsPubSub, "pubsub")
		for _, n := range a.PEP {
			cfg := xmlstream.New(nsPubSubOwner, "configure", "node", n.Node)
			if n.Form != nil {
				cfg.Append(n.Form)
			}
			owner.Append(cfg)
			if len(n.Items) == 0 {
				continue
			}
			its := xmlstream.New(nsPubSub, "items", "node", n.Node)
			for _, it := range n.Items {
				its.Append(xmlstream.New(nsPubSub, "item", "id", it.ID).Append(it.Payload))
			}
			items.Append(its)
		}
		u.Append(owner, items)
	}
	if len(a.Offline) > 0 {
		u.Append(xmlstream.New(NS, "offline-messages").Append(a.Offline...))
	}
	if len(a.Blocked) > 0 {
		bl := xmlstream.New(nsBlocking, "blocklist")
		for _, j := range a.Blocked {
			bl.Append(xmlstream.New(nsBlocking, "item", "jid", j))
		}
		u.Append(bl)
	}
	return u
}

// roomElement is Bluetick's <room/> extension element.
func roomElement(r *Room) *xmlstream.Element {
	created := ""
	if !r.Created.IsZero() {
		created = r.Created.UTC().Format(time.RFC3339Nano)
	}
	el := xmlstream.New(NSRooms, "room", "jid", r.JID, "created", created)
	if len(r.Config) > 0 {
		el.Append(xmlstream.New(NSRooms, "config").AppendText(string(r.Config)))
	}
	if r.Subject != "" || r.SubjectFrom != "" {
		el.Append(xmlstream.New(NSRooms, "subject", "by", r.SubjectFrom).AppendText(r.Subject))
	}
	for _, a := range r.Affiliations {
		el.Append(xmlstream.New(NSRooms, "affiliation", "jid", a.JID, "affiliation", a.Affiliation, "nick", a.Nick, "reason", a.Reason))
	}
	return el
}
