package pep

import (
	"testing"

	"bluetick/internal/xmlstream"
)

// The two examples of XEP-0115 §5.2 and §5.3.
const (
	exodusInfo = `<query xmlns='http://jabber.org/protocol/disco#info'>
    <identity category='client' name='Exodus 0.9.1' type='pc'/>
    <feature var='http://jabber.org/protocol/caps'/>
    <feature var='http://jabber.org/protocol/disco#info'/>
    <feature var='http://jabber.org/protocol/disco#items'/>
    <feature var='http://jabber.org/protocol/muc'/>
  </query>`
	psiInfo = `<query xmlns='http://jabber.org/protocol/disco#info'>
    <identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/>
    <identity xml:lang='el' category='client' name='&#936; 0.11' type='pc'/>
    <feature var='http://jabber.org/protocol/caps'/>
    <feature var='http://jabber.org/protocol/disco#info'/>
    <feature var='http://jabber.org/protocol/disco#items'/>
    <feature var='http://jabber.org/protocol/muc'/>
    <x xmlns='jabber:x:data' type='result'>
      <field var='FORM_TYPE' type='hidden'><value>urn:xmpp:dataforms:softwareinfo</value></field>
      <field var='ip_version' type='text-multi'><value>ipv4</value><value>ipv6</value></field>
      <field var='os'><value>Mac</value></field>
      <field var='os_version'><value>10.5.1</value></field>
      <field var='software'><value>Psi</value></field>
      <field var='software_version'><value>0.11</value></field>
    </x>
  </query>`
)

func TestCapsVerSpecExamples(t *testing.T) {
	for _, c := range []struct{ info, ver string }{
		{exodusInfo, "QgayPKawpkPSDYmwT/WM94uAlu0="},
		{psiInfo, "q07IKJEyjvHSyhy//CH0CxmKi8w="},
	} {
		got, err := capsVer(parse(t, c.info), "sha-1")
		if err != nil || got != c.ver {
			t.Errorf("ver = %q, %v; want %q", got, err, c.ver)
		}
	}
}

func TestCapsVerRejects(t *testing.T) {
	for _, info := range []string{
		`<query xmlns='http://jabber.org/protocol/disco#info'><feature var='a'/><feature var='a'/></query>`,
		`<query xmlns='http://jabber.org/protocol/disco#info'><identity category='c' type='t'/><identity category='c' type='t'/></query>`,
		`<query xmlns='http://jabber.org/protocol/disco#info'><x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'><value>a</value></field></x><x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'><value>a</value></field></x></query>`,
	} {
		if v, err := capsVer(parse(t, info), "sha-1"); err == nil {
			t.Errorf("capsVer accepted %s (ver %s)", info, v)
		}
	}
	if _, err := capsVer(parse(t, exodusInfo), "md5"); err == nil {
		t.Error("capsVer accepted md5")
	}
}

func TestParseCaps(t *testing.T) {
	for _, c := range []struct {
		p  string
		ok bool
	}{
		{`<presence xmlns='jabber:client'><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='abc='/></presence>`, true},
		{`<presence xmlns='jabber:client'><c xmlns='http://jabber.org/protocol/caps' node='n' ver='1.0'/></presence>`, false}, // legacy
		{`<presence xmlns='jabber:client'><c xmlns='http://jabber.org/protocol/caps' hash='md5' node='n' ver='x'/></presence>`, false},
		{`<presence xmlns='jabber:client'><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n'/></presence>`, false},
		{`<presence xmlns='jabber:client'/>`, false},
	} {
		if _, ok := parseCaps(parse(t, c.p)); ok != c.ok {
			t.Errorf("parseCaps(%s) = %v, want %v", c.p, ok, c.ok)
		}
	}
}

// FuzzCapsVer feeds arbitrary disco#info results, as a client could send
// them, to the caps hash and the feature extraction: no panic, and a result
// is deterministic.
func FuzzCapsVer(f *testing.F) {
	f.Add([]byte(exodusInfo))
	f.Add([]byte(psiInfo))
	f.Add([]byte(`<query xmlns='http://jabber.org/protocol/disco#info'><x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE'><value>a</value><value>b</value></field></x></query>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		q, err := xmlstream.Parse(data, xmlstream.Limits{})
		if err != nil {
			return
		}
		v1, err1 := capsVer(q, "sha-256")
		v2, err2 := capsVer(q.Copy(), "sha-256")
		if v1 != v2 || (err1 == nil) != (err2 == nil) {
			t.Fatalf("capsVer not deterministic: %q %v / %q %v", v1, err1, v2, err2)
		}
		infoOf(q).notifyNodes()
		parseCaps(q)
	})
}

// FuzzForms feeds arbitrary forms to the node configuration and
// publish-options parsers: they must return a config or a stanza error,
// never panic, and an accepted config must render and re-parse.
func FuzzForms(f *testing.F) {
	f.Add([]byte(`<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#node_config</value></field><field var='pubsub#max_items'><value>max</value></field></x>`))
	f.Add([]byte(`<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field><field var='pubsub#access_model'><value>open</value></field></x>`))
	f.Add([]byte(`<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#node_config</value></field><field var='pubsub#roster_groups_allowed'><value>a</value><value>a</value></field><field var='pubsub#persist_items'><value>true</value></field></x>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		x, err := xmlstream.Parse(data, xmlstream.Limits{})
		if err != nil {
			return
		}
		cfg, err := configure(defaultConfig(), x)
		if err == nil {
			if cfg.MaxItems < 0 || cfg.MaxItems > MaxItemsLimit {
				t.Fatalf("accepted max_items %d", cfg.MaxItems)
			}
			re := cfg.form("submit")
			back, err := configure(defaultConfig(), re)
			if err != nil {
				t.Fatalf("rendered config does not re-parse: %v\n%s", err, re)
			}
			if string(back.marshal()) != string(cfg.marshal()) && len(cfg.Members) == 0 {
				t.Fatalf("config round trip: %s vs %s", back.marshal(), cfg.marshal())
			}
		}
		po := xmlstream.New(NSPubSub, "publish-options").Append(x)
		if ss, err := publishOptions(po); err == nil {
			c := defaultConfig()
			for _, s := range ss {
				s.apply(&c)
			}
			for _, s := range ss {
				_ = s.equal(c)
			}
		}
	})
}
