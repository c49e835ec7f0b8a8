package xmlstream

import (
	"bytes"
	"encoding/xml"
	"io"
	"runtime"
	"strings"
	"testing"
)

// The benchmark load: what a busy client sends most. A chat message with a
// receipt request and a chat state, a presence with entity caps, and a
// roster get; plus the roster result a server decodes on a
// server-to-server link or in tests.
var benchMix = []string{
	`<message from='juliet@example.com/balcony' to='romeo@example.net' id='ktx72v49' type='chat' xml:lang='en'><body>Art thou not Romeo, and a Montague? Neither, fair maid, if either thee dislike.</body><request xmlns='urn:xmpp:receipts'/><active xmlns='http://jabber.org/protocol/chatstates'/></message>`,
	`<presence from='juliet@example.com/balcony' id='pres1'><show>away</show><status>Out to lunch</status><priority>5</priority><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://conversations.im' ver='QgayPKawpkPSDYmwT/WM94uAlu0='/></presence>`,
	`<iq type='get' id='roster_1' from='juliet@example.com/balcony'><query xmlns='jabber:iq:roster' ver='ver7'/></iq>`,
	`<iq type='result' id='roster_1' to='juliet@example.com/balcony'><query xmlns='jabber:iq:roster' ver='ver11'><item jid='romeo@example.net' name='Romeo' subscription='both'><group>Friends</group></item><item jid='mercutio@example.com' name='Mercutio' subscription='from'/><item jid='benvolio@example.net' name='Benvolio' subscription='both'/></query></iq>`,
}

const benchRepeat = 100

// benchStream is a client stream carrying benchMix benchRepeat times, with
// the newline keepalive-style whitespace clients put between stanzas.
func benchStream() ([]byte, int) {
	var sb strings.Builder
	sb.WriteString(header)
	for range benchRepeat {
		for _, s := range benchMix {
			sb.WriteString(s)
			sb.WriteByte('\n')
		}
	}
	sb.WriteString("</stream:stream>")
	return []byte(sb.String()), benchRepeat * len(benchMix)
}

// perStanza reports time and allocations per stanza, the figures that scale
// with traffic, next to the per-op ones.
func perStanza(b *testing.B, stanzas int, before *runtime.MemStats) {
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	n := float64(b.N * stanzas)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/stanza")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/n, "allocs/stanza")
}

func BenchmarkDecoder(b *testing.B) {
	data, n := benchStream()
	r := bytes.NewReader(data)
	d := NewDecoder(r, Limits{})
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ResetTimer()
	for range b.N {
		r.Reset(data)
		d.Reset(r)
		count := 0
		for {
			ev, err := d.Next()
			if err != nil {
				if err != io.EOF {
					b.Fatal(err)
				}
				break
			}
			if ev.Kind == ElementEvent {
				count++
			}
		}
		if count != n {
			b.Fatalf("%d stanzas, want %d", count, n)
		}
	}
	b.StopTimer()
	perStanza(b, n, &ms)
}

// BenchmarkEncodingXML is the baseline: encoding/xml reading the same
// stream and building the same trees, which is what the decoder replaces.
func BenchmarkEncodingXML(b *testing.B) {
	data, n := benchStream()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ResetTimer()
	for range b.N {
		if count := stdDecode(b, data); count != n {
			b.Fatalf("%d stanzas, want %d", count, n)
		}
	}
	b.StopTimer()
	perStanza(b, n, &ms)
}

// BenchmarkEncodingXMLTokens only pulls tokens from encoding/xml, without
// building trees: a lower bound for any encoding/xml based reader.
func BenchmarkEncodingXMLTokens(b *testing.B) {
	data, n := benchStream()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ResetTimer()
	for range b.N {
		d := xml.NewDecoder(bytes.NewReader(data))
		for {
			if _, err := d.Token(); err != nil {
				if err != io.EOF {
					b.Fatal(err)
				}
				break
			}
		}
	}
	b.StopTimer()
	perStanza(b, n, &ms)
}

// stdDecode reads a stream with encoding/xml into Element trees and returns
// the number of top-level elements.
func stdDecode(b *testing.B, data []byte) int {
	d := xml.NewDecoder(bytes.NewReader(data))
	var stack []*Element
	count := 0
	for {
		tok, err := d.Token()
		if err != nil {
			if err != io.EOF {
				b.Fatal(err)
			}
			return count
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			el := &Element{Space: tok.Name.Space, Name: tok.Name.Local}
			for _, a := range tok.Attr {
				if a.Name.Space == "xmlns" || a.Name.Space == "" && a.Name.Local == "xmlns" {
					continue
				}
				name := a.Name.Local
				if a.Name.Space == NSXML {
					name = "xml:" + name
				}
				el.Attrs = append(el.Attrs, Attr{name, a.Value})
			}
			if len(stack) > 1 {
				p := stack[len(stack)-1]
				p.Children = append(p.Children, Node{Elem: el})
			}
			stack = append(stack, el)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
			if len(stack) == 1 {
				count++
			}
		case xml.CharData:
			if len(stack) > 1 {
				p := stack[len(stack)-1]
				p.Children = append(p.Children, Node{Text: string(tok)})
			}
		}
	}
}

// BenchmarkParse is the WebSocket path: one frame per stanza.
func BenchmarkParse(b *testing.B) {
	frames := make([][]byte, len(benchMix))
	size := 0
	for i, s := range benchMix {
		frames[i] = []byte(strings.Replace(s, ">", " xmlns='jabber:client'>", 1))
		size += len(frames[i])
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for range b.N {
		for _, f := range frames {
			if _, err := Parse(f, Limits{}); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkDecoderLarge reads 64 KiB stanzas (an avatar upload), which
// exercises buffer growth and the non-arena string path.
func BenchmarkDecoderLarge(b *testing.B) {
	payload := strings.Repeat("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg", 64<<10/96)
	el := `<iq type='set' id='av1'><vCard xmlns='vcard-temp'><PHOTO><TYPE>image/png</TYPE><BINVAL>` + payload + `</BINVAL></PHOTO></vCard></iq>`
	data := []byte(header + el + el + el + el)
	r := bytes.NewReader(data)
	d := NewDecoder(r, Limits{})
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for range b.N {
		r.Reset(data)
		d.Reset(r)
		for {
			if _, err := d.Next(); err != nil {
				if err != io.EOF {
					b.Fatal(err)
				}
				break
			}
		}
	}
}

// BenchmarkAppend serializes the decoded mix into a reused buffer, as the
// TCP writer does.
func BenchmarkAppend(b *testing.B) {
	var els []*Element
	size := 0
	d := NewDecoder(strings.NewReader(header+strings.Join(benchMix, "")), Limits{})
	d.Next()
	for {
		ev, err := d.Next()
		if err != nil {
			break
		}
		els = append(els, ev.Elem)
		size += len(Append(nil, ev.Elem, NSClient))
	}
	buf := make([]byte, 0, 4096)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for range b.N {
		buf = buf[:0]
		for _, el := range els {
			buf = Append(buf, el, NSClient)
		}
	}
}

// BenchmarkEncodingXMLEncode is the serialization baseline: encoding/xml's
// Encoder writing the same trees token by token.
func BenchmarkEncodingXMLEncode(b *testing.B) {
	var els []*Element
	d := NewDecoder(strings.NewReader(header+strings.Join(benchMix, "")), Limits{})
	d.Next()
	size := 0
	for {
		ev, err := d.Next()
		if err != nil {
			break
		}
		els = append(els, ev.Elem)
		size += len(Append(nil, ev.Elem, NSClient))
	}
	var buf bytes.Buffer
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for range b.N {
		buf.Reset()
		enc := xml.NewEncoder(&buf)
		for _, el := range els {
			if err := stdEncode(enc, el, NSClient); err != nil {
				b.Fatal(err)
			}
		}
		enc.Flush()
	}
}

func stdEncode(enc *xml.Encoder, el *Element, parentNS string) error {
	start := xml.StartElement{Name: xml.Name{Local: el.Name}}
	if el.Space != parentNS {
		start.Name.Space = el.Space
	}
	for _, a := range el.Attrs {
		start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: a.Name}, Value: a.Value})
	}
	if err := enc.EncodeToken(start); err != nil {
		return err
	}
	for _, n := range el.Children {
		var err error
		if n.Elem != nil {
			err = stdEncode(enc, n.Elem, el.Space)
		} else {
			err = enc.EncodeToken(xml.CharData(n.Text))
		}
		if err != nil {
			return err
		}
	}
	return enc.EncodeToken(start.End())
}
