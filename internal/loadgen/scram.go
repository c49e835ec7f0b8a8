package loadgen

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"os"
	"strconv"
	"strings"
	"sync"
)

// scramClient is the client side of SCRAM (RFC 5802) without channel
// binding ("n,,"): SCRAM-SHA-1 is what ejabberd, Prosody and Bluetick all
// offer; SCRAM-SHA-256 (RFC 7677) is the same with another hash.
type scramClient struct {
	mech     string
	h        func() hash.Hash
	user     string
	password string
	nonce    string

	clientFirstBare string
	serverSig       []byte
}

func newSCRAM(mech, user, password, nonce string) (*scramClient, error) {
	var h func() hash.Hash
	switch mech {
	case "SCRAM-SHA-1":
		h = sha1.New
	case "SCRAM-SHA-256":
		h = sha256.New
	default:
		return nil, fmt.Errorf("unsupported mechanism %s", mech)
	}
	if nonce == "" {
		b := make([]byte, 18)
		rand.Read(b)
		nonce = base64.RawStdEncoding.EncodeToString(b)
	}
	return &scramClient{mech: mech, h: h, user: user, password: password, nonce: nonce}, nil
}

// saslName escapes '=' and ',' in a username (RFC 5802 §5.1).
func saslName(s string) string {
	s = strings.ReplaceAll(s, "=", "=3D")
	return strings.ReplaceAll(s, ",", "=2C")
}

// First returns the client-first-message.
func (c *scramClient) First() string {
	c.clientFirstBare = "n=" + saslName(c.user) + ",r=" + c.nonce
	return "n,," + c.clientFirstBare
}

// saltCache keeps salted passwords: real clients cache them too, and the
// load generator must not spend its CPU on PBKDF2 (thousands of HMACs per
// login) when a user logs in again. It can be kept in a file between runs.
var (
	saltCache sync.Map // key -> []byte
	saltMu    sync.Mutex
	saltNew   []string // lines not yet saved
)

func (c *scramClient) salted(salt []byte, iter int) ([]byte, error) {
	key := fmt.Sprintf("%s|%x|%x|%d", c.mech, sha256.Sum256([]byte(c.password)), salt, iter)
	if v, ok := saltCache.Load(key); ok {
		return v.([]byte), nil
	}
	sp, err := pbkdf2.Key(c.h, c.password, salt, iter, c.h().Size())
	if err != nil {
		return nil, err
	}
	if _, loaded := saltCache.LoadOrStore(key, sp); !loaded {
		saltMu.Lock()
		saltNew = append(saltNew, key+" "+hex.EncodeToString(sp))
		saltMu.Unlock()
	}
	return sp, nil
}

// LoadSaltCache reads salted passwords saved by SaveSaltCache; a missing
// file is not an error.
func LoadSaltCache(path string) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if sp, err := hex.DecodeString(v); err == nil {
			saltCache.Store(k, sp)
		}
	}
	return nil
}

// SaveSaltCache appends the salted passwords computed since the last save
// (O_APPEND: several processes may share the file).
func SaveSaltCache(path string) error {
	saltMu.Lock()
	lines := saltNew
	saltNew = nil
	saltMu.Unlock()
	if len(lines) == 0 {
		return nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	// One write per line keeps concurrent appenders from interleaving.
	for _, l := range lines {
		if _, err := f.WriteString(l + "\n"); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

func (c *scramClient) hmac(key []byte, msg string) []byte {
	m := hmac.New(c.h, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// Final takes the server-first-message and returns the client-final-message.
func (c *scramClient) Final(serverFirst string) (string, error) {
	var nonce, salt64 string
	iter := -1
	for _, f := range strings.Split(serverFirst, ",") {
		if len(f) < 2 || f[1] != '=' {
			continue
		}
		switch f[0] {
		case 'r':
			nonce = f[2:]
		case 's':
			salt64 = f[2:]
		case 'i':
			n, err := strconv.Atoi(f[2:])
			if err != nil {
				return "", fmt.Errorf("scram: bad iteration count %q", f[2:])
			}
			iter = n
		case 'm':
			return "", errors.New("scram: unsupported mandatory extension")
		}
	}
	if !strings.HasPrefix(nonce, c.nonce) || len(nonce) == len(c.nonce) {
		return "", errors.New("scram: server nonce does not extend the client nonce")
	}
	salt, err := base64.StdEncoding.DecodeString(salt64)
	if err != nil || len(salt) == 0 {
		return "", errors.New("scram: bad salt")
	}
	if iter < 1 {
		return "", errors.New("scram: bad iteration count")
	}
	sp, err := c.salted(salt, iter)
	if err != nil {
		return "", err
	}
	clientKey := c.hmac(sp, "Client Key")
	hs := c.h()
	hs.Write(clientKey)
	storedKey := hs.Sum(nil)
	withoutProof := "c=biws,r=" + nonce
	authMsg := c.clientFirstBare + "," + serverFirst + "," + withoutProof
	sig := c.hmac(storedKey, authMsg)
	proof := make([]byte, len(clientKey))
	for i := range proof {
		proof[i] = clientKey[i] ^ sig[i]
	}
	c.serverSig = c.hmac(c.hmac(sp, "Server Key"), authMsg)
	return withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof), nil
}

// Verify checks the server-final-message (v=...), proving the server knew
// the password too.
func (c *scramClient) Verify(serverFinal string) error {
	if strings.HasPrefix(serverFinal, "e=") {
		return fmt.Errorf("scram: server error %s", serverFinal[2:])
	}
	for _, f := range strings.Split(serverFinal, ",") {
		if strings.HasPrefix(f, "v=") {
			v, err := base64.StdEncoding.DecodeString(f[2:])
			if err != nil {
				return errors.New("scram: bad server signature encoding")
			}
			if c.serverSig == nil || subtle.ConstantTimeCompare(v, c.serverSig) != 1 {
				return errors.New("scram: server signature mismatch")
			}
			return nil
		}
	}
	return errors.New("scram: no server signature")
}
