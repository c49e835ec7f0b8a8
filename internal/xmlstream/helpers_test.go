package xmlstream

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// oneByteReader returns one byte per Read, the worst case for a resumable
// parser.
type oneByteReader struct{ s string }

func (r *oneByteReader) Read(p []byte) (int, error) {
	if len(r.s) == 0 {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	p[0] = r.s[0]
	r.s = r.s[1:]
	return 1, nil
}

// chunkReader returns the chunks it was given, one per Read, then EOF.
type chunkReader struct{ chunks []string }

func (r *chunkReader) Read(p []byte) (int, error) {
	for len(r.chunks) > 0 && r.chunks[0] == "" {
		r.chunks = r.chunks[1:]
	}
	if len(r.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.chunks[0])
	r.chunks[0] = r.chunks[0][n:]
	return n, nil
}

// dump renders a tree canonically: resolved names, attributes in order,
// adjacent text merged. Two trees are equal when their dumps are.
func dump(e *Element) string {
	if e == nil {
		return "<nil>"
	}
	var sb strings.Builder
	var rec func(e *Element)
	rec = func(e *Element) {
		fmt.Fprintf(&sb, "{%s}%s", e.Space, e.Name)
		for _, a := range e.Attrs {
			fmt.Fprintf(&sb, " %s=%q", a.Name, a.Value)
		}
		sb.WriteByte('[')
		text := ""
		for _, n := range e.Children {
			if n.Elem == nil {
				text += n.Text
				continue
			}
			if text != "" {
				fmt.Fprintf(&sb, "%q", text)
				text = ""
			}
			rec(n.Elem)
		}
		if text != "" {
			fmt.Fprintf(&sb, "%q", text)
		}
		sb.WriteByte(']')
	}
	rec(e)
	return sb.String()
}

func dumpEvent(ev Event) string {
	switch ev.Kind {
	case StreamStart:
		return "start(" + ev.DefaultNS + ") " + dump(ev.Elem)
	case ElementEvent:
		return dump(ev.Elem)
	case StreamEnd:
		return "end"
	}
	return "?"
}

// decodeAll reads events until an error and returns their dumps and the
// error (io.EOF after a clean end).
func decodeAll(r io.Reader, lim Limits) ([]string, error) {
	d := NewDecoder(r, lim)
	var out []string
	for {
		ev, err := d.Next()
		if err != nil {
			return out, err
		}
		out = append(out, dumpEvent(ev))
	}
}

// kindOf names the sentinel an error wraps, for table tests.
func kindOf(err error) string {
	switch {
	case err == nil:
		return "nil"
	case errors.Is(err, ErrNotWellFormed):
		return "not-well-formed"
	case errors.Is(err, ErrRestrictedXML):
		return "restricted-xml"
	case errors.Is(err, ErrTooLarge):
		return "too-large"
	case errors.Is(err, ErrBadNamespacePrefix):
		return "bad-namespace-prefix"
	case err == io.EOF:
		return "EOF"
	case err == io.ErrUnexpectedEOF:
		return "unexpected-EOF"
	}
	return "other: " + err.Error()
}

const header = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>`

// Realistic stanzas, used as test input, fuzz seeds and benchmark load.
var stanzas = []string{
	`<message from='juliet@example.com/balcony' to='romeo@example.net' id='ktx72v49' type='chat' xml:lang='en'><body>Art thou not Romeo, and a Montague?</body><request xmlns='urn:xmpp:receipts'/><active xmlns='http://jabber.org/protocol/chatstates'/></message>`,
	`<presence from='juliet@example.com/balcony' id='pres1'><show>away</show><status>Out to lunch &amp; back soon</status><priority>5</priority><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://conversations.im' ver='QgayPKawpkPSDYmwT/WM94uAlu0='/></presence>`,
	`<iq type='get' id='roster_1' from='juliet@example.com/balcony'><query xmlns='jabber:iq:roster' ver='ver7'/></iq>`,
	`<iq type='result' id='roster_1' to='juliet@example.com/balcony'><query xmlns='jabber:iq:roster' ver='ver11'><item jid='romeo@example.net' name='Romeo' subscription='both'><group>Friends</group></item><item jid='mercutio@example.com' name='Mercutio' subscription='from'/><item jid='benvolio@example.net' name='Benvolio' subscription='both'/></query></iq>`,
	`<message to='romeo@example.net' id='m2' type='chat'><body>multi
line &lt;b&gt; text &#x1F600; and 'quotes' "too"</body><thread>e0ffe42b28561960c6b12b944a092794b9683a38</thread><markable xmlns='urn:xmpp:chat-markers:0'/></message>`,
	`<r xmlns='urn:xmpp:sm:3'/>`,
	`<a xmlns='urn:xmpp:sm:3' h='42'/>`,
	`<iq type='set' id='bind_1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>balcony</resource></bind></iq>`,
	`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGp1bGlldAByMG0zMG15cjBtMzA=</auth>`,
	`<message to='room@muc.example.com' type='groupchat' id='g1'><body>Hello, room</body><html xmlns='http://jabber.org/protocol/xhtml-im'><body xmlns='http://www.w3.org/1999/xhtml'><p>Hello, <em>room</em></p></body></html></message>`,
	`<stream:error><not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>`,
}
