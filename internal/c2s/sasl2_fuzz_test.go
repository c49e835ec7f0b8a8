package c2s

import (
	"strings"
	"testing"
	"unicode/utf8"

	"bluetick/internal/jid"
	"bluetick/internal/xmlstream"
)

// FuzzParseAuthenticate feeds arbitrary <authenticate/> elements to the
// SASL2 request parser. Oracle: it never panics; it answers either a
// request or a failure with an RFC 6120 condition and a text for the
// malformed ones; an accepted request holds only bounded, valid values:
// a canonical lower-case UUID, short control-free user-agent texts, and a
// tag that makes a valid resource whatever the account.
func FuzzParseAuthenticate(f *testing.F) {
	for _, s := range []string{
		"<authenticate xmlns='urn:xmpp:sasl:2' mechanism='SCRAM-SHA-256'><initial-response>biwsbj1hbGljZSxyPXh5eg==</initial-response>" +
			"<user-agent id='d4565fa7-4d72-4749-b3d3-740edbf87770'><software>AwesomeXMPP</software><device>Kiva's Phone</device></user-agent>" +
			"<bind xmlns='urn:xmpp:bind:0'><tag>AwesomeXMPP</tag><enable xmlns='urn:xmpp:carbons:2'/><enable xmlns='urn:xmpp:sm:3' resume='true'/><inactive xmlns='urn:xmpp:csi:0'/></bind></authenticate>",
		"<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><initial-response>AGFsaWNlAHB3</initial-response><resume xmlns='urn:xmpp:sm:3' previd='x' h='3'/><bind xmlns='urn:xmpp:bind:0'/></authenticate>",
		"<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><initial-response/></authenticate>",
		"<authenticate xmlns='urn:xmpp:sasl:2' mechanism='HT-SHA-256-NONE'><fast xmlns='urn:xmpp:fast:0' count='1'/><request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-NONE'/></authenticate>",
		"<authenticate xmlns='urn:xmpp:sasl:2' mechanism='X'><user-agent id='nope'/></authenticate>",
		"<authenticate xmlns='urn:xmpp:sasl:2' mechanism='X'><bind xmlns='urn:xmpp:bind:0'><tag>a\u00a0b</tag><tag>c</tag></bind></authenticate>",
		"<authenticate xmlns='urn:xmpp:sasl:2'/>",
	} {
		f.Add([]byte(s))
	}
	conds := map[string]bool{"invalid-mechanism": true, "malformed-request": true, "incorrect-encoding": true}
	f.Fuzz(func(t *testing.T, data []byte) {
		el, err := xmlstream.Parse(data, xmlstream.Limits{MaxElementBytes: 1 << 16})
		if err != nil {
			return
		}
		req, fail := parseAuthenticate(el, "localhost")
		if fail != nil {
			if req != nil || !conds[fail.Condition] || fail.Condition != "incorrect-encoding" && fail.Text == "" {
				t.Fatalf("failure %+v (request %v)", fail, req)
			}
			return
		}
		if req.mechanism == "" || len(req.mechanism) > maxMechanismName || req.el != el {
			t.Fatalf("mechanism %q", req.mechanism)
		}
		if req.hasInitial != (req.initial != nil) {
			t.Fatalf("initial response %v / %q", req.hasInitial, req.initial)
		}
		if ua := req.ua; ua != nil {
			if ua.id != "" && (!isUUID(ua.id) || ua.id != strings.ToLower(ua.id)) {
				t.Fatalf("user-agent id %q", ua.id)
			}
			for _, s := range []string{ua.software, ua.device} {
				if len(s) > maxUAText || !utf8.ValidString(s) || strings.ContainsFunc(s, isControl) {
					t.Fatalf("user-agent text %q", s)
				}
			}
		}
		if b := req.bind; b != nil {
			if len(b.tag) > maxBindTag {
				t.Fatalf("tag %q", b.tag)
			}
			if b.csi != "" && b.csi != "active" && b.csi != "inactive" {
				t.Fatalf("csi %q", b.csi)
			}
			res := bind2Resource(b.tag, "alice", req.ua)
			if _, err := jid.New("alice", "localhost", res); err != nil {
				t.Fatalf("tag %q gives resource %q: %v", b.tag, res, err)
			}
		}
	})
}
