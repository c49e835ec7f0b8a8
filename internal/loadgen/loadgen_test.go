package loadgen

import (
	"bufio"
	"math"
	"strings"
	"testing"
	"time"
)

// RFC 5802 §5: the SCRAM-SHA-1 exchange for user "user", password "pencil".
func TestSCRAMSHA1RFC5802(t *testing.T) {
	c, err := newSCRAM("SCRAM-SHA-1", "user", "pencil", "fyko+d2lbbFgONRv9qkxdawL")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.First(), "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL"; got != want {
		t.Fatalf("client-first = %q, want %q", got, want)
	}
	final, err := c.Final("r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096")
	if err != nil {
		t.Fatal(err)
	}
	if want := "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="; final != want {
		t.Fatalf("client-final = %q, want %q", final, want)
	}
	if err := c.Verify("v=rmF9pqV8S7suAoZWja4dJRkFsKQ="); err != nil {
		t.Fatalf("server signature: %v", err)
	}
	if err := c.Verify("v=AAAAAAAAAAAAAAAAAAAAAAAAAAA="); err == nil {
		t.Fatal("a wrong server signature was accepted")
	}
	if err := c.Verify("e=invalid-proof"); err == nil {
		t.Fatal("a server error was accepted")
	}
}

// RFC 7677 §3: the same for SCRAM-SHA-256.
func TestSCRAMSHA256RFC7677(t *testing.T) {
	c, err := newSCRAM("SCRAM-SHA-256", "user", "pencil", "rOprNGfwEbeRWgbNEkqO")
	if err != nil {
		t.Fatal(err)
	}
	c.First()
	final, err := c.Final("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
	if err != nil {
		t.Fatal(err)
	}
	if want := "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="; final != want {
		t.Fatalf("client-final = %q, want %q", final, want)
	}
	if err := c.Verify("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="); err != nil {
		t.Fatalf("server signature: %v", err)
	}
}

func TestSCRAMRejectsBadServerFirst(t *testing.T) {
	for _, sf := range []string{
		"r=someoneelse,s=QSXCR+Q6sek8bf92,i=4096",  // nonce not extending ours
		"r=abc,s=QSXCR+Q6sek8bf92,i=4096",          // nonce not extended at all
		"r=abcdef,s=QSXCR+Q6sek8bf92,i=0",          // no iterations
		"r=abcdef,s=!!,i=4096",                     // bad salt
		"m=ext,r=abcdef,s=QSXCR+Q6sek8bf92,i=4096", // mandatory extension
	} {
		c, _ := newSCRAM("SCRAM-SHA-1", "user", "pencil", "abc")
		c.First()
		if _, err := c.Final(sf); err == nil {
			t.Errorf("server-first %q accepted", sf)
		}
	}
	if got := saslName("a=b,c"); got != "a=3Db=2Cc" {
		t.Errorf("saslName = %q", got)
	}
}

func TestPercentileNearestRank(t *testing.T) {
	// 1..100: the p-th percentile by nearest rank is p itself.
	s := make([]int64, 100)
	for i := range s {
		s[i] = int64(i + 1)
	}
	for _, c := range []struct {
		q    float64
		want int64
	}{{50, 50}, {99, 99}, {99.9, 100}, {1, 1}, {0.5, 1}, {100, 100}, {0, 1}, {90, 90}} {
		if got := Percentile(s, c.q); got != c.want {
			t.Errorf("Percentile(1..100, %v) = %d, want %d", c.q, got, c.want)
		}
	}
	// Small samples: with 4 values p50 is the 2nd, p99 the 4th.
	if got := Percentile([]int64{10, 20, 30, 40}, 50); got != 20 {
		t.Errorf("p50 of 4 = %d", got)
	}
	if got := Percentile([]int64{10, 20, 30, 40}, 99); got != 40 {
		t.Errorf("p99 of 4 = %d", got)
	}
	if got := Percentile(nil, 50); got != 0 {
		t.Errorf("empty = %d", got)
	}
	// 1000 samples: p99.9 is the 999th.
	s = make([]int64, 1000)
	for i := range s {
		s[i] = int64(i + 1)
	}
	if got := Percentile(s, 99.9); got != 999 {
		t.Errorf("p99.9 of 1..1000 = %d, want 999", got)
	}
}

func TestSummarize(t *testing.T) {
	// Unsorted input, in nanoseconds; the summary is in milliseconds.
	ns := []int64{5e6, 1e6, 3e6, 2e6, 4e6}
	s := Summarize(ns)
	if s.N != 5 || s.P50 != 3 || s.P99 != 5 || s.Max != 5 || s.Mean != 3 {
		t.Errorf("Summarize = %+v", s)
	}
	if (Summarize(nil) != Summary{}) {
		t.Error("empty summary not zero")
	}
}

func TestMsgIDCarriesTime(t *testing.T) {
	now := time.Unix(1700000000, 123456789)
	id := msgID('c', now, 42)
	ts, ok := idTime(id, 'c')
	if !ok || ts != now.UnixNano() {
		t.Fatalf("idTime(%q) = %d, %v", id, ts, ok)
	}
	if _, ok := idTime(id, 'o'); ok {
		t.Error("prefix not checked")
	}
	if _, ok := idTime("purple1234", 'c'); ok {
		t.Error("foreign id accepted")
	}
}

func read(t *testing.T, s string) *reader {
	t.Helper()
	return newReader(bufio.NewReaderSize(strings.NewReader(s), 16))
}

func TestReaderBothQuoteStyles(t *testing.T) {
	// ejabberd: double quotes, xml:lang first; Prosody: single quotes,
	// another order. A tiny buffer forces tags across buffer refills.
	for _, in := range []string{
		`<?xml version='1.0'?><stream:stream xmlns="jabber:client" xmlns:stream="http://etherx.jabber.org/streams" id="abc" from="bench.local" version="1.0" xml:lang="en">` +
			`<iq xml:lang="en" to="u@bench.local/r" from="bench.local" type="result" id="reg1"/>`,
		`<?xml version='1.0'?><stream:stream xml:lang='en' id='abc' version='1.0' xmlns:stream='http://etherx.jabber.org/streams' from='bench.local' xmlns='jabber:client'>` +
			"\n <iq type='result' id='reg1' to='u@bench.local/r' from='bench.local'/>",
	} {
		r := read(t, in)
		h, err := r.StreamHeader()
		if err != nil {
			t.Fatal(err)
		}
		if h.Attr("id") != "abc" || h.Local() != "stream" {
			t.Errorf("header %+v", h)
		}
		e, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if e.Local() != "iq" || e.Attr("type") != "result" || e.Attr("id") != "reg1" {
			t.Errorf("iq %+v", e)
		}
	}
}

func TestReaderStanzaTree(t *testing.T) {
	in := `<stream:features><mechanisms xmlns="urn:ietf:params:xml:ns:xmpp-sasl"><mechanism>PLAIN</mechanism><mechanism>SCRAM-SHA-1</mechanism></mechanisms><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features>` +
		`<message from='a@b/c' id='x&apos;1' note='1 &gt; 0 and "q"' type="chat"><body>a &lt;b&gt; &amp; &#233;&#x263a; <![CDATA[<raw>]]></body>` +
		`<request xmlns='urn:xmpp:receipts'/></message>` +
		`<message to="x" weird='a>b'><received xmlns="urn:xmpp:receipts" id="c1.2"/></message></stream:stream>`
	r := read(t, in)
	f, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	m := f.Child("mechanisms", nsSASL)
	if m == nil || len(m.Children) != 2 || m.Children[1].Text != "SCRAM-SHA-1" {
		t.Fatalf("features %+v", f)
	}
	if f.Child("starttls", nsTLS) == nil || f.Child("starttls", nsSASL) != nil {
		t.Error("namespace check on children")
	}
	msg, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	if msg.Attr("id") != "x'1" || msg.Attr("note") != `1 > 0 and "q"` {
		t.Errorf("attrs %+v", msg.Attrs)
	}
	if b := msg.Child("body", ""); b == nil || b.Text != "a <b> & é☺ <raw>" {
		t.Errorf("body %+v", b)
	}
	if msg.Child("request", nsReceipts) == nil {
		t.Error("request missing")
	}
	rc, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	if rc.Attr("weird") != "a>b" || rc.Child("received", nsReceipts).Attr("id") != "c1.2" {
		t.Errorf("receipt %+v", rc)
	}
	if _, err := r.Next(); err != errStreamEnd {
		t.Errorf("end of stream: %v", err)
	}
}

func TestEscapeRoundTrip(t *testing.T) {
	s := `<a href="x">'&'</a>`
	if got := unescape([]byte(escape(s))); got != s {
		t.Errorf("round trip %q -> %q", s, got)
	}
}

func TestReportRatios(t *testing.T) {
	mk := func(label string, rate, mem float64) *Result {
		return &Result{Label: label, Scenario: "conns", Metrics: []Metric{
			{Name: "logins_per_s", Value: rate, Better: "higher"},
			{Name: "mem_per_conn", Value: mem, Better: "lower"},
		}}
	}
	rep := NewReport([]*Result{mk("ejabberd", 500, 80), mk("bluetick", 1000, 40)}, "bluetick")
	if rep.Labels[0] != "bluetick" {
		t.Errorf("base not first: %v", rep.Labels)
	}
	for _, row := range rep.Rows {
		r := row.Ratios["ejabberd"]
		switch row.Metric {
		case "logins_per_s":
			if r != 2 || Advantage(r, row.Better) != 2 {
				t.Errorf("rate ratio %v", r)
			}
		case "mem_per_conn":
			if r != 0.5 || Advantage(r, row.Better) != 2 {
				t.Errorf("memory ratio %v", r)
			}
		}
	}
	md := rep.Markdown()
	if !strings.Contains(md, "| conns | logins_per_s |  | higher | 1000 | 500.0 | 2.00 ✓ |") {
		t.Errorf("markdown:\n%s", md)
	}
	if math.IsNaN(Advantage(0, "lower")) {
		t.Error("NaN advantage")
	}
}
