package muc_test

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"bluetick/internal/jid"
	"bluetick/internal/server"
	"bluetick/internal/session"
	"bluetick/internal/stanza"
	"bluetick/internal/xmlstream"
)

// wireWriter stands in for a TCP connection: it serializes every stanza
// as the c2s transport does (xmlstream.Append in the jabber:client scope)
// into a reused buffer, and counts group messages.
type wireWriter struct {
	buf  []byte
	msgs atomic.Int64
	done func()
}

func (w *wireWriter) Write(els []*xmlstream.Element) error {
	w.buf = w.buf[:0]
	for _, el := range els {
		w.buf = xmlstream.Append(w.buf, el, xmlstream.NSClient)
		if el.Name == "message" && el.Attr("type") == "groupchat" {
			w.msgs.Add(1)
			if w.done != nil {
				w.done()
			}
		}
	}
	return nil
}
func (w *wireWriter) Close(*stanza.StreamError) {}

// BenchmarkFanout256 posts messages to a room of 256 joined members and
// measures deliveries per second (one message to one occupant's
// connection, serialized) and the p99 time for one message to be
// archived (SQLite, fsync'd) and written by all 256 connections.
func BenchmarkFanout256(b *testing.B) {
	const members = 256
	e := newEnvAt(b, b.TempDir(), nil)
	alice := e.newGroup()
	var items string
	for i := 1; i < members; i++ {
		items += fmt.Sprintf("<item affiliation='member' jid='m%03d@localhost'/>", i)
	}
	mustOK(b, alice.iq(room, "set", "<query xmlns='http://jabber.org/protocol/muc#admin'>"+items+"</query>"))
	var wg sync.WaitGroup
	writers := []*wireWriter{}
	for i := 1; i < members; i++ {
		j := jid.MustParse(fmt.Sprintf("m%03d@localhost/d", i))
		s := session.New(server.NewID(), j, 1<<20, e.srv.Hooks())
		w := &wireWriter{}
		s.Attach(w)
		e.srv.Bound(context.Background(), s)
		e.srv.Handle(context.Background(), s, xmlstream.New(xmlstream.NSClient, "presence", "to", room+"/"+j.Local()).
			Append(xmlstream.New("http://jabber.org/protocol/muc", "x").Append(xmlstream.New("http://jabber.org/protocol/muc", "history", "maxstanzas", "0"))))
		writers = append(writers, w)
	}
	time.Sleep(200 * time.Millisecond) // join presence settles
	for _, w := range writers {
		w.done = wg.Done
	}
	body := "Hello everyone, this is a typical group message of about a hundred bytes, with an emoji 🎉 in it."
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		wg.Add(members - 1)
		t0 := time.Now()
		alice.send("<message xmlns='jabber:client' to='%s' type='groupchat' id='b%d'><body>%s</body></message>", room, i, body)
		wg.Wait()
		lat = append(lat, time.Since(t0))
	}
	elapsed := time.Since(start)
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(b.N*members)/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
}

// BenchmarkFanoutSerialize compares the two ways to produce 256 copies of
// one group message that differ only in 'to', serialized for the wire:
// a deep copy per recipient (what a router does for one-to-one messages)
// against xmlstream.Shared (children serialized once, spliced per
// recipient).
func BenchmarkFanoutSerialize(b *testing.B) {
	msg := xmlstream.New(xmlstream.NSClient, "message", "from", room+"/Alice", "type", "groupchat", "id", "abc123")
	msg.Append(xmlstream.New(xmlstream.NSClient, "body").AppendText("Hello everyone, this is a typical group message of about a hundred bytes, with an emoji 🎉 in it."))
	msg.Append(xmlstream.New("urn:xmpp:sid:0", "stanza-id", "id", "GH4Q2ZJ3KD7TZBWM", "by", room))
	msg.Append(xmlstream.New("urn:xmpp:occupant-id:0", "occupant-id", "id", "f3Ak2mZ0qLw8Yb1sXc9RtA"))
	tos := make([]string, 256)
	for i := range tos {
		tos[i] = fmt.Sprintf("m%03d@localhost/device", i)
	}
	buf := make([]byte, 0, 4096)
	b.Run("copy", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			for _, to := range tos {
				c := msg.Copy()
				c.SetAttr("to", to)
				buf = xmlstream.Append(buf[:0], c, xmlstream.NSClient)
			}
		}
		b.ReportMetric(float64(b.N*len(tos))/b.Elapsed().Seconds(), "deliveries/s")
	})
	b.Run("shared", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			sh := xmlstream.Share(msg)
			for _, to := range tos {
				buf = xmlstream.Append(buf[:0], sh.With("to", to), xmlstream.NSClient)
			}
		}
		b.ReportMetric(float64(b.N*len(tos))/b.Elapsed().Seconds(), "deliveries/s")
	})
}

// BenchmarkConcurrentRooms posts in 32 groups of 8 members at once, one
// poster per group: what a node sustains when many groups are busy. Each
// post returns once the message is archived (SQLite, fsync'd; concurrent
// posts share a commit) and queued to the 8 members' sessions.
func BenchmarkConcurrentRooms(b *testing.B) {
	const rooms, members = 32, 8
	e := newEnvAt(b, b.TempDir(), nil)
	posters := make(chan *client, rooms)
	for i := 0; i < rooms; i++ {
		roomJID := fmt.Sprintf("r%02d@groups.localhost", i)
		owner := e.login(fmt.Sprintf("alice@localhost/r%02d", i))
		owner.join(roomJID, "Owner", "")
		mustOK(b, owner.iq(roomJID, "set", "<query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query>"))
		for m := 1; m < members; m++ {
			j := jid.MustParse(fmt.Sprintf("u%02d%d@localhost/d", i, m))
			mustOK(b, owner.iq(roomJID, "set", "<query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='member' jid='"+j.Bare().String()+"'/></query>"))
			s := session.New(server.NewID(), j, 1<<20, e.srv.Hooks())
			s.Attach(&wireWriter{})
			e.srv.Bound(context.Background(), s)
			e.srv.Handle(context.Background(), s, xmlstream.New(xmlstream.NSClient, "presence", "to", roomJID+"/"+j.Local()).
				Append(xmlstream.New("http://jabber.org/protocol/muc", "x").Append(xmlstream.New("http://jabber.org/protocol/muc", "history", "maxstanzas", "0"))))
		}
		posters <- owner
	}
	var n atomic.Int64
	b.SetParallelism(rooms / 2) // GOMAXPROCS=2 on the reference VM: 32 posters
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c := <-posters
		roomJID := "r" + c.full.Resource()[1:] + "@groups.localhost"
		el := xmlstream.New(xmlstream.NSClient, "message", "to", roomJID, "type", "groupchat").
			Append(xmlstream.New(xmlstream.NSClient, "body").AppendText("Hello everyone, a typical group message."))
		for pb.Next() {
			e.srv.Handle(context.Background(), c.sess, el.Copy())
			n.Add(1)
		}
	})
	b.ReportMetric(float64(n.Load())/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(n.Load()*members)/b.Elapsed().Seconds(), "deliveries/s")
}
