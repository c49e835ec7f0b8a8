package turn

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// SecretFile is the name of the generated secret in the data directory.
const SecretFile = "turn-secret"

// LoadOrCreateSecret returns the secret kept in dir, generating 32 random
// bytes on first use. Kept, not regenerated per start, so credentials
// handed out before a restart still work after it.
func LoadOrCreateSecret(dir string) (string, error) {
	path := filepath.Join(dir, SecretFile)
	b, err := os.ReadFile(path)
	if err == nil {
		s := strings.TrimSpace(string(b))
		if len(s) < 16 {
			return "", fmt.Errorf("turn: %s holds a secret shorter than 16 characters (delete it to generate a new one)", path)
		}
		return s, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("turn: reading %s: %v", path, err)
	}
	var raw [32]byte
	rand.Read(raw[:])
	s := base64.RawURLEncoding.EncodeToString(raw[:])
	// O_EXCL: two nodes sharing a directory agree on the first one written.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return LoadOrCreateSecret(dir)
	}
	if err != nil {
		return "", fmt.Errorf("turn: creating %s: %v", path, err)
	}
	if _, err := f.WriteString(s + "\n"); err != nil {
		f.Close()
		return "", fmt.Errorf("turn: writing %s: %v", path, err)
	}
	return s, f.Close()
}
