package muc

import (
	"testing"

	"bluetick/internal/config"
	"bluetick/internal/xmlstream"
)

// FuzzParseForm: whatever a client submits as a data form, parsing and
// applying it as a room configuration never panics, and anything accepted
// leaves the configuration within its bounds.
func FuzzParseForm(f *testing.F) {
	for _, seed := range []string{
		"<x xmlns='jabber:x:data' type='submit'/>",
		"<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field><field var='muc#roomconfig_maxusers'><value>10</value></field></x>",
		"<x xmlns='jabber:x:data' type='submit'><field var='muc#roomconfig_membersonly'><value>true</value></field><field var='muc#roomconfig_whois'><value>moderators</value></field></x>",
		"<x xmlns='jabber:x:data' type='submit'><field var='a'/><field var='a'/></x>",
		"<x xmlns='jabber:x:data' type='cancel'/>",
		"<x xmlns='jabber:x:data' type='submit'><field><value>x</value></field></x>",
		"<x xmlns='jabber:x:data' type='submit'><field var='muc#roomconfig_maxusers'><value>-3</value><value>7</value></field></x>",
	} {
		f.Add([]byte(seed))
	}
	s := &Service{cfg: config.MUC{MaxMembers: 1024}}
	f.Fuzz(func(t *testing.T, data []byte) {
		el, err := xmlstream.Parse(data, xmlstream.Limits{MaxElementBytes: 1 << 16})
		if err != nil {
			return
		}
		form, err := ParseForm(el)
		if err != nil {
			return
		}
		if len(form.Fields) > maxFormFields {
			t.Fatalf("%d fields accepted", len(form.Fields))
		}
		cfg, err := s.applyConfig(s.defaultConfig(), form)
		if err != nil {
			return
		}
		if cfg.MaxUsers < 1 || cfg.MaxUsers > 1024 || cfg.WhoIs != "anyone" && cfg.WhoIs != "moderators" {
			t.Fatalf("out of bounds config %+v from %s", cfg, data)
		}
	})
}
