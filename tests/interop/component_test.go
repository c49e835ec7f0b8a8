package interop

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"
)

// 27. XEP-0114: slixmpp's ComponentXMPP attaches as bot.localhost with the
// configured secret, a slixmpp user sends it a message and gets the
// component's echo back; a wrong secret is refused.
func testComponent(t *testing.T) {
	need(t, "slixmpp")
	port := freePorts(t, 1)[0]
	const secret = "component-secret-0123456789"
	s := startServerWith(t, fmt.Sprintf(`
[listen]
component = "127.0.0.1:%d"

[[components]]
domain = "bot.localhost"
secret = %q
`, port, secret), "alice")
	args := map[string]any{"port": port, "domain": "bot.localhost", "secret": secret}
	evs := start(t, "slixmpp:component", nil, pythonPath, filepath.Join(clientsDir, "slix_component.py"), "echo", s.config(args)).finish(t)
	got := one(t, evs, "component_got")
	if got.str("to") != "echo@bot.localhost" || got.str("body") != "hello component" || got.str("from") != one(t, evs, "login").str("jid") {
		t.Errorf("component received %s", got)
	}
	if u := one(t, evs, "user_got"); u.str("from") != "echo@bot.localhost" || u.str("body") != "echo: hello component" {
		t.Errorf("user received %s", u)
	}
	bad := one(t, start(t, "slixmpp:component-bad", nil, pythonPath, filepath.Join(clientsDir, "slix_component.py"), "badsecret", s.config(args)).finish(t), "badsecret")
	if bad.boolean("connected") || !slices.Contains(bad.strs("failed"), "not-authorized") {
		t.Errorf("a wrong secret: %s", bad)
	}
	s.alive(t)
}
