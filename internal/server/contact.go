package server

import (
	"bluetick/internal/config"
	"bluetick/internal/xmlstream"
)

// Namespaces of XEP-0128 extended information.
const (
	NSData       = "jabber:x:data"                        // XEP-0004
	NSServerInfo = "http://jabber.org/network/serverinfo" // XEP-0157 FORM_TYPE
)

// contactForm is the XEP-0157 contact-addresses form for the server's
// disco#info, or nil when no address is configured (an empty form would
// only say "no one to contact").
func contactForm(c config.Contact) *xmlstream.Element {
	fields := []struct {
		v    string
		uris []string
	}{
		{"abuse-addresses", c.Abuse}, {"admin-addresses", c.Admin},
		{"feedback-addresses", c.Feedback}, {"sales-addresses", c.Sales},
		{"security-addresses", c.Security}, {"status-addresses", c.Status},
		{"support-addresses", c.Support},
	}
	x := xmlstream.New(NSData, "x", "type", "result")
	x.Append(xmlstream.New(NSData, "field", "var", "FORM_TYPE", "type", "hidden").
		Append(xmlstream.New(NSData, "value").AppendText(NSServerInfo)))
	n := 0
	for _, f := range fields {
		if len(f.uris) == 0 {
			continue
		}
		field := xmlstream.New(NSData, "field", "var", f.v, "type", "list-multi")
		for _, u := range f.uris {
			field.Append(xmlstream.New(NSData, "value").AppendText(u))
		}
		x.Append(field)
		n++
	}
	if n == 0 {
		return nil
	}
	return x
}
