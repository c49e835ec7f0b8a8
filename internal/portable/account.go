package portable

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"bluetick/internal/auth"
	"bluetick/internal/jid"
	"bluetick/internal/store"
	"bluetick/internal/xmlstream"
)

// parseAccount converts a <user/> subtree. Problems confined to the
// account (a bad name, an unusable credential, a bad roster item) are
// recorded in it rather than failing the file: the rest of the server's
// accounts still import.
func parseAccount(host string, u *xmlstream.Element) (*Account, error) {
	a := &Account{Host: host, Name: u.Attr("name")}
	if a.Name == "" {
		return nil, errors.New("<user/> without a name")
	}
	local, err := jid.PrepareLocal(a.Name)
	if err != nil {
		a.Invalid = fmt.Sprintf("%q is not a valid account name: %v", a.Name, err)
		return a, nil
	}
	a.Name = local
	var scram []*xmlstream.Element
	var pending []string
	for _, c := range u.Elements() {
		switch {
		case c.Space == NSSCRAM && c.Name == "scram-credentials":
			scram = append(scram, c)
		case c.Space == nsRoster && c.Name == "query":
			a.parseRoster(c)
		case c.Name == "presence" && (c.Space == nsClient || isPIE(c.Space)) && c.Attr("type") == "subscribe":
			if j, err := jid.Parse(c.Attr("from")); err == nil {
				pending = append(pending, j.BareString())
			} else {
				a.Skipped = append(a.Skipped, fmt.Sprintf("subscription request from %q (not a JID)", c.Attr("from")))
			}
		case c.Space == nsVCard && c.Name == "vCard":
			a.VCard = c
		case c.Space == nsPrivate && c.Name == "query":
			a.Private = append(a.Private, c.Elements()...)
		case c.Space == nsPubSubOwner && c.Name == "pubsub":
			a.parsePEPConfig(c)
		case c.Space == nsPubSub && c.Name == "pubsub":
			a.parsePEPItems(c)
		case c.Name == "offline-messages":
			for _, m := range c.Elements() {
				if m.Name != "message" || (m.Space != nsClient && !isPIE(m.Space) && m.Space != "") {
					a.Skipped = append(a.Skipped, fmt.Sprintf("{%s}%s among the offline messages", m.Space, m.Name))
					continue
				}
				m.Space = nsClient
				a.Offline = append(a.Offline, m)
			}
		case c.Space == nsBlocking && c.Name == "blocklist":
			for _, it := range c.Elements() {
				if j, err := jid.Parse(it.Attr("jid")); err == nil {
					a.Blocked = append(a.Blocked, j.String())
				}
			}
		case c.Space == nsMAM && c.Name == "archive":
			a.Skipped = append(a.Skipped, fmt.Sprintf("message archive (%d messages): not imported", len(c.Elements())))
		case c.Space == nsPrivacy && c.Name == "query":
			a.parsePrivacy(c)
		default:
			a.Skipped = append(a.Skipped, fmt.Sprintf("{%s}%s", c.Space, c.Name))
		}
	}
	a.addPending(pending)
	a.parseCredentials(u.Attr("password"), scram)
	return a, nil
}

// parseCredentials picks the account's credentials: a plaintext password
// gives both SCRAM credentials; else each <scram-credentials/> whose keys
// check out is used as stored.
func (a *Account) parseCredentials(password string, scram []*xmlstream.Element) {
	var why []string
	if password != "" {
		if strings.HasPrefix(password, "==SCRAM==") || strings.HasPrefix(password, "==MULTI_SCRAM==") || strings.HasPrefix(password, "scram:") {
			why = append(why, "the password attribute holds a hash in a format Bluetick does not read")
		} else {
			creds, err := auth.NewCredentials(password, auth.DefaultIterations)
			if err == nil {
				a.Creds = creds
				return
			}
			why = append(why, "the plaintext password is not acceptable: "+err.Error())
		}
	}
	seen := map[string]bool{}
	for _, el := range scram {
		c, err := scramCredential(el)
		if err != nil {
			why = append(why, err.Error())
			continue
		}
		if !seen[c.Mechanism] {
			seen[c.Mechanism] = true
			a.Creds = append(a.Creds, c)
		}
	}
	if len(a.Creds) == 0 {
		if len(why) == 0 {
			why = append(why, "the file has neither a password nor SCRAM credentials for it")
		}
		a.NoPassword = strings.Join(why, "; ")
	}
}

// scramSizes are the key sizes of the mechanisms Bluetick verifies.
var scramSizes = map[string]int{auth.SCRAMSHA1: sha1.Size, auth.SCRAMSHA256: sha256.Size}

// scramCredential checks one <scram-credentials/> element. The mechanism
// must be one Bluetick has, the keys its size. Two exporters' quirks are
// undone: ejabberd 23.01 writes base64 of the base64 text of each value,
// and Prosody's migrator labels credentials SCRAM-SHA-1 whatever hash
// the server used, so keys of SHA-256's size are taken as SCRAM-SHA-256.
func scramCredential(el *xmlstream.Element) (store.Credential, error) {
	mech := el.Attr("mechanism")
	size, ok := scramSizes[mech]
	if !ok {
		return store.Credential{}, fmt.Errorf("credentials of mechanism %q (Bluetick verifies only SCRAM-SHA-1 and SCRAM-SHA-256)", mech)
	}
	text := func(name string) string { return strings.Join(strings.Fields(el.ChildText(NSSCRAM, name)), "") }
	iter, err := strconv.Atoi(text("iter-count"))
	if err != nil || iter < 1 || iter > 1<<24 {
		return store.Credential{}, fmt.Errorf("%s credentials with iteration count %q", mech, text("iter-count"))
	}
	salt, err1 := base64.StdEncoding.DecodeString(text("salt"))
	stored, err2 := base64.StdEncoding.DecodeString(text("stored-key"))
	server, err3 := base64.StdEncoding.DecodeString(text("server-key"))
	if err := errors.Join(err1, err2, err3); err != nil {
		return store.Credential{}, fmt.Errorf("%s credentials that are not base64: %v", mech, err)
	}
	if len(stored) != size || len(server) != size {
		// ejabberd 23.01: the values are base64 once more.
		s2, e1 := base64.StdEncoding.DecodeString(string(stored))
		v2, e2 := base64.StdEncoding.DecodeString(string(server))
		salt2, e3 := base64.StdEncoding.DecodeString(string(salt))
		if errors.Join(e1, e2, e3) == nil && len(s2) == len(v2) && (len(s2) == sha1.Size || len(s2) == sha256.Size) {
			stored, server, salt = s2, v2, salt2
		}
	}
	if len(stored) != len(server) {
		return store.Credential{}, fmt.Errorf("%s credentials with keys of %d and %d bytes", mech, len(stored), len(server))
	}
	switch len(stored) {
	case size:
	case sha256.Size:
		mech = auth.SCRAMSHA256
	case sha1.Size:
		mech = auth.SCRAMSHA1
	default:
		return store.Credential{}, fmt.Errorf("%s credentials with keys of %d bytes (want %d)", mech, len(stored), size)
	}
	if len(salt) == 0 || len(salt) > 1024 {
		return store.Credential{}, fmt.Errorf("%s credentials with a salt of %d bytes", mech, len(salt))
	}
	return store.Credential{Mechanism: mech, Salt: salt, Iterations: iter, StoredKey: stored, ServerKey: server}, nil
}

// parseRoster reads a jabber:iq:roster <query/>.
func (a *Account) parseRoster(q *xmlstream.Element) {
	for _, it := range q.Elements() {
		if it.Name != "item" {
			continue
		}
		j, err := jid.Parse(it.Attr("jid"))
		if err != nil {
			a.Skipped = append(a.Skipped, fmt.Sprintf("roster item %q (not a JID)", it.Attr("jid")))
			continue
		}
		item := store.RosterItem{
			Contact:    j.BareString(),
			Name:       it.Attr("name"),
			PendingOut: it.Attr("ask") == "subscribe",
			Approved:   it.Attr("approved") == "true" || it.Attr("approved") == "1",
			InRoster:   true,
		}
		switch s := it.Attr("subscription"); s {
		case store.SubTo, store.SubFrom, store.SubBoth:
			item.Subscription = s
		case "remove":
			continue
		default:
			item.Subscription = store.SubNone
		}
		for _, g := range it.Elements() {
			if g.Name == "group" {
				if name := g.Text(); name != "" && !slices.Contains(item.Groups, name) {
					item.Groups = append(item.Groups, name)
				}
			}
		}
		if i := slices.IndexFunc(a.Roster, func(r store.RosterItem) bool { return r.Contact == item.Contact }); i >= 0 {
			a.Roster[i] = item
		} else {
			a.Roster = append(a.Roster, item)
		}
	}
}

// addPending records inbound subscription requests not yet answered
// (RFC 6121 §3.1.3): on the contact's roster item if there is one, else
// on an item that exists only for the request.
func (a *Account) addPending(froms []string) {
	for _, f := range froms {
		if i := slices.IndexFunc(a.Roster, func(r store.RosterItem) bool { return r.Contact == f }); i >= 0 {
			a.Roster[i].PendingIn = true
			continue
		}
		a.Roster = append(a.Roster, store.RosterItem{Contact: f, Subscription: store.SubNone, PendingIn: true})
	}
}

func (a *Account) node(name string) *PEPNode {
	for i := range a.PEP {
		if a.PEP[i].Node == name {
			return &a.PEP[i]
		}
	}
	a.PEP = append(a.PEP, PEPNode{Node: name})
	return &a.PEP[len(a.PEP)-1]
}

// parsePEPConfig reads the pubsub#owner element: one <configure/> per
// node with its node_config form.
func (a *Account) parsePEPConfig(p *xmlstream.Element) {
	for _, c := range p.Elements() {
		name := c.Attr("node")
		if c.Name != "configure" || name == "" {
			if c.Name != "configure" {
				a.Skipped = append(a.Skipped, fmt.Sprintf("PEP node %s: <%s/> (only the configuration and the items are imported)", name, c.Name))
			}
			continue
		}
		a.node(name).Form = c.Child(nsData, "x")
	}
}

// parsePEPItems reads the pubsub element: one <items/> per node.
func (a *Account) parsePEPItems(p *xmlstream.Element) {
	for _, items := range p.Elements() {
		name := items.Attr("node")
		if items.Name != "items" || name == "" {
			continue
		}
		n := a.node(name)
		for i, it := range items.Elements() {
			payload := it.FirstChild()
			if it.Name != "item" || payload == nil {
				continue
			}
			id := it.Attr("id")
			if id == "" {
				id = "imported-" + strconv.Itoa(i+1)
			}
			n.Items = append(n.Items, PEPItem{ID: id, Payload: payload})
		}
	}
}

// parseRoom converts Bluetick's <room/> extension element.
func parseRoom(el *xmlstream.Element) (*Room, error) {
	j, err := jid.Parse(el.Attr("jid"))
	if err != nil || j.Local() == "" || !j.IsBare() {
		return nil, fmt.Errorf("room %q: not a room address", el.Attr("jid"))
	}
	r := &Room{JID: j.String()}
	if c := el.Attr("created"); c != "" {
		if r.Created, err = time.Parse(time.RFC3339Nano, c); err != nil {
			return nil, fmt.Errorf("room %s: created %q is not an RFC 3339 time", r.JID, c)
		}
	}
	if cfg := el.Child(NSRooms, "config"); cfg != nil {
		r.Config = []byte(cfg.Text())
		if !json.Valid(r.Config) {
			return nil, fmt.Errorf("room %s: its <config/> is not JSON", r.JID)
		}
	}
	if s := el.Child(NSRooms, "subject"); s != nil {
		r.Subject, r.SubjectFrom = s.Text(), s.Attr("by")
	}
	for _, c := range el.Elements() {
		if c.Space != NSRooms || c.Name != "affiliation" {
			continue
		}
		who, err := jid.Parse(c.Attr("jid"))
		if err != nil {
			return nil, fmt.Errorf("room %s: affiliation of %q (not a JID)", r.JID, c.Attr("jid"))
		}
		switch aff := c.Attr("affiliation"); aff {
		case "owner", "admin", "member", "outcast":
			r.Affiliations = append(r.Affiliations, store.Affiliation{JID: who.BareString(), Affiliation: aff, Nick: c.Attr("nick"), Reason: c.Attr("reason")})
		default:
			return nil, fmt.Errorf("room %s: affiliation %q of %s", r.JID, aff, who)
		}
	}
	return r, nil
}

// parsePrivacy carries the blocks of XEP-0016 privacy lists over to the
// XEP-0191 blocklist: the rules of the default list (ejabberd keeps
// XEP-0191 blocks there, as "Blocked contacts") that deny a JID
// everything. Rules Bluetick cannot express (by group or subscription,
// for some stanza kinds only, allow rules, other lists) are named in
// Skipped.
func (a *Account) parsePrivacy(q *xmlstream.Element) {
	def := ""
	if d := q.Child(nsPrivacy, "default"); d != nil {
		def = d.Attr("name")
	}
	for _, l := range q.Elements() {
		if l.Name != "list" {
			continue
		}
		if l.Attr("name") != def {
			a.Skipped = append(a.Skipped, fmt.Sprintf("privacy list %q (not the default list): not imported", l.Attr("name")))
			continue
		}
		other := 0
		for _, it := range l.Elements() {
			if it.Name != "item" {
				continue
			}
			j, err := jid.Parse(it.Attr("value"))
			if it.Attr("type") != "jid" || it.Attr("action") != "deny" || len(it.Elements()) > 0 || err != nil {
				other++
				continue
			}
			if !slices.Contains(a.Blocked, j.String()) {
				a.Blocked = append(a.Blocked, j.String())
			}
		}
		if other > 0 {
			a.Skipped = append(a.Skipped, fmt.Sprintf("privacy list %q: %d rules other than blocking a JID (Bluetick has the XEP-0191 blocklist)", def, other))
		}
	}
}
