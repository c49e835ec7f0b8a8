package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestE2E: OMEMO in Bluetick Web (docs/e2e.md), three scenarios side by
// side, each with its own server. After each, the server is stopped and
// its whole data directory (database and write-ahead log, offline queue,
// room archive, upload files) is searched for the text of every message
// the scenario sent: none may be there.
func TestE2E(t *testing.T) {
	need(t)
	t.Run("chat", func(t *testing.T) { t.Parallel(); e2eChat(t) })
	t.Run("devices", func(t *testing.T) { t.Parallel(); e2eDevices(t) })
	t.Run("group", func(t *testing.T) { t.Parallel(); e2eGroup(t) })
	t.Run("scan", func(t *testing.T) { t.Parallel(); e2eScan(t) })
}

// e2eScan: verification by QR code through chromium's fake camera
// (e2e-scan.mjs).
func e2eScan(t *testing.T) {
	fs := run(t, "e2e-scan", nil, "alice", "bob", "carol")
	s := fs.get(t, "scan")
	if !strings.HasPrefix(s.str("result"), "✓ Verified one device of bob") {
		t.Errorf("scanning bob's code: %q, want it verified", s.str("result"))
	}
	trust, _ := s["trust"].([]any)
	ok := false
	for _, d := range trust {
		m, _ := d.(map[string]any)
		if m["fp"] == s.str("bob_fp") && m["trust"] == "verified" {
			ok = true
		}
	}
	if !ok {
		t.Errorf("bob's device with fingerprint %s is not verified in alice's sheet: %v", s.str("bob_fp"), trust)
	}
	if !strings.Contains(s.str("other"), "bob@localhost's, not carol's") {
		t.Errorf("bob's code scanned in the chat with carol: %q, want it refused as bob's", s.str("other"))
	}
}

// e2eRun runs scenario name and checks the server never stored any of
// the texts the scenario lists in its "texts" fact.
func e2eRun(t *testing.T, name string, users ...string) facts {
	s := startServer(t, nil, users...)
	fs := runOn(t, s, name)
	s.stop()
	texts := fs.get(t, "texts").strs("all")
	if len(texts) == 0 {
		t.Fatal("the scenario listed no texts")
	}
	serverBlind(t, s.dir, texts)
	return fs
}

func serverBlind(t *testing.T, dir string, texts []string) {
	t.Helper()
	n := 0
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		n++
		for _, tx := range texts {
			if bytes.Contains(b, []byte(tx)) {
				t.Errorf("the server's %s holds the plaintext %q", p, tx)
			}
		}
		return nil
	})
	if n == 0 {
		t.Errorf("no files in the server's data directory %s", dir)
	}
}

// e2eChat: 1:1 both ways, a reload, a replay and a forgery (e2e.mjs).
func e2eChat(t *testing.T) {
	fs := e2eRun(t, "e2e", "alice", "bob")
	o := fs.get(t, "one-to-one")
	if o.str("bob_e2e") != "ok" || o.str("alice_e2e") != "ok" || o.str("alice_out_lock") != "ok" {
		t.Errorf("1:1 messages not shown as encrypted: %s", o)
	}
	if o.boolean("plain_to_bob") || o.boolean("plain_from_alice") || !o.boolean("encrypted_to_bob") {
		t.Errorf("the WebSockets carried the text in the clear, or no <encrypted/>: %s", o)
	}
	if r := fs.get(t, "reload"); r.str("e2e") != "ok" {
		t.Errorf("after a reload: %s", r)
	}
	// [{id, ts, replaced}] of bob's signed prekeys, before and after.
	var rot struct {
		Before, After  []struct{ ID, Replaced float64 }
		Published, E2E string
	}
	if err := json.Unmarshal([]byte(fs.get(t, "rotation").String()), &rot); err != nil {
		t.Fatal(err)
	}
	if len(rot.Before) != 1 || len(rot.After) != 2 || rot.After[0].ID != rot.Before[0].ID || rot.After[0].Replaced == 0 ||
		rot.After[1].Replaced != 0 || rot.Published != fmt.Sprint(rot.After[1].ID) || rot.E2E != "ok" {
		t.Errorf("signed prekey 8 days old at sign-in: %s; want a new one published, the old one kept as replaced, the session going on", fs.get(t, "rotation"))
	}
	r := fs.get(t, "refused")
	var whys []string
	for _, x := range r["refused"].([]any) {
		m, _ := x.(map[string]any)
		w, _ := m["why"].(string)
		whys = append(whys, w)
	}
	if len(whys) != 2 || !strings.Contains(whys[0], "replay") || !strings.Contains(whys[1], "could not be verified") {
		t.Errorf("replay and forgery shown as %q, want a replay, then one that could not be verified: %s", whys, r)
	}
	for _, tx := range r.strs("texts_after") {
		if tx == "fallback" || tx == "after bob's reload" {
			t.Errorf("a replayed or forged message was shown as text %q", tx)
		}
	}
}

// e2eDevices: second devices, carbons, verification (e2e-devices.mjs).
func e2eDevices(t *testing.T) {
	fs := e2eRun(t, "e2e-devices", "alice", "bob")
	if r := fs.get(t, "repair"); !strings.Contains(r.str("unreadable"), "not encrypted for this device") || r.str("repaired") != "ok" || r.num("failed_left") != 0 {
		t.Errorf("a message not encrypted for bob's new device: %s; want it shown as such, then repaired", r)
	}
	if d := fs.get(t, "devices"); d.str("bob2") != "ok" || d.str("bob1") != "ok" || d.str("alice2_sent_copy") != "ok" {
		t.Errorf("other devices: %s, want each ok (decrypted)", d)
	}
	v := fs.get(t, "verification")
	if !strings.Contains(v.str("warning"), "new device") || v.str("bob1") != "ok" || v.num("bob3_failed") < 1 || slices.Contains(v.strs("bob3_texts"), "not for the unverified device") {
		t.Errorf("after alice verified bob's devices, his new one: %s; want a warning, the message read by bob's verified device and not by the new one", v)
	}
}

// e2eGroup: two first messages built on one prekey of an offline device,
// then a group of three (e2e-group.mjs).
func e2eGroup(t *testing.T) {
	fs := e2eRun(t, "e2e-group", "alice", "bob", "carol")
	if p := fs.get(t, "shared-prekey"); p.str("alice") != "ok" || p.str("carol") != "ok" {
		t.Errorf("two first messages on one prekey of an offline device: %s", p)
	}
	if g := fs.get(t, "group"); g.str("bob") != "ok" || g.str("carol") != "ok" || g.str("alice_from_carol") != "ok" || g.str("bob_from_carol") != "ok" || g.boolean("plain_seen") {
		t.Errorf("group: %s", g)
	}
}
