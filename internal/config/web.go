package config

import (
	"fmt"
	"os"
	"path/filepath"
)

// Web is Bluetick Web, the browser app served at / on the HTTP listener
// (package webapp, docs/web.md).
type Web struct {
	// Enabled serves the app. Off: / answers 404 and only the XMPP
	// endpoints (/xmpp-websocket, /http-bind, host-meta, upload) remain.
	Enabled bool `toml:"enabled"`
	// Dir serves the app from this directory instead of the files built
	// into the binary: for developing the app (point it at
	// internal/webapp/dist after `npm run build` in web/) or serving a
	// customised build. Empty: the embedded files.
	Dir string `toml:"dir"`
}

// DefaultWeb is the [web] section's default: on, embedded files.
func DefaultWeb() Web { return Web{Enabled: true} }

func (w *Web) validate() error {
	if !w.Enabled || w.Dir == "" {
		return nil
	}
	st, err := os.Stat(w.Dir)
	if err != nil || !st.IsDir() {
		return fmt.Errorf("config: web.dir = %q is not a directory (use the folder holding index.html, or \"\" for the built-in app)", w.Dir)
	}
	if _, err := os.Stat(filepath.Join(w.Dir, "index.html")); err != nil {
		return fmt.Errorf("config: web.dir = %q has no index.html (build the app with `npm run build` in web/, or use \"\" for the built-in app)", w.Dir)
	}
	return nil
}
