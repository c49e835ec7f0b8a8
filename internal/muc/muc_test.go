package muc_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"bluetick/internal/config"
	"bluetick/internal/jid"
	"bluetick/internal/muc"
	"bluetick/internal/xmlstream"
)

// TestCreateInstantRoom: the creator gets 201 and owns a locked room that
// nobody else can enter until it is configured; an instant room is then a
// persistent, members-only, non-anonymous WhatsApp group.
func TestCreateInstantRoom(t *testing.T) {
	e := newEnv(t)
	alice := e.login("alice@localhost/phone")
	bob := e.login("bob@localhost/pc")
	p := alice.join(room, "Alice", "")
	if statuses(p) != "110,100,170,201" || item(p).Attr("affiliation") != "owner" || item(p).Attr("role") != "moderator" {
		t.Fatalf("creator's presence: %s", p)
	}
	if p.Child(muc.NSOccupantID, "occupant-id") == nil {
		t.Fatalf("no occupant-id: %s", p)
	}
	wantError(t, bob.join(room, "Bob", ""), "item-not-found")
	form := mustOK(t, alice.iq(room, "get", "<query xmlns='http://jabber.org/protocol/muc#owner'/>"))
	if !strings.Contains(form.String(), "muc#roomconfig_membersonly") {
		t.Fatalf("config form: %s", form)
	}
	mustOK(t, alice.iq(room, "set", "<query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query>"))
	if _, err := e.st.Room(context.Background(), room); err != nil {
		t.Fatalf("room not stored after configuration: %v", err)
	}
	wantError(t, bob.join(room, "Bob", ""), "registration-required")
	info := mustOK(t, bob.iq(room, "get", "<query xmlns='http://jabber.org/protocol/disco#info'/>"))
	for _, f := range []string{"muc_persistent", "muc_membersonly", "muc_nonanonymous", "urn:xmpp:mam:2", "urn:xmpp:occupant-id:0"} {
		if !strings.Contains(info.String(), "'"+f+"'") {
			t.Fatalf("room disco#info lacks %s: %s", f, info)
		}
	}
	wantError(t, bob.iq(room, "get", "<query xmlns='http://jabber.org/protocol/muc#owner'/>"), "forbidden")
}

// TestReservedRoomConfig: a configuration form changes the room; bad
// values are refused with not-acceptable and change nothing.
func TestReservedRoomConfig(t *testing.T) {
	e := newEnv(t)
	alice := e.login("alice@localhost/phone")
	alice.join(room, "Alice", "")
	submit := func(fields string) *xmlstream.Element {
		return alice.iq(room, "set", "<query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'>"+
			"<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>%s</x></query>", fields)
	}
	mustOK(t, submit("<field var='muc#roomconfig_roomname'><value>Team</value></field><field var='muc#roomconfig_maxusers'><value>3</value></field><field var='muc#roomconfig_allowinvites'><value>true</value></field>"))
	wantError(t, submit("<field var='muc#roomconfig_maxusers'><value>5000</value></field>"), "not-acceptable")
	wantError(t, submit("<field var='muc#roomconfig_membersonly'><value>maybe</value></field>"), "not-acceptable")
	wantError(t, submit("<field var='muc#roomconfig_whois'><value>everybody</value></field>"), "not-acceptable")
	wantError(t, alice.iq(room, "set", "<query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='bogus'/></query>"), "bad-request")
	info := mustOK(t, alice.iq(room, "get", "<query xmlns='http://jabber.org/protocol/disco#info'/>"))
	if id := info.FirstChild().Child(muc.NSDiscoInfo, "identity"); id == nil || id.Attr("name") != "Team" {
		t.Fatalf("name not applied: %s", info)
	}
	// maxusers 3: owner + 2 members fit, a third member does not.
	mustOK(t, alice.iq(room, "set", "<query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='member' jid='bob@localhost'/><item affiliation='member' jid='carol@localhost'/></query>"))
	wantError(t, alice.iq(room, "set", "<query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='member' jid='dave@localhost'/></query>"), "service-unavailable")
}

// TestFanoutOrder: every occupant gets every message, in the order the
// room archived them, each stamped with the room's stanza-id and the
// sender's occupant-id; forged ones are removed.
func TestFanoutOrder(t *testing.T) {
	e := newEnv(t)
	alice := e.newGroup("bob@localhost", "carol@localhost")
	bob := e.login("bob@localhost/pc")
	carol := e.login("carol@localhost/tab")
	if p := bob.join(room, "Bob", ""); item(p).Attr("affiliation") != "member" || item(p).Attr("role") != "participant" {
		t.Fatalf("bob's presence: %s", p)
	}
	carol.join(room, "Carol", "")
	const n = 50
	for i := 0; i < n; i++ {
		from := alice
		if i%3 == 1 {
			from = bob
		}
		from.send("<message xmlns='jabber:client' to='%s' type='groupchat' id='m%d'><body>%d</body><stanza-id xmlns='urn:xmpp:sid:0' by='%s' id='forged'/><occupant-id xmlns='urn:xmpp:occupant-id:0' id='forged'/></message>", room, i, i, room)
	}
	ids := map[string]string{}
	for _, c := range []*client{alice, bob, carol} {
		for i := 0; i < n; i++ {
			m := c.until(isGroupchat)
			if m.ChildText(xmlstream.NSClient, "body") != fmt.Sprint(i) || m.Attr("to") != c.full.String() || m.Attr("id") != fmt.Sprintf("m%d", i) {
				t.Fatalf("%s message %d: %s", c.full, i, m)
			}
			var sids, oids []string
			for _, ch := range m.Elements() {
				switch ch.Space {
				case muc.NSSID:
					sids = append(sids, ch.Attr("by")+" "+ch.Attr("id"))
				case muc.NSOccupantID:
					oids = append(oids, ch.Attr("id"))
				}
			}
			if len(sids) != 1 || !strings.HasPrefix(sids[0], room+" ") || strings.HasSuffix(sids[0], "forged") || len(oids) != 1 || oids[0] == "forged" {
				t.Fatalf("ids of %s", m)
			}
			if prev, ok := ids[m.Attr("id")]; ok && prev != sids[0] {
				t.Fatalf("occupants got different stanza-ids for one message: %s vs %s", prev, sids[0])
			}
			ids[m.Attr("id")] = sids[0]
			wantFrom := room + "/Alice"
			if i%3 == 1 {
				wantFrom = room + "/Bob"
			}
			if m.Attr("from") != wantFrom {
				t.Fatalf("from %q, want %q", m.Attr("from"), wantFrom)
			}
		}
	}
	// Not an occupant: not-acceptable.
	dave := e.login("dave@localhost/x")
	dave.send("<message xmlns='jabber:client' to='%s' type='groupchat' id='d'><body>hi</body></message>", room)
	wantError(t, dave.until(func(el *xmlstream.Element) bool { return el.Attr("id") == "d" }), "not-acceptable")
}

// TestAffiliations: owners and admins manage members; an admin cannot
// touch the owner; the last owner cannot leave ownership; members see
// the member list, others do not.
func TestAffiliations(t *testing.T) {
	e := newEnv(t)
	alice := e.newGroup("bob@localhost", "carol@localhost")
	bob := e.login("bob@localhost/pc")
	carol := e.login("carol@localhost/tab")
	dave := e.login("dave@localhost/x")
	admin := func(c *client, items string) *xmlstream.Element {
		return c.iq(room, "set", "<query xmlns='http://jabber.org/protocol/muc#admin'>"+items+"</query>")
	}
	wantError(t, admin(carol, "<item affiliation='member' jid='dave@localhost'/>"), "forbidden")
	mustOK(t, admin(alice, "<item affiliation='admin' jid='bob@localhost'/>"))
	mustOK(t, admin(bob, "<item affiliation='member' jid='dave@localhost'/>"))
	wantError(t, admin(bob, "<item affiliation='none' jid='alice@localhost'/>"), "not-allowed")
	wantError(t, admin(bob, "<item affiliation='outcast' jid='alice@localhost'/>"), "not-allowed")
	wantError(t, admin(bob, "<item affiliation='admin' jid='carol@localhost'/>"), "not-allowed")
	wantError(t, admin(alice, "<item affiliation='member' jid='alice@localhost'/>"), "conflict")
	wantError(t, admin(alice, "<item affiliation='king' jid='carol@localhost'/>"), "bad-request")
	wantError(t, admin(alice, "<item affiliation='member' jid='@@'/>"), "jid-malformed")
	// An invalid item makes the whole list fail, atomically.
	wantError(t, admin(bob, "<item affiliation='member' jid='eve@localhost'/><item affiliation='none' jid='alice@localhost'/>"), "not-allowed")

	list := mustOK(t, carol.iq(room, "get", "<query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='member'/></query>"))
	got := []string{}
	for _, it := range list.FirstChild().Elements() {
		got = append(got, it.Attr("jid"))
	}
	if strings.Join(got, " ") != "carol@localhost dave@localhost" {
		t.Fatalf("member list %v", got)
	}
	wantError(t, e.login("eve@localhost/x").iq(room, "get", "<query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='member'/></query>"), "forbidden")
	wantError(t, carol.iq(room, "get", "<query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='outcast'/></query>"), "forbidden")

	// Dave is present when he loses membership: removed with 321.
	dave.join(room, "Dave", "")
	mustOK(t, admin(bob, "<item affiliation='none' jid='dave@localhost'/>"))
	p := dave.until(func(el *xmlstream.Element) bool { return el.Name == "presence" && el.Attr("type") == "unavailable" })
	if statuses(p) != "110,321" {
		t.Fatalf("removal presence: %s", p)
	}
	wantError(t, dave.join(room, "Dave", ""), "registration-required")

	// Leaving: a member or an admin gives up their own membership (it
	// changes nobody else's); the last owner cannot.
	wantError(t, admin(carol, "<item affiliation='admin' jid='carol@localhost'/>"), "forbidden")
	mustOK(t, admin(carol, "<item affiliation='none' jid='carol@localhost'/>"))
	wantError(t, carol.join(room, "Carol", ""), "registration-required")
	mustOK(t, admin(bob, "<item affiliation='none' jid='bob@localhost'/>"))
	wantError(t, admin(alice, "<item affiliation='none' jid='alice@localhost'/>"), "conflict")
}

// TestKickAndBan: a moderator kicks (307) and bans (301); the banned user
// cannot come back, even with an invite link; admins cannot be kicked.
func TestKickAndBan(t *testing.T) {
	e := newEnv(t)
	alice := e.newGroup("bob@localhost", "carol@localhost")
	bob := e.login("bob@localhost/pc")
	carol := e.login("carol@localhost/tab")
	bob.join(room, "Bob", "")
	carol.join(room, "Carol", "")
	wantError(t, carol.iq(room, "set", "<query xmlns='http://jabber.org/protocol/muc#admin'><item nick='Bob' role='none'/></query>"), "forbidden")
	wantError(t, alice.iq(room, "set", "<query xmlns='http://jabber.org/protocol/muc#admin'><item nick='Nobody' role='none'/></query>"), "item-not-found")
	mustOK(t, alice.iq(room, "set", "<query xmlns='http://jabber.org/protocol/muc#admin'><item nick='Carol' role='none'><reason>calm down</reason></item></query>"))
	p := carol.until(func(el *xmlstream.Element) bool { return el.Name == "presence" && el.Attr("type") == "unavailable" })
	if statuses(p) != "110,307" || item(p).ChildText(muc.NSUser, "reason") != "calm down" {
		t.Fatalf("kicked presence: %s", p)
	}
	if p := bob.until(func(el *xmlstream.Element) bool {
		return el.Attr("from") == room+"/Carol" && el.Attr("type") == "unavailable"
	}); statuses(p) != "307" {
		t.Fatalf("others see the kick as: %s", p)
	}
	carol.join(room, "Carol", "") // a kick is not a ban
	mustOK(t, alice.iq(room, "set", "<query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='outcast' jid='carol@localhost'/></query>"))
	p = carol.until(func(el *xmlstream.Element) bool { return el.Name == "presence" && el.Attr("type") == "unavailable" })
	if statuses(p) != "110,301" || item(p).Attr("affiliation") != "outcast" {
		t.Fatalf("ban presence: %s", p)
	}
	wantError(t, carol.join(room, "Carol", ""), "forbidden")
	link := mustOK(t, alice.iq(room, "set", "<create xmlns='urn:bluetick:muc:invite:0'/>")).FirstChild().Attr("token")
	wantError(t, carol.join(room, "Carol", "<password>"+link+"</password>"), "forbidden")
	// An admin cannot kick the owner (§8.2) nor silence another admin; the
	// owner may kick an admin; nobody bans themselves.
	mustOK(t, alice.iq(room, "set", "<query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='admin' jid='bob@localhost'/></query>"))
	wantError(t, bob.iq(room, "set", "<query xmlns='http://jabber.org/protocol/muc#admin'><item nick='Alice' role='none'/></query>"), "not-allowed")
	wantError(t, alice.iq(room, "set", "<query xmlns='http://jabber.org/protocol/muc#admin'><item nick='Bob' role='visitor'/></query>"), "not-allowed")
	wantError(t, bob.iq(room, "set", "<query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='outcast' jid='bob@localhost'/></query>"), "conflict")
	mustOK(t, alice.iq(room, "set", "<query xmlns='http://jabber.org/protocol/muc#admin'><item nick='Bob' role='none'/></query>"))
}

// TestAuthorization: a non-member can neither join, post, read the
// archive, list occupants nor see the members of a members-only room.
func TestAuthorization(t *testing.T) {
	e := newEnv(t)
	e.newGroup("bob@localhost")
	eve := e.login("eve@localhost/x")
	wantError(t, eve.join(room, "Eve", ""), "registration-required")
	eve.send("<message xmlns='jabber:client' to='%s' type='groupchat' id='e1'><body>spam</body></message>", room)
	wantError(t, eve.until(func(el *xmlstream.Element) bool { return el.Attr("id") == "e1" }), "not-acceptable")
	wantError(t, eve.iq(room, "set", "<query xmlns='urn:xmpp:mam:2'/>"), "forbidden")
	wantError(t, eve.iq(room, "get", "<query xmlns='http://jabber.org/protocol/disco#items'/>"), "forbidden")
	wantError(t, eve.iq(room, "set", "<create xmlns='urn:bluetick:muc:invite:0'/>"), "forbidden")
	wantError(t, eve.join(room, "Eve", "<password>guess</password>"), "not-authorized")
	wantError(t, eve.iq("nope@groups.localhost", "get", "<query xmlns='http://jabber.org/protocol/disco#info'/>"), "item-not-found")
	// Garbage never crashes the service.
	eve.send("<presence xmlns='jabber:client' to='%s'/>", room)
	wantError(t, eve.until(func(el *xmlstream.Element) bool { return el.Name == "presence" }), "jid-malformed")
	wantError(t, eve.iq(room, "set", "<query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'><field/></x></query>"), "forbidden")
	wantError(t, eve.iq("groups.localhost", "get", "<foo xmlns='urn:unknown'/>"), "service-unavailable")
}

// TestNickConflict: nicks are unique per room across users, a user may
// join from two devices with one nick, and may change nick (303).
func TestNickConflict(t *testing.T) {
	e := newEnv(t)
	alice := e.newGroup("bob@localhost")
	bob := e.login("bob@localhost/pc")
	wantError(t, bob.join(room, "Alice", ""), "conflict")
	bob.join(room, "Bob", "")
	bob2 := e.login("bob@localhost/phone")
	if p := bob2.join(room, "Bob", ""); p.Attr("type") == "error" {
		t.Fatalf("second device: %s", p)
	}
	bob.send("<presence xmlns='jabber:client' to='%s/Robert'/>", room)
	p := alice.until(func(el *xmlstream.Element) bool {
		return el.Attr("from") == room+"/Bob" && el.Attr("type") == "unavailable"
	})
	if statuses(p) != "303" || item(p).Attr("nick") != "Robert" {
		t.Fatalf("nick change: %s", p)
	}
	alice.until(func(el *xmlstream.Element) bool { return el.Attr("from") == room+"/Robert" && el.Attr("type") == "" })
	bob.send("<presence xmlns='jabber:client' to='%s/Alice'/>", room)
	wantError(t, bob.until(func(el *xmlstream.Element) bool { return el.Name == "presence" && el.Attr("type") == "error" }), "conflict")
}

// TestSelfPing: XEP-0410.
func TestSelfPing(t *testing.T) {
	e := newEnv(t)
	alice := e.newGroup("bob@localhost")
	mustOK(t, alice.iq(room+"/Alice", "get", "<ping xmlns='urn:xmpp:ping'/>"))
	bob := e.login("bob@localhost/pc")
	wantError(t, bob.iq(room+"/Bob", "get", "<ping xmlns='urn:xmpp:ping'/>"), "not-acceptable")
	bob.join(room, "Bob", "")
	mustOK(t, bob.iq(room+"/Bob", "get", "<ping xmlns='urn:xmpp:ping'/>"))
	bob.send("<presence xmlns='jabber:client' to='%s/Bob' type='unavailable'/>", room)
	wantError(t, bob.iq(room+"/Bob", "get", "<ping xmlns='urn:xmpp:ping'/>"), "not-acceptable")
	// A session that ends leaves its rooms (server seam: directed presence).
	bob.join(room, "Bob", "")
	bob.logout()
	alice.until(func(el *xmlstream.Element) bool {
		return el.Attr("from") == room+"/Bob" && el.Attr("type") == "unavailable"
	})
}

// TestInviteLink: an admin creates a link; anyone joining with its token
// becomes a member; a revoked token stops working; members cannot make
// links.
func TestInviteLink(t *testing.T) {
	e := newEnv(t)
	alice := e.newGroup("bob@localhost")
	res := mustOK(t, alice.iq(room, "set", "<create xmlns='urn:bluetick:muc:invite:0'/>")).FirstChild()
	tok := res.Attr("token")
	if tok == "" || res.Attr("uri") != "xmpp:"+room+"?join;password="+tok {
		t.Fatalf("invite: %s", res)
	}
	bob := e.login("bob@localhost/pc")
	wantError(t, bob.iq(room, "set", "<create xmlns='urn:bluetick:muc:invite:0'/>"), "forbidden")
	dave := e.login("dave@localhost/x")
	p := dave.join(room, "Dave", "<password>"+tok+"</password>")
	if item(p).Attr("affiliation") != "member" {
		t.Fatalf("joined with link: %s", p)
	}
	list := mustOK(t, alice.iq(room, "get", "<list xmlns='urn:bluetick:muc:invite:0'/>"))
	if len(list.FirstChild().Elements()) != 1 {
		t.Fatalf("list: %s", list)
	}
	mustOK(t, alice.iq(room, "set", "<revoke xmlns='urn:bluetick:muc:invite:0' token='%s'/>", tok))
	wantError(t, alice.iq(room, "set", "<revoke xmlns='urn:bluetick:muc:invite:0' token='%s'/>", tok), "item-not-found")
	eve := e.login("eve@localhost/x")
	wantError(t, eve.join(room, "Eve", "<password>"+tok+"</password>"), "not-authorized")
}

// TestMediatedInvite: an owner's invitation to a members-only room makes
// the invitee a member and reaches it even offline; a plain member's is
// refused unless the room allows member invites.
func TestMediatedInvite(t *testing.T) {
	e := newEnv(t)
	alice := e.newGroup("bob@localhost")
	alice.send("<message xmlns='jabber:client' to='%s' id='i1'><x xmlns='http://jabber.org/protocol/muc#user'><invite to='dave@localhost'><reason>join us</reason></invite></x></message>", room)
	dave := e.login("dave@localhost/x")
	inv := dave.until(func(el *xmlstream.Element) bool { return el.Name == "message" && el.Attr("from") == room })
	i := inv.Child(muc.NSUser, "x").Child(muc.NSUser, "invite")
	if i.Attr("from") != "alice@localhost" || i.ChildText(muc.NSUser, "reason") != "join us" {
		t.Fatalf("invite: %s", inv)
	}
	if p := dave.join(room, "Dave", ""); item(p).Attr("affiliation") != "member" {
		t.Fatalf("invitee's join: %s", p)
	}
	alice.send("<message xmlns='jabber:client' to='%s' id='i3'><x xmlns='http://jabber.org/protocol/muc#user'><invite to='nobody@localhost'/></x></message>", room)
	wantError(t, alice.until(func(el *xmlstream.Element) bool { return el.Attr("id") == "i3" }), "service-unavailable")
	list := mustOK(t, alice.iq(room, "get", "<query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='member'/></query>"))
	if strings.Contains(list.String(), "nobody@") {
		t.Fatalf("an invitation to a missing account made a member: %s", list)
	}
	bob := e.login("bob@localhost/pc")
	bob.join(room, "Bob", "")
	bob.send("<message xmlns='jabber:client' to='%s' id='i2'><x xmlns='http://jabber.org/protocol/muc#user'><invite to='eve@localhost'/></x></message>", room)
	wantError(t, bob.until(func(el *xmlstream.Element) bool { return el.Attr("id") == "i2" }), "forbidden")
}

// TestMaxMembersJoin: a full room refuses another user with
// service-unavailable (XEP-0045 §7.2.11).
func TestMaxMembersJoin(t *testing.T) {
	e := newEnvAt(t, t.TempDir(), func(c *config.Config) { c.MUC.MaxMembers = 2 })
	alice := e.newGroup("bob@localhost")
	wantError(t, alice.iq(room, "set", "<query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='member' jid='carol@localhost'/></query>"), "service-unavailable")
	tok := mustOK(t, alice.iq(room, "set", "<create xmlns='urn:bluetick:muc:invite:0'/>")).FirstChild().Attr("token")
	wantError(t, e.login("carol@localhost/x").join(room, "Carol", "<password>"+tok+"</password>"), "service-unavailable")
}

// TestPushHook: the push feature learns of each archived message with the
// members who are not in the room.
func TestPushHook(t *testing.T) {
	e := newEnv(t)
	type call struct {
		room    jid.JID
		body    string
		offline []jid.JID
	}
	calls := make(chan call, 4)
	e.svc.Push = func(r jid.JID, m *xmlstream.Element, off []jid.JID) {
		calls <- call{r, m.ChildText(xmlstream.NSClient, "body"), off}
	}
	alice := e.newGroup("bob@localhost")
	alice.send("<message xmlns='jabber:client' to='%s' type='groupchat'><body>wake up</body></message>", room)
	c := <-calls
	if c.room.String() != room || c.body != "wake up" || len(c.offline) != 1 || c.offline[0].String() != "bob@localhost" {
		t.Fatalf("push hook got %+v", c)
	}
}

// TestSubjectAndDestroy: members change the subject by default; owners
// destroy the room, and everyone is told.
func TestSubjectAndDestroy(t *testing.T) {
	e := newEnv(t)
	alice := e.newGroup("bob@localhost")
	bob := e.login("bob@localhost/pc")
	bob.join(room, "Bob", "")
	bob.send("<message xmlns='jabber:client' to='%s' type='groupchat'><subject>Plans</subject></message>", room)
	s := alice.until(func(el *xmlstream.Element) bool {
		return el.Child(xmlstream.NSClient, "subject") != nil && el.Attr("from") == room+"/Bob"
	})
	if s.ChildText(xmlstream.NSClient, "subject") != "Plans" {
		t.Fatalf("subject: %s", s)
	}
	wantError(t, bob.iq(room, "set", "<query xmlns='http://jabber.org/protocol/muc#owner'><destroy/></query>"), "forbidden")
	mustOK(t, alice.iq(room, "set", "<query xmlns='http://jabber.org/protocol/muc#owner'><destroy><reason>done</reason></destroy></query>"))
	p := bob.until(func(el *xmlstream.Element) bool { return el.Name == "presence" && el.Attr("type") == "unavailable" })
	if d := p.Child(muc.NSUser, "x").Child(muc.NSUser, "destroy"); d == nil || d.ChildText(muc.NSUser, "reason") != "done" {
		t.Fatalf("destroy presence: %s", p)
	}
	if _, err := e.st.Room(context.Background(), room); err == nil {
		t.Fatal("destroyed room still stored")
	}
}

// TestDisco: the server lists the service; the service says what it is;
// a user's group list shows the groups it belongs to.
func TestDisco(t *testing.T) {
	e := newEnv(t)
	e.newGroup("bob@localhost")
	bob := e.login("bob@localhost/pc")
	items := mustOK(t, bob.iq("localhost", "get", "<query xmlns='http://jabber.org/protocol/disco#items'/>"))
	if !strings.Contains(items.String(), "jid='groups.localhost'") {
		t.Fatalf("server items: %s", items)
	}
	info := mustOK(t, bob.iq("groups.localhost", "get", "<query xmlns='http://jabber.org/protocol/disco#info'/>"))
	if !strings.Contains(info.String(), "category='conference'") || !strings.Contains(info.String(), "var='http://jabber.org/protocol/muc'") {
		t.Fatalf("service info: %s", info)
	}
	mine := mustOK(t, bob.iq("groups.localhost", "get", "<query xmlns='http://jabber.org/protocol/disco#items'/>"))
	if !strings.Contains(mine.String(), room) {
		t.Fatalf("bob's groups: %s", mine)
	}
	theirs := mustOK(t, e.login("eve@localhost/x").iq("groups.localhost", "get", "<query xmlns='http://jabber.org/protocol/disco#items'/>"))
	if strings.Contains(theirs.String(), room) {
		t.Fatalf("a hidden group is listed to a non-member: %s", theirs)
	}
}

// TestReservedNickAndDevices: an admin may reserve a member's nick, which
// nobody else can take; a user in the room from two devices does not
// "leave" when one of them does.
func TestReservedNickAndDevices(t *testing.T) {
	e := newEnv(t)
	alice := e.newGroup("carol@localhost")
	mustOK(t, alice.iq(room, "set", "<query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='member' jid='bob@localhost' nick='Bobby'/></query>"))
	wantError(t, alice.iq(room, "set", "<query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='member' jid='carol@localhost' nick='Bobby'/></query>"), "conflict")
	list := mustOK(t, alice.iq(room, "get", "<query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='member'/></query>"))
	if !strings.Contains(list.String(), "nick='Bobby'") {
		t.Fatalf("reserved nick not listed: %s", list)
	}
	wantError(t, e.login("carol@localhost/x").join(room, "Bobby", ""), "conflict")
	pc := e.login("bob@localhost/pc")
	phone := e.login("bob@localhost/phone")
	pc.join(room, "Bobby", "")
	phone.join(room, "Bobby", "")
	alice.quiet(func(*xmlstream.Element) bool { return false })
	phone.send("<presence xmlns='jabber:client' to='%s/Bobby' type='unavailable'/>", room)
	if p := phone.until(func(el *xmlstream.Element) bool { return el.Name == "presence" && el.Attr("type") == "unavailable" }); statuses(p) != "110" {
		t.Fatalf("leaving device's presence: %s", p)
	}
	alice.quiet(func(el *xmlstream.Element) bool {
		return el.Attr("from") == room+"/Bobby" && el.Attr("type") == "unavailable"
	})
	pc.send("<presence xmlns='jabber:client' to='%s/Bobby' type='unavailable'/>", room)
	alice.until(func(el *xmlstream.Element) bool {
		return el.Attr("from") == room+"/Bobby" && el.Attr("type") == "unavailable"
	})
}

// TestIQRelay: an IQ to an occupant JID reaches that occupant from the
// sender's occupant JID; the answer comes back from the occupant JID with
// the original id. Answers from anyone else are dropped.
func TestIQRelay(t *testing.T) {
	e := newEnv(t)
	alice := e.newGroup("bob@localhost")
	bob := e.login("bob@localhost/pc")
	bob.join(room, "Bob", "")
	wantError(t, e.login("eve@localhost/x").iq(room+"/Bob", "get", "<vCard xmlns='vcard-temp'/>"), "not-acceptable")
	wantError(t, alice.iq(room+"/Nobody", "get", "<vCard xmlns='vcard-temp'/>"), "item-not-found")
	alice.send("<iq xmlns='jabber:client' to='%s/Bob' type='get' id='v1'><vCard xmlns='vcard-temp'/></iq>", room)
	req := bob.until(func(el *xmlstream.Element) bool { return el.Name == "iq" })
	if req.Attr("from") != room+"/Alice" || req.Attr("to") != "bob@localhost/pc" || req.Attr("id") == "v1" || req.Child("vcard-temp", "vCard") == nil {
		t.Fatalf("relayed request: %s", req)
	}
	// A forged answer from another session is not relayed.
	e.login("carol@localhost/x").send("<iq xmlns='jabber:client' to='%s/Alice' type='result' id='%s'/>", room, req.Attr("id"))
	bob.send("<iq xmlns='jabber:client' to='%s/Alice' type='result' id='%s'><vCard xmlns='vcard-temp'><FN>Bob</FN></vCard></iq>", room, req.Attr("id"))
	res := alice.until(func(el *xmlstream.Element) bool { return el.Name == "iq" && el.Attr("id") == "v1" })
	if res.Attr("type") != "result" || res.Attr("from") != room+"/Bob" || !strings.Contains(res.String(), "<FN>Bob</FN>") {
		t.Fatalf("relayed answer: %s", res)
	}
	alice.quiet(func(el *xmlstream.Element) bool { return el.Name == "iq" && el.Attr("id") == "v1" })
}

// TestHomeSeam: with Home and Forward set (cluster mode), every stanza for
// a room homed elsewhere goes to Forward with the room's bare JID, and the
// home node's HandleLocal handles it; a failed forward is bounced.
func TestHomeSeam(t *testing.T) {
	e := newEnv(t)
	var forwarded []string
	fail := false
	e.svc.Home = func(r jid.JID) bool { return false }
	e.svc.Forward = func(ctx context.Context, r, from jid.JID, el *xmlstream.Element) error {
		if fail {
			return fmt.Errorf("node down")
		}
		forwarded = append(forwarded, r.String()+" "+el.Name)
		e.svc.HandleLocal(ctx, from, el) // the "home node"
		return nil
	}
	alice := e.newGroup("bob@localhost")
	alice.send("<message xmlns='jabber:client' to='%s' type='groupchat'><body>via home</body></message>", room)
	if m := alice.until(isGroupchat); m.ChildText(xmlstream.NSClient, "body") != "via home" {
		t.Fatalf("%s", m)
	}
	if len(forwarded) < 4 || forwarded[0] != room+" presence" || forwarded[len(forwarded)-1] != room+" message" {
		t.Fatalf("forwarded: %v", forwarded)
	}
	// The service's own domain is never forwarded.
	n := len(forwarded)
	mustOK(t, alice.iq("groups.localhost", "get", "<query xmlns='http://jabber.org/protocol/disco#info'/>"))
	if len(forwarded) != n {
		t.Fatal("a stanza to the service domain was forwarded")
	}
	fail = true
	wantError(t, alice.iq(room, "get", "<query xmlns='http://jabber.org/protocol/disco#info'/>"), "remote-server-timeout")
}

// TestEvictIdle: idle, empty rooms leave memory and come back from the
// store intact; occupied rooms stay.
func TestEvictIdle(t *testing.T) {
	e := newEnv(t)
	alice := e.newGroup("bob@localhost")
	mustOK(t, alice.iq(room, "set", "<query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'><field var='muc#roomconfig_roomname'><value>Evicted</value></field></x></query>"))
	alice.send("<message xmlns='jabber:client' to='%s' type='groupchat'><body>kept</body></message>", room)
	evict := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Millisecond)
		defer cancel()
		e.svc.EvictIdle(ctx, 10*time.Millisecond, 0)
	}
	evict() // alice is in the room: it stays, and sees the next message
	bob := e.login("bob@localhost/pc")
	bob.join(room, "Bob", "")
	alice.until(func(el *xmlstream.Element) bool { return el.Attr("from") == room+"/Bob" })
	alice.send("<presence xmlns='jabber:client' to='%s/Alice' type='unavailable'/>", room)
	bob.send("<presence xmlns='jabber:client' to='%s/Bob' type='unavailable'/>", room)
	evict()
	// Proof that it left memory: a change made in the store behind the
	// service's back is what the room now says.
	sr, err := e.st.Room(context.Background(), room)
	if err != nil {
		t.Fatal(err)
	}
	sr.Config = []byte(strings.Replace(string(sr.Config), "Evicted", "Reloaded", 1))
	if err := e.st.UpdateRoom(context.Background(), sr); err != nil {
		t.Fatal(err)
	}
	p := bob.join(room, "Bob", "")
	if item(p).Attr("affiliation") != "member" {
		t.Fatalf("after eviction: %s", p)
	}
	bob.until(func(el *xmlstream.Element) bool {
		return isGroupchat(el) && el.ChildText(xmlstream.NSClient, "body") == "kept"
	})
	info := mustOK(t, bob.iq(room, "get", "<query xmlns='http://jabber.org/protocol/disco#info'/>"))
	if !strings.Contains(info.String(), "name='Reloaded'") {
		t.Fatalf("config after eviction: %s", info)
	}
}

// TestAdminsOnly: with "only admins can send messages" members become
// visitors (announced), cannot post (forbidden); admins can; turning it
// off gives members their voice back.
func TestAdminsOnly(t *testing.T) {
	e := newEnv(t)
	alice := e.newGroup("bob@localhost")
	bob := e.login("bob@localhost/pc")
	bob.join(room, "Bob", "")
	set := func(v string) {
		mustOK(t, alice.iq(room, "set", "<query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'><field var='urn:bluetick:muc:roomconfig#adminsonly'><value>"+v+"</value></field></x></query>"))
	}
	set("1")
	if p := bob.until(func(el *xmlstream.Element) bool {
		return el.Attr("from") == room+"/Bob" && item(el) != nil && item(el).Attr("role") == "visitor"
	}); p == nil {
		t.Fatal("no role change")
	}
	bob.send("<message xmlns='jabber:client' to='%s' type='groupchat' id='q'><body>me too</body></message>", room)
	wantError(t, bob.until(func(el *xmlstream.Element) bool { return el.Attr("id") == "q" }), "forbidden")
	alice.send("<message xmlns='jabber:client' to='%s' type='groupchat'><body>announcement</body></message>", room)
	bob.until(func(el *xmlstream.Element) bool {
		return isGroupchat(el) && el.ChildText(xmlstream.NSClient, "body") == "announcement"
	})
	set("0")
	bob.until(func(el *xmlstream.Element) bool {
		return el.Attr("from") == room+"/Bob" && item(el) != nil && item(el).Attr("role") == "participant"
	})
	bob.send("<message xmlns='jabber:client' to='%s' type='groupchat'><body>me too</body></message>", room)
	alice.until(func(el *xmlstream.Element) bool {
		return isGroupchat(el) && el.ChildText(xmlstream.NSClient, "body") == "me too"
	})
}
