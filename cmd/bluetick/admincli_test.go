package main

import (
	"strings"
	"testing"
)

// The live commands refuse bad input before they look for a server, with
// the fix in the message; with no server they say so and how to start one.
// (tests/interop and tests/cluster run them against real servers.)
func TestAdminCommandsInput(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		run  func([]string) error
		args []string
		want string
	}{
		{userCmd, []string{"kick"}, "whose sessions?"},
		{userCmd, []string{"kick", "alice@example.com"}, "this server serves localhost"},
		{userCmd, []string{"kick", "alice@localhost/phone", "--resource", "pc"}, "names a resource already"},
		{roomCmd, []string{"rename"}, `unknown subcommand "rename"`},
		{roomCmd, []string{"destroy"}, "which room?"},
		{announceCmd, []string{" "}, "what to say?"},
		{statusCmd, []string{"--admin-socket", "off"}, "the admin socket is off"},
		{statusCmd, nil, "no server running with data directory " + dir},
		{userCmd, []string{"list", "--online"}, "start it with bluetick serve"},
		{userCmd, []string{"kick", "alice@localhost/phone"}, "no server running"},
	} {
		err := c.run(append(c.args, "--data", dir))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error saying %q", c.args, err, c.want)
		}
	}
	if err := roomCmd(nil); err == nil || !strings.Contains(err.Error(), "say list or destroy") {
		t.Errorf("room alone: %v", err)
	}
}
