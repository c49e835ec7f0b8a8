package muc_test

import (
	"context"
	"testing"

	"bluetick/internal/xmlstream"
)

// FuzzServiceStanza throws arbitrary stanzas at the group service from a
// member and a non-member, addressed to the service, a room and an
// occupant. Whatever arrives, the service answers or ignores it; it never
// panics.
func FuzzServiceStanza(f *testing.F) {
	for _, seed := range []string{
		"<message type='groupchat'><body>x</body></message>",
		"<message><x xmlns='http://jabber.org/protocol/muc#user'><invite to='@@'/><decline/></x></message>",
		"<presence><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='-1' since='x'/><password/></x></presence>",
		"<presence type='unavailable'/>",
		"<iq type='set' id='1'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='outcast'/><item role='none' nick=''/></query></iq>",
		"<iq type='set' id='1'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'><field var='muc#roomconfig_maxusers'><value>0</value></field></x></query></iq>",
		"<iq type='set' id='1'><query xmlns='http://jabber.org/protocol/muc#owner'><destroy jid='::'/></query></iq>",
		"<iq type='set' id='1'><query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='submit'><field var='with'><value>@</value></field></x><set xmlns='http://jabber.org/protocol/rsm'><max>x</max><before>zz</before></set></query></iq>",
		"<iq type='get' id='1'><list xmlns='urn:bluetick:muc:invite:0'/></iq>",
		"<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>",
		"<iq type='result' id='1'/>",
	} {
		f.Add([]byte(seed), uint8(0))
		f.Add([]byte(seed), uint8(1))
		f.Add([]byte(seed), uint8(2))
	}
	e := newEnvAt(f, f.TempDir(), nil)
	alice := e.newGroup("bob@localhost")
	eve := e.login("eve@localhost/x")
	targets := []string{"groups.localhost", room, room + "/Alice", room + "/Nobody", "new@groups.localhost/N"}
	f.Fuzz(func(t *testing.T, data []byte, which uint8) {
		el, err := xmlstream.Parse(data, xmlstream.Limits{MaxElementBytes: 1 << 14})
		if err != nil {
			return
		}
		switch el.Name {
		case "message", "presence", "iq":
		default:
			return
		}
		el.Space = xmlstream.NSClient
		el.SetAttr("to", targets[int(which)%len(targets)])
		c := alice
		if which&0x80 != 0 {
			c = eve
		}
		e.srv.Handle(context.Background(), c.sess, el)
	})
}
