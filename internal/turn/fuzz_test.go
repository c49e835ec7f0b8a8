package turn

import (
	"context"
	"errors"
	"testing"

	"bluetick/internal/config"
	"bluetick/internal/jid"
	"bluetick/internal/server"
	"bluetick/internal/stanza"
	"bluetick/internal/xmlstream"
)

// FuzzExtDiscoRequest: whatever attributes a client puts on <services/> and
// on <credentials><service/></credentials>, the answer is a result or a
// stanza error, never a panic or an internal error; a result's TURN
// credentials always check.
func FuzzExtDiscoRequest(f *testing.F) {
	f.Add("turn", "127.0.0.1", "turn", "3478")
	f.Add("", "127.0.0.1", "stun", "")
	f.Add("ftp", "x", "turn", "-1")
	f.Add("turn", "127.0.0.1", "turn", "99999999999999999999")
	cfg := config.Default()
	cfg.TURN.Enabled = true
	cfg.TURN.Listen = "127.0.0.1:3478"
	d := NewDirectory(cfg, testSecret, nil)
	from := jid.MustParse("alice@localhost/phone")
	f.Fuzz(func(t *testing.T, filter, host, typ, port string) {
		check := func(res *xmlstream.Element, err error) {
			var se *stanza.Error
			if err != nil {
				if !errors.As(err, &se) || se == stanza.ErrInternal {
					t.Fatalf("error %v is not a stanza error", err)
				}
				return
			}
			for _, s := range res.Elements() {
				if s.Attr("type") == "turn" {
					if pw, err := Check(testSecret, s.Attr("username"), d.now()); err != nil || pw != s.Attr("password") {
						t.Fatalf("handed-out credentials do not check: %v", s)
					}
				}
			}
		}
		p := xmlstream.New(NSExtDisco, "services", "type", filter)
		check(d.services(context.Background(), &server.IQ{From: from, Type: "get", Payload: p}))
		p = xmlstream.New(NSExtDisco, "credentials").Append(xmlstream.New(NSExtDisco, "service", "host", host, "type", typ, "port", port))
		check(d.credentials(context.Background(), &server.IQ{From: from, Type: "get", Payload: p}))
	})
}
