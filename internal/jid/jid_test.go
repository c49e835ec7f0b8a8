package jid

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

type validCase struct {
	in                      string
	local, domain, resource string
}

// validCases includes every valid example of RFC 7622 §3.5 (numbered as in
// the RFC), plus the behaviours the rest of the server relies on.
var validCases = []validCase{
	// RFC 7622 §3.5, examples 1-15.
	{"juliet@example.com", "juliet", "example.com", ""},
	{"juliet@example.com/foo", "juliet", "example.com", "foo"},
	{"juliet@example.com/foo bar", "juliet", "example.com", "foo bar"},
	{"juliet@example.com/foo@bar", "juliet", "example.com", "foo@bar"},
	{`foo\20bar@example.com`, `foo\20bar`, "example.com", ""},
	{"fussball@example.com", "fussball", "example.com", ""},
	{"fußball@example.com", "fußball", "example.com", ""},
	{"π@example.com", "π", "example.com", ""},
	{"Σ@example.com/foo", "σ", "example.com", "foo"},
	{"σ@example.com/foo", "σ", "example.com", "foo"},
	{"ς@example.com/foo", "ς", "example.com", "foo"},
	{"king@example.com/♚", "king", "example.com", "♚"},
	{"example.com", "", "example.com", ""},
	{"example.com/foobar", "", "example.com", "foobar"},
	{"a.example.com/b@example.net", "", "a.example.com", "b@example.net"},

	// Case: local and domain fold, resource is preserved.
	{"Ωmega@EXAMPLE.com", "ωmega", "example.com", ""},
	{"Juliet@Example.COM/Balcony", "juliet", "example.com", "Balcony"},
	{"JULIET@EXAMPLE.COM/BALCONY", "juliet", "example.com", "BALCONY"},
	{"ÉLODIE@BÜCHER.example/Téléphone", "élodie", "bücher.example", "Téléphone"},
	{"\u212Aelvin@example.com", "kelvin", "example.com", ""}, // KELVIN SIGN lower-cases to k

	// Splitting: first '/' starts the resource, first '@' before it ends the local.
	{"a@b/c/d", "a", "b", "c/d"},
	{"a@b/c@d/e", "a", "b", "c@d/e"},
	{"b/@", "", "b", "@"},
	{"a@b//", "a", "b", "/"},

	// Trailing dot is stripped from the domain, once.
	{"example.com.", "", "example.com", ""},
	{"juliet@example.com./r", "juliet", "example.com", "r"},
	{"localhost.", "", "localhost", ""},
	{"juliet@example。com", "juliet", "example.com", ""},
	{"juliet@example．com。", "juliet", "example.com", ""},

	// IP literals.
	{"[::1]", "", "[::1]", ""},
	{"juliet@[2001:DB8::1]/r", "juliet", "[2001:db8::1]", "r"},
	{"[2001:0db8:0:0:0:0:0:1]", "", "[2001:db8::1]", ""},
	{"[::ffff:192.0.2.1].", "", "[::ffff:192.0.2.1]", ""},
	{"127.0.0.1", "", "127.0.0.1", ""},
	{"juliet@192.0.2.1/r", "juliet", "192.0.2.1", "r"},

	// Width folding and normalisation.
	{"ＪＵＬＩＥＴ@ｅｘａｍｐｌｅ.com", "juliet", "example.com", ""},
	{"e\u0301@example.com/e\u0301", "é", "example.com", "é"},
	{"a@example.com/x\u00a0y\u3000z", "a", "example.com", "x y z"},
	{"a@example.com/ leading and trailing ", "a", "example.com", " leading and trailing "},

	// Bidi rule applies only to right-to-left strings.
	{"1é@example.com", "1é", "example.com", ""},
	{"_é@example.com", "_é", "example.com", ""},
	{"\u05d0\u05d1@example.com", "\u05d0\u05d1", "example.com", ""},
	{"\u05d0\u05d1.example", "", "\u05d0\u05d1.example", ""},
	{"a@\u05d0\u05d1.example/\u05d0", "a", "\u05d0\u05d1.example", "\u05d0"},

	// Assorted.
	{"xn--bcher-kva.example", "", "xn--bcher-kva.example", ""},
	{"a-b.c-d.example", "", "a-b.c-d.example", ""},
	{"3com.example", "", "3com.example", ""},
	{"a!#$%*+,.;=?[]^_`{|}~@example.com", "a!#$%*+,.;=?[]^_`{|}~", "example.com", ""},
	{"a@example.com/\"&'<>:", "a", "example.com", "\"&'<>:"},
}

// invalidCases includes every invalid example of RFC 7622 §3.5 (16-21).
var invalidCases = []string{
	// RFC 7622 §3.5, examples 16-21.
	`"juliet"@example.com`,
	"foo bar@example.com",
	"juliet@example.com/",
	"henry\u2163@example.com",
	"♚@example.com",
	"@example.com",

	// Empty parts.
	"", "@", "/", "@/", "a@", "a@/r", "example.com/", "/r", "a@example.com/",

	// Forbidden localpart characters (RFC 7622 §3.3.1).
	"ju&liet@example.com", "a'b@example.com", "a:b@example.com",
	"a<b@example.com", "a>b@example.com", "a\"b@example.com",
	"a＠b@example.com", // full-width @ folds to '@'
	"a<\u0338b@example.com",

	// Controls and invalid UTF-8.
	"a\x00@example.com", "a\x7f@example.com", "a\tb@example.com",
	"a@example.com/\x00", "a@example.com/\x7f", "a@example.com/x\ny",
	"\xff@example.com", "a@\xff.example", "a@example.com/\xff",
	"a@example.com/\xc3",

	// Domain rules.
	"a@b@c", "exa mple.com", "exa_mple.com", "-example.com", "example-.com",
	"a..b", ".example.com", "example.com..", ".", "..", "a@.", "a@./r",
	"example.com!", "ex\u00e4mple.c\u00f6m!",
	"\u0301a.example", "example.\u0301",
	"ǅ.example", "\u2163.example", "♚.example",
	"1abc.\u05d0\u05d1", // Bidi domain: every label must pass the Bidi rule
	"a\u05d0.example",
	"[::1", "[::1]]", "[1.2.3.4]", "[fe80::1%eth0]", "[zz]", "[]", "[::1].x",
	"[::1]:5222",

	// Bidi rule on the localpart.
	"a\u05d0@example.com",
	"\u05d0a@example.com",
}

func TestParseValid(t *testing.T) {
	for _, tc := range validCases {
		for _, fast := range []bool{true, false} {
			j, err := parse(tc.in, fast)
			if err != nil {
				t.Errorf("parse(%q, fast=%v): unexpected error %v", tc.in, fast, err)
				continue
			}
			if j.Local() != tc.local || j.Domain() != tc.domain || j.Resource() != tc.resource {
				t.Errorf("parse(%q, fast=%v) = (%q, %q, %q), want (%q, %q, %q)",
					tc.in, fast, j.Local(), j.Domain(), j.Resource(), tc.local, tc.domain, tc.resource)
			}
			if again, err := Parse(j.String()); err != nil || again != j {
				t.Errorf("Parse(%q) = %v, %v; want %v", j.String(), again, err, j)
			}
		}
	}
}

func TestParseInvalid(t *testing.T) {
	for _, in := range invalidCases {
		for _, fast := range []bool{true, false} {
			j, err := parse(in, fast)
			if err == nil {
				t.Errorf("parse(%q, fast=%v) = %#v, want error", in, fast, j)
				continue
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("parse(%q): error %v does not wrap ErrMalformed", in, err)
			}
			if !j.IsZero() {
				t.Errorf("parse(%q): non-zero JID %#v returned with error", in, j)
			}
		}
	}
}

// domainOfLen builds a valid host name of exactly n bytes from labels of at
// most 63 bytes.
func domainOfLen(n int) string {
	var b strings.Builder
	for n > 0 {
		if b.Len() > 0 {
			b.WriteByte('.')
			n--
		}
		l := min(63, n)
		if n-l == 1 { // a lone dot would be left over
			l--
		}
		b.WriteString(strings.Repeat("d", l))
		n -= l
	}
	return b.String()
}

func TestLengthLimits(t *testing.T) {
	if d := domainOfLen(1023); len(d) != 1023 {
		t.Fatalf("domainOfLen(1023) has length %d", len(d))
	}
	cases := []struct {
		name string
		in   string
		ok   bool
	}{
		{"local 1023", strings.Repeat("a", 1023) + "@example.com", true},
		{"local 1024", strings.Repeat("a", 1024) + "@example.com", false},
		{"local 1023 upper", strings.Repeat("A", 1023) + "@example.com", true},
		{"local 1023 unicode", strings.Repeat("é", 511) + "a@example.com", true},
		{"local 1024 unicode", strings.Repeat("é", 512) + "@example.com", false},
		{"local 1023 after folding", strings.Repeat("Ａ", 1023) + "@example.com", true},
		{"local 1024 after folding", strings.Repeat("Ａ", 1024) + "@example.com", false},
		{"resource 1023", "example.com/" + strings.Repeat("r", 1023), true},
		{"resource 1024", "example.com/" + strings.Repeat("r", 1024), false},
		{"resource 1023 unicode", "example.com/" + strings.Repeat("ж", 511) + "r", true},
		{"resource 1024 unicode", "example.com/" + strings.Repeat("ж", 512), false},
		{"resource 1023 after mapping", "example.com/" + strings.Repeat("\u3000", 1023), true},
		{"domain 1023", domainOfLen(1023), true},
		{"domain 1024", domainOfLen(1024), false},
		{"domain 1023 + trailing dot", domainOfLen(1023) + ".", true},
		{"domain 1023 upper", strings.ToUpper(domainOfLen(1023)), true},
		{"label 63", strings.Repeat("l", 63) + ".example", true},
		{"label 64", strings.Repeat("l", 64) + ".example", false},
		{"label 63 unicode", strings.Repeat("ü", 31) + "l.example", true},
		{"label 64 unicode", strings.Repeat("ü", 32) + ".example", false},
		{"huge", strings.Repeat("a", 1<<20) + "@example.com", false},
	}
	for _, tc := range cases {
		for _, fast := range []bool{true, false} {
			j, err := parse(tc.in, fast)
			if (err == nil) != tc.ok {
				t.Errorf("%s (fast=%v): err = %v, want ok=%v", tc.name, fast, err, tc.ok)
			}
			if err == nil && (len(j.Local()) > 1023 || len(j.Domain()) > 1023 || len(j.Resource()) > 1023) {
				t.Errorf("%s: part longer than 1023 bytes accepted", tc.name)
			}
		}
	}
}

func TestNew(t *testing.T) {
	j, err := New("Juliet", "Example.COM.", "Balcony")
	if err != nil || j != MustParse("juliet@example.com/Balcony") {
		t.Errorf("New = %v, %v", j, err)
	}
	j, err = New("", "example.com", "")
	if err != nil || j != MustParse("example.com") || !j.IsBare() || j.Local() != "" {
		t.Errorf("New domain-only = %v, %v", j, err)
	}
	// A resource may contain anything Parse would put there.
	j, err = New("a", "b", "c/d@e")
	if err != nil || j.Resource() != "c/d@e" || MustParse(j.String()) != j {
		t.Errorf("New with '/' in resource = %v, %v", j, err)
	}
	for _, bad := range [][3]string{
		{"", "", ""},
		{"a", "", "r"},
		{"a@b", "example.com", ""},
		{"a/b", "example.com", ""},
		{"a", "b/c", ""},
		{"a", "b@c", ""},
		{"a", "example.com", "\x00"},
	} {
		if j, err := New(bad[0], bad[1], bad[2]); err == nil || !errors.Is(err, ErrMalformed) {
			t.Errorf("New(%q, %q, %q) = %v, %v; want ErrMalformed", bad[0], bad[1], bad[2], j, err)
		}
	}
}

func TestAccessors(t *testing.T) {
	full := MustParse("Juliet@Example.com/Balcony")
	if got := full.String(); got != "juliet@example.com/Balcony" {
		t.Errorf("String = %q", got)
	}
	if got := full.BareString(); got != "juliet@example.com" {
		t.Errorf("BareString = %q", got)
	}
	if full.IsBare() || full.IsZero() {
		t.Errorf("full JID reported bare or zero")
	}
	bare := full.Bare()
	if bare != MustParse("juliet@example.com") || !bare.IsBare() || bare.String() != bare.BareString() {
		t.Errorf("Bare = %v", bare)
	}
	dom := full.Domainpart()
	if dom != MustParse("example.com") || dom.String() != "example.com" || dom.BareString() != "example.com" {
		t.Errorf("Domainpart = %v", dom)
	}
	if got := MustParse("example.com/r").String(); got != "example.com/r" {
		t.Errorf("String of domain/resource = %q", got)
	}

	other, err := bare.WithResource("Ｐhone\u00a01")
	if err != nil || other.String() != "juliet@example.com/Ｐhone 1" || other.Bare() != bare {
		t.Errorf("WithResource = %v, %v", other, err)
	}
	if b, err := full.WithResource(""); err != nil || b != bare {
		t.Errorf("WithResource(\"\") = %v, %v; want bare", b, err)
	}
	if _, err := full.WithResource("\x00"); !errors.Is(err, ErrMalformed) {
		t.Errorf("WithResource(NUL) error = %v", err)
	}
	if _, err := (JID{}).WithResource("r"); !errors.Is(err, ErrMalformed) {
		t.Errorf("zero.WithResource error = %v", err)
	}

	var zero JID
	if !zero.IsZero() || zero.String() != "" || zero.BareString() != "" || !zero.IsBare() {
		t.Errorf("zero JID misbehaves")
	}

	// Canonical forms make JIDs usable as map keys.
	m := map[JID]int{MustParse("juliet@example.com"): 1}
	if m[MustParse("JULIET@EXAMPLE.COM.")] != 1 || m[MustParse("ＪＵＬＩＥＴ@example。com")] != 1 {
		t.Errorf("equivalent spellings do not hit the same map key")
	}
}

func TestMustParsePanics(t *testing.T) {
	defer func() {
		r := recover()
		if err, ok := r.(error); !ok || !errors.Is(err, ErrMalformed) {
			t.Errorf("MustParse panicked with %v, want an ErrMalformed error", r)
		}
	}()
	MustParse("@example.com")
}

func TestPrepareLocal(t *testing.T) {
	for in, want := range map[string]string{
		"juliet": "juliet", "Juliet": "juliet", "Ωmega": "ωmega", "ＪＵＬＩＥＴ": "juliet", "1é": "1é",
	} {
		if got, err := PrepareLocal(in); err != nil || got != want {
			t.Errorf("PrepareLocal(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "a b", "a@b", "a/b", "a:b", "♚", strings.Repeat("a", 1024)} {
		if got, err := PrepareLocal(in); !errors.Is(err, ErrMalformed) {
			t.Errorf("PrepareLocal(%q) = %q, %v; want ErrMalformed", in, got, err)
		}
	}
}

// TestFastPathAllocs pins the reason the ASCII shortcut exists: parsing a
// canonical ASCII JID must not allocate.
func TestFastPathAllocs(t *testing.T) {
	for _, s := range []string{"juliet@example.com/balcony", "example.com", "juliet@example.com"} {
		var sink JID
		n := testing.AllocsPerRun(100, func() { sink, _ = Parse(s) })
		if n != 0 {
			t.Errorf("Parse(%q) allocates %v times", s, n)
		}
		_ = sink
	}
}

// checkJID asserts every property that must hold for any input string: no
// panic, identical outcome with and without the ASCII shortcuts, errors that
// wrap ErrMalformed, and for valid input a canonical form that is a fixed
// point of Parse and of New.
func checkJID(t *testing.T, s string) {
	t.Helper()
	fast, errFast := parse(s, true)
	slow, errSlow := parse(s, false)
	if (errFast == nil) != (errSlow == nil) || fast != slow {
		t.Fatalf("fast and slow paths disagree on %q:\nfast: %#v, %v\nslow: %#v, %v", s, fast, errFast, slow, errSlow)
	}
	if errFast != nil {
		if !errors.Is(errFast, ErrMalformed) || !errors.Is(errSlow, ErrMalformed) {
			t.Fatalf("errors for %q do not wrap ErrMalformed: %v / %v", s, errFast, errSlow)
		}
		return
	}
	j := fast
	for _, part := range []string{j.local, j.domain, j.resource} {
		if len(part) > maxPartBytes || !utf8.ValidString(part) {
			t.Fatalf("%q: invalid part %q in %#v", s, part, j)
		}
	}
	if j.domain == "" || strings.ContainsAny(j.domain, "@/") || strings.ContainsAny(j.local, "@/") {
		t.Fatalf("%q: bad canonical parts %#v", s, j)
	}
	str := j.String()
	for _, fastAgain := range []bool{true, false} {
		again, err := parse(str, fastAgain)
		if err != nil || again != j {
			t.Fatalf("not idempotent (fast=%v): Parse(%q) = %#v, %v; Parse(%q) = %#v, %v",
				fastAgain, s, j, nil, str, again, err)
		}
	}
	if n, err := New(j.Local(), j.Domain(), j.Resource()); err != nil || n != j {
		t.Fatalf("New(parts of %q) = %#v, %v; want %#v", s, n, err, j)
	}
	if b, err := Parse(j.BareString()); err != nil || b != j.Bare() {
		t.Fatalf("Parse(BareString of %q) = %#v, %v", s, b, err)
	}
}

func TestFastSlowAgreeOnCases(t *testing.T) {
	for _, tc := range validCases {
		checkJID(t, tc.in)
	}
	for _, in := range invalidCases {
		checkJID(t, in)
	}
}

func FuzzParse(f *testing.F) {
	for _, tc := range validCases {
		f.Add(tc.in)
	}
	for _, in := range invalidCases {
		f.Add(in)
	}
	f.Add("Juliet@Example.com/Balcony")
	f.Add("a@\u05d0\u05d1.\u05d2/r")
	f.Add("ǅ@example.com")
	f.Add("İ@example.com")
	f.Fuzz(func(t *testing.T, s string) {
		checkJID(t, s)
	})
}

// FuzzParts exercises each part's preparation directly, so the fuzzer can
// reach characters ('@', '/') that Parse would have split on.
func FuzzParts(f *testing.F) {
	f.Add("juliet", "example.com", "balcony")
	f.Add("Ωmega", "BÜCHER.example.", "Téléphone")
	f.Add("a@b", "[::1]", "c/d")
	f.Fuzz(func(t *testing.T, local, domain, resource string) {
		type prep func(string, bool) (string, error)
		for _, p := range []struct {
			name string
			fn   prep
			in   string
		}{
			{"local", prepareLocal, local},
			{"domain", prepareDomain, domain},
			{"resource", prepareResource, resource},
		} {
			a, errA := p.fn(p.in, true)
			b, errB := p.fn(p.in, false)
			if (errA == nil) != (errB == nil) || a != b {
				t.Fatalf("%s %q: fast (%q, %v) != slow (%q, %v)", p.name, p.in, a, errA, b, errB)
			}
			if errA != nil {
				continue
			}
			if again, err := p.fn(a, false); err != nil || again != a {
				t.Fatalf("%s %q: prepared %q re-prepares to %q, %v", p.name, p.in, a, again, err)
			}
		}
		if j, err := New(local, domain, resource); err == nil {
			checkJID(t, j.String())
			if again := MustParse(j.String()); again != j {
				t.Fatalf("New(%q, %q, %q) = %#v does not round-trip", local, domain, resource, j)
			}
		}
	})
}

var benchSink JID

func BenchmarkParse(b *testing.B) {
	for _, bc := range []struct{ name, in string }{
		{"ascii", "juliet@example.com/balcony"},
		{"ascii-bare", "juliet@example.com"},
		{"ascii-domain", "example.com"},
		{"ascii-upper", "Juliet@Example.com/Balcony"},
		{"unicode", "ωmega@bücher.example/téléphone"},
		{"unicode-fold", "ΩMEGA@BÜCHER.example/Téléphone"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				j, err := Parse(bc.in)
				if err != nil {
					b.Fatal(err)
				}
				benchSink = j
			}
		})
	}
}

var stringSink string

func BenchmarkString(b *testing.B) {
	j := MustParse("juliet@example.com/balcony")
	b.ReportAllocs()
	for b.Loop() {
		stringSink = j.String()
	}
}
