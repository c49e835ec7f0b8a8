package server

import (
	"io"
	"log/slog"
	"slices"
	"testing"

	"bluetick/internal/xmlstream"
)

func discoInfo(t *testing.T, srv *Server, c *conn, to string) *xmlstream.Element {
	t.Helper()
	c.send(t, srv, xmlstream.New(xmlstream.NSClient, "iq", "type", "get", "id", "d1", "to", to).
		Append(xmlstream.New(NSDiscoInfo, "query")))
	r := c.wait()
	if len(r) != 1 || r[0].Attr("type") != "result" {
		t.Fatalf("disco#info to %s: %v", to, r)
	}
	return r[0].Child(NSDiscoInfo, "query")
}

// forms returns the values of each field of the form with FORM_TYPE ft.
func formFields(q *xmlstream.Element, ft string) map[string][]string {
	for _, x := range q.Elements() {
		if x.Space != NSData || x.Name != "x" {
			continue
		}
		fields := map[string][]string{}
		for _, f := range x.Elements() {
			for _, v := range f.Elements() {
				fields[f.Attr("var")] = append(fields[f.Attr("var")], v.Text())
			}
		}
		if slices.Equal(fields["FORM_TYPE"], []string{ft}) {
			return fields
		}
	}
	return nil
}

func TestContactAddressesInServerDisco(t *testing.T) {
	srv := newServer(t)
	cfg := srv.cfg
	cfg.Contact.Abuse = []string{"mailto:abuse@localhost", "xmpp:abuse@localhost"}
	cfg.Contact.Security = []string{"https://localhost/security"}
	srv = New(cfg, srv.store, slog.New(slog.NewTextHandler(io.Discard, nil)))
	alice := connect(t, srv, "alice@localhost/pc")

	q := discoInfo(t, srv, alice, "localhost")
	f := formFields(q, NSServerInfo)
	if f == nil {
		t.Fatalf("no %s form in %v", NSServerInfo, q)
	}
	if !slices.Equal(f["abuse-addresses"], cfg.Contact.Abuse) || !slices.Equal(f["security-addresses"], cfg.Contact.Security) {
		t.Fatalf("form fields %v", f)
	}
	if _, ok := f["admin-addresses"]; ok {
		t.Fatalf("empty admin-addresses published: %v", f)
	}
	// The form is the server's, not the accounts'; and asking twice gives
	// the same answer (answers carry copies).
	if formFields(discoInfo(t, srv, alice, "bob@localhost"), NSServerInfo) != nil {
		t.Fatal("contact form on an account's disco#info")
	}
	if f2 := formFields(discoInfo(t, srv, alice, "localhost"), NSServerInfo); !slices.Equal(f2["abuse-addresses"], cfg.Contact.Abuse) {
		t.Fatalf("second answer %v", f2)
	}
}

func TestNoContactFormWhenUnconfigured(t *testing.T) {
	srv := newServer(t)
	alice := connect(t, srv, "alice@localhost/pc")
	if q := discoInfo(t, srv, alice, "localhost"); q.Child(NSData, "x") != nil {
		t.Fatalf("form published with no addresses: %v", q)
	}
}
