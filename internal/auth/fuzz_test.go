package auth

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// checkResult enforces the Step contract on arbitrary input: either a
// *Failure with no data and not done, or no error.
func checkResult(t *testing.T, out []byte, done bool, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var f *Failure
	if !errors.As(err, &f) {
		t.Fatalf("error %v (%T) is not a *Failure", err, err)
	}
	if f.Condition == "" {
		t.Fatal("failure without condition")
	}
	if done || out != nil {
		t.Fatalf("failure with done=%v out=%q", done, out)
	}
}

func fuzzStore(t testing.TB) *memStore {
	m := newMemStore()
	m.add(t, "juliet", "romeo", 16)
	m.add(t, "a,b=c", "romeo", 16)
	return m
}

func FuzzSCRAMClientFirst(f *testing.F) {
	for _, s := range []string{
		"n,,n=juliet,r=fyko+d2lbbFgONRv9qkxdawL",
		"y,,n=juliet,r=abc",
		"n,a=juliet@example.com,n=juliet,r=abc",
		"n,,n=a=2Cb=3Dc,r=abc,x=ext",
		"p=tls-unique,,n=juliet,r=abc",
		"n,,m=x,n=juliet,r=abc",
		"n,,n=nobody,r=abc",
		"n,,n==2X,r=abc",
		"",
		",,,",
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	m := fuzzStore(f)
	f.Fuzz(func(t *testing.T, in []byte, sha1 bool) {
		mech := SCRAMSHA256
		if sha1 {
			mech = SCRAMSHA1
		}
		n := mustNegotiator(t, mech, Config{Lookup: m.lookup})
		out, done, err := n.Step(context.Background(), in)
		checkResult(t, out, done, err)
		if done {
			t.Fatal("done after client-first-message")
		}
		if err != nil || len(in) == 0 {
			return
		}
		// A challenge must be a well-formed server-first-message
		// echoing the client nonce: nothing the client sent may break
		// its structure.
		attrs := strings.Split(string(out), ",")
		if len(attrs) != 3 || !strings.HasPrefix(attrs[0], "r=") || !strings.HasPrefix(attrs[1], "s=") || !strings.HasPrefix(attrs[2], "i=") {
			t.Fatalf("server-first-message %q", out)
		}
		if !strings.Contains(string(in), ",r="+attrs[0][2:len(attrs[0])-32]) {
			t.Fatalf("nonce %q not from %q", attrs[0], in)
		}
	})
}

// fuzzFinalSetup starts an exchange for juliet with a pinned server nonce
// and returns the negotiator and the valid client-final-message.
func fuzzFinalSetup(t testing.TB, m *memStore, mech string) (Negotiator, []byte) {
	n := mustNegotiator(t, mech, m.config())
	n.(*scram).fixedNonce = "3rfcNHYJY1ZVvWVs7j"
	c := newTestClient(mech, "juliet", "romeo")
	sf, _, err := n.Step(context.Background(), c.first())
	if err != nil {
		t.Fatal(err)
	}
	cf, err := c.final(sf)
	if err != nil {
		t.Fatal(err)
	}
	return n, cf
}

func FuzzSCRAMClientFinal(f *testing.F) {
	m := fuzzStore(f)
	for _, mech := range []string{SCRAMSHA256, SCRAMSHA1} {
		_, valid := fuzzFinalSetup(f, m, mech)
		sha1 := mech == SCRAMSHA1
		f.Add(valid, sha1)
		f.Add(append(valid[:len(valid):len(valid)], ",x=y"...), sha1)
		f.Add([]byte(strings.Replace(string(valid), ",p=", ",x=y,p=", 1)), sha1)
		f.Add([]byte("c=biws,r=rOprNGfwEbeRWgbNEkqO3rfcNHYJY1ZVvWVs7j,p="), sha1)
		f.Add([]byte("c=,r=,p="), sha1)
		f.Add([]byte(""), sha1)
	}
	f.Fuzz(func(t *testing.T, in []byte, sha1 bool) {
		mech := SCRAMSHA256
		if sha1 {
			mech = SCRAMSHA1
		}
		n, valid := fuzzFinalSetup(t, m, mech)
		out, done, err := n.Step(context.Background(), in)
		checkResult(t, out, done, err)
		if err == nil {
			if !done || !strings.HasPrefix(string(out), "v=") || n.Username() != "juliet" {
				t.Fatalf("success with done=%v out=%q user=%q", done, out, n.Username())
			}
			// Only the genuine message (possibly with extra optional
			// extensions, which the proof covers) may succeed.
			if !strings.HasSuffix(string(in), string(valid[strings.LastIndex(string(valid), ",p="):])) {
				t.Fatalf("accepted a message with another proof: %q", in)
			}
		} else if n.Username() != "" {
			t.Fatal("Username set after failure")
		}
		_, _, err = n.Step(context.Background(), valid)
		wantFailure(t, err, "malformed-request")
	})
}

func FuzzPlain(f *testing.F) {
	for _, s := range []string{
		"\x00juliet\x00romeo",
		"juliet@example.com\x00juliet\x00romeo",
		"\x00a,b=c\x00romeo",
		"\x00nobody\x00romeo",
		"\x00juliet\x00wrong",
		"\x00\x00",
		"",
		"\x00juliet\x00romeo\x00",
	} {
		f.Add([]byte(s))
	}
	m := fuzzStore(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		n := mustNegotiator(t, Plain, Config{Lookup: m.lookup})
		out, done, err := n.Step(context.Background(), in)
		checkResult(t, out, done, err)
		switch {
		case len(in) == 0:
			if err != nil || done || out == nil {
				t.Fatalf("empty message: out=%q done=%v err=%v", out, done, err)
			}
		case done:
			if u := n.Username(); u != "juliet" && u != "a,b=c" {
				t.Fatalf("authenticated as %q with %q", u, in)
			}
		case err == nil:
			t.Fatal("neither done nor failed")
		}
	})
}

// FuzzGS2 checks the GS2 header parser: whatever it accepts splits the
// message exactly, and the parts rebuild the header byte for byte.
func FuzzGS2(f *testing.F) {
	for _, s := range []string{
		"n,,n=juliet,r=abc",
		"y,,n=juliet,r=abc",
		"p=tls-exporter,,n=juliet,r=abc",
		"p=tls-server-end-point,a=juliet@example.com,n=juliet,r=abc",
		"p=tls-unique,a=a=2Cb=3Dc,n=x,r=y",
		"p=,,n=juliet,r=abc",
		"p=tls_exporter,,",
		"q,,n=juliet",
		"n,a=,x",
		"n,a==2X,x",
		"n",
		",",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, msg string) {
		g, bare, fail := parseGS2(msg)
		if fail != nil {
			if fail.Condition != condMalformed {
				t.Fatalf("condition %q", fail.Condition)
			}
			return
		}
		if g.header+bare != msg || !strings.HasSuffix(g.header, ",") {
			t.Fatalf("header %q + bare %q != %q", g.header, bare, msg)
		}
		var flag string
		switch g.flag {
		case 'n', 'y':
			flag = string(g.flag)
			if g.cbName != "" {
				t.Fatalf("cb name %q with flag %c", g.cbName, g.flag)
			}
		case 'p':
			if !validCBName(g.cbName) {
				t.Fatalf("invalid cb name %q accepted", g.cbName)
			}
			flag = "p=" + g.cbName
		default:
			t.Fatalf("flag %q", g.flag)
		}
		az := ""
		if g.authzid != "" {
			az = "a=" + strings.NewReplacer("=", "=3D", ",", "=2C").Replace(g.authzid)
		}
		if rebuilt := flag + "," + az + ","; rebuilt != g.header {
			t.Fatalf("rebuilt %q, header %q", rebuilt, g.header)
		}
	})
}

// fuzzPlusConfig is a stream over TLS 1.3 that offered everything.
func fuzzPlusConfig(m *memStore) Config {
	cfg := m.config()
	cfg.ChannelBinding = fixedCB(map[string]string{TLSExporter: "exporter-A", TLSServerEndPoint: "cert-hash"}, TLSExporter, TLSServerEndPoint)
	cfg.Offered = MechanismsFor(true, cfg.ChannelBinding)
	return cfg
}

// FuzzSCRAMPlusClientFirst runs client-first-messages against a stream
// that offered channel binding: "y" never passes, "p=" passes only with a
// -PLUS mechanism and an advertised type, and every challenge carries the
// XEP-0474 hash of the offer.
func FuzzSCRAMPlusClientFirst(f *testing.F) {
	for _, s := range []string{
		"p=tls-exporter,,n=juliet,r=abc",
		"p=tls-server-end-point,,n=juliet,r=abc",
		"p=tls-unique,,n=juliet,r=abc",
		"p=tls-exporter,a=juliet@example.com,n=juliet,r=abc",
		"y,,n=juliet,r=abc",
		"n,,n=juliet,r=abc",
		"n,,n=nobody,r=abc,x=y",
		"p=,,n=juliet,r=abc",
	} {
		f.Add([]byte(s), uint8(0))
		f.Add([]byte(s), uint8(1))
		f.Add([]byte(s), uint8(2))
	}
	m := fuzzStore(f)
	cfg := fuzzPlusConfig(m)
	mechs := []string{SCRAMSHA256Plus, SCRAMSHA1Plus, SCRAMSHA256}
	f.Fuzz(func(t *testing.T, in []byte, which uint8) {
		mech := mechs[int(which)%len(mechs)]
		n := mustNegotiator(t, mech, cfg)
		out, done, err := n.Step(context.Background(), in)
		checkResult(t, out, done, err)
		if done {
			t.Fatal("done after client-first-message")
		}
		if err != nil || len(in) == 0 {
			return
		}
		msg := string(in)
		switch {
		case strings.HasPrefix(msg, "y,"):
			t.Fatalf("y accepted with -PLUS offered: %q", msg)
		case strings.HasPrefix(msg, "p="):
			typ, _, _ := strings.Cut(msg[2:], ",")
			if !isPlus(mech) || (typ != TLSExporter && typ != TLSServerEndPoint) {
				t.Fatalf("p=%s accepted for %s", typ, mech)
			}
		}
		attrs := strings.Split(string(out), ",")
		h := hashSHA256
		if mech == SCRAMSHA1Plus {
			h = hashSHA1
		}
		if len(attrs) != 4 || attrs[3] != "h="+downgradeHash(h, cfg.Offered, cfg.ChannelBinding.Types) {
			t.Fatalf("server-first-message %q", out)
		}
	})
}

// FuzzSCRAMPlusClientFinal: only a client-final-message whose c= is the
// GS2 header followed by this connection's binding data, with the right
// proof, succeeds.
func FuzzSCRAMPlusClientFinal(f *testing.F) {
	m := fuzzStore(f)
	cfg := fuzzPlusConfig(m)
	setup := func(t testing.TB, typ string) (Negotiator, []byte, string) {
		n := mustNegotiator(t, SCRAMSHA256Plus, cfg)
		n.(*scram).fixedNonce = "3rfcNHYJY1ZVvWVs7j"
		c := newTestClient(SCRAMSHA256Plus, "juliet", "romeo")
		c.cbType = typ
		c.cbData, _ = cfg.ChannelBinding.Data(typ)
		sf, _, err := n.Step(context.Background(), c.first())
		if err != nil {
			t.Fatal(err)
		}
		cf, err := c.final(sf)
		if err != nil {
			t.Fatal(err)
		}
		return n, cf, c.gs2 + string(c.cbData)
	}
	for _, typ := range []string{TLSExporter, TLSServerEndPoint} {
		_, valid, input := setup(f, typ)
		exp := typ == TLSExporter
		f.Add(valid, exp)
		f.Add([]byte(strings.Replace(string(valid), ",p=", ",x=y,p=", 1)), exp)
		f.Add([]byte(strings.Replace(string(valid), b64(input), b64("n,,"), 1)), exp)
		f.Add([]byte(strings.Replace(string(valid), b64(input), b64(input+"x"), 1)), exp)
		f.Add([]byte("c=biws,r=rOprNGfwEbeRWgbNEkqO3rfcNHYJY1ZVvWVs7j,p="), exp)
	}
	f.Fuzz(func(t *testing.T, in []byte, exporter bool) {
		typ := TLSServerEndPoint
		if exporter {
			typ = TLSExporter
		}
		n, valid, input := setup(t, typ)
		out, done, err := n.Step(context.Background(), in)
		checkResult(t, out, done, err)
		if err != nil {
			if n.Username() != "" {
				t.Fatal("Username set after failure")
			}
			return
		}
		if !done || !strings.HasPrefix(string(out), "v=") || n.Username() != "juliet" {
			t.Fatalf("success with done=%v out=%q user=%q", done, out, n.Username())
		}
		if !strings.HasPrefix(string(in), "c="+b64(input)+",") {
			t.Fatalf("accepted c= other than the binding: %q", in)
		}
		if !strings.HasSuffix(string(in), string(valid[strings.LastIndex(string(valid), ",p="):])) {
			t.Fatalf("accepted a message with another proof: %q", in)
		}
	})
}
