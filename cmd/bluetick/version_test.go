package main

import (
	"runtime/debug"
	"strings"
	"testing"
)

// `bluetick version` lists the module, the commit, Go and every
// dependency with its version.
func TestPrintVersion(t *testing.T) {
	bi := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "bluetick", Version: "v0.3.0"},
		Deps: []*debug.Module{
			{Path: "modernc.org/sqlite", Version: "v1.61.1"},
			{Path: "github.com/nats-io/nats.go", Version: "v1.55.0", Replace: &debug.Module{Path: "../nats.go", Version: ""}},
		},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "12947c9abc"}, {Key: "vcs.modified", Value: "true"},
			{Key: "vcs.time", Value: "2026-12-03T04:50:00Z"}, {Key: "GOOS", Value: "linux"}, {Key: "GOARCH", Value: "amd64"},
		},
	}
	var b strings.Builder
	printVersion(&b, bi, true)
	out := b.String()
	for _, want := range []string{
		"module       bluetick v0.3.0", "commit       12947c9abc (modified)", "commit time  2026-12-03T04:50:00Z",
		"go           go1.26.8 linux/amd64", "dependencies:", "modernc.org/sqlite          v1.61.1",
		"github.com/nats-io/nats.go  v1.55.0 => ../nats.go",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("version output lacks %q:\n%s", want, out)
		}
	}
	// The test binary's own build information has the real dependencies.
	b.Reset()
	real, ok := debug.ReadBuildInfo()
	printVersion(&b, real, ok)
	if !strings.Contains(b.String(), "modernc.org/sqlite") {
		t.Errorf("this build's dependencies are not listed:\n%s", b.String())
	}
	t.Log("\n" + b.String())
}
