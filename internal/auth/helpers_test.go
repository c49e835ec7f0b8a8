package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"sort"
	"strconv"
	"strings"
	"testing"

	"bluetick/internal/store"
)

// testIterations keeps tests fast; the RFC vectors use their own 4096.
const testIterations = 64

// memStore is an in-memory credential store: user -> mechanism -> credential.
type memStore struct {
	creds   map[string]map[string]store.Credential
	err     error // returned by every lookup when set
	lookups int
}

func newMemStore() *memStore {
	return &memStore{creds: map[string]map[string]store.Credential{}}
}

func (m *memStore) add(t testing.TB, user, password string, iterations int) {
	t.Helper()
	creds, err := NewCredentials(password, iterations)
	if err != nil {
		t.Fatalf("NewCredentials(%q): %v", password, err)
	}
	m.put(user, creds...)
}

func (m *memStore) put(user string, creds ...store.Credential) {
	if m.creds[user] == nil {
		m.creds[user] = map[string]store.Credential{}
	}
	for _, c := range creds {
		m.creds[user][c.Mechanism] = c
	}
}

func (m *memStore) lookup(ctx context.Context, user, mech string) (store.Credential, error) {
	m.lookups++
	if m.err != nil {
		return store.Credential{}, m.err
	}
	c, ok := m.creds[user][mech]
	if !ok {
		return store.Credential{}, fmt.Errorf("lookup %s: %w", user, store.ErrNotFound)
	}
	return c, nil
}

// lowerUser stands in for jid.PrepareLocal: it lower-cases and rejects
// names a localpart cannot have.
func lowerUser(name string) (string, error) {
	if name == "" || strings.ContainsAny(name, "@/\"&'<>: ") {
		return "", errors.New("invalid localpart")
	}
	return strings.ToLower(name), nil
}

func (m *memStore) config() Config {
	return Config{Lookup: m.lookup, PrepareUser: lowerUser}
}

func mustNegotiator(t testing.TB, mech string, cfg Config) Negotiator {
	t.Helper()
	n, err := NewNegotiator(mech, cfg)
	if err != nil {
		t.Fatalf("NewNegotiator(%s): %v", mech, err)
	}
	return n
}

// wantFailure checks that err is a *Failure with the given condition.
func wantFailure(t testing.TB, err error, cond string) *Failure {
	t.Helper()
	var f *Failure
	if !errors.As(err, &f) {
		t.Fatalf("error = %v (%T), want *Failure %s", err, err, cond)
	}
	if f.Condition != cond {
		t.Fatalf("failure = %q (%s), want %q", f.Condition, f.Text, cond)
	}
	return f
}

// testClient is a SCRAM client written from RFC 5802 independently of the
// server code: its own PBKDF2 (Hi), its own parsing, its own escaping.
type testClient struct {
	newHash  func() hash.Hash
	user     string
	password string
	authzid  string
	flag     string // "n" (default) or "y"; ignored when cbType is set
	cbType   string // channel binding type: flag "p=" cbType
	cbData   []byte // channel binding data c= carries after the GS2 header
	cnonce   string
	// ssdp, when set, is what the client saw offered (mechanisms, then
	// channel binding types): final checks the server's XEP-0474 h=
	// against it and fails on a mismatch.
	ssdp *offer

	gs2             string
	clientFirstBare string
	salted          []byte
	authMessage     string
}

func newTestClient(mech, user, password string) *testClient {
	c := &testClient{user: user, password: password, cnonce: "rOprNGfwEbeRWgbNEkqO"}
	switch mech {
	case SCRAMSHA1, SCRAMSHA1Plus:
		c.newHash = sha1.New
	case SCRAMSHA256, SCRAMSHA256Plus:
		c.newHash = sha256.New
	default:
		panic(mech)
	}
	return c
}

var saslEscaper = strings.NewReplacer("=", "=3D", ",", "=2C")

// offer is a mechanism list and channel binding type list as a client saw
// them in the stream features.
type offer struct {
	mechs, cbTypes []string
}

// ssdpHash is the XEP-0474 §5.1 hash, written from the XEP apart from the
// server code.
func (c *testClient) ssdpHash(o offer) string {
	m := append([]string(nil), o.mechs...)
	sort.Strings(m)
	s := strings.Join(m, "\x1e")
	if len(o.cbTypes) > 0 {
		t := append([]string(nil), o.cbTypes...)
		sort.Strings(t)
		s += "\x1f" + strings.Join(t, "\x1e")
	}
	h := c.newHash()
	h.Write([]byte(s))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

func (c *testClient) first() []byte {
	flag := c.flag
	if flag == "" {
		flag = "n"
	}
	if c.cbType != "" {
		flag = "p=" + c.cbType
	}
	c.gs2 = flag + ","
	if c.authzid != "" {
		c.gs2 += "a=" + saslEscaper.Replace(c.authzid)
	}
	c.gs2 += ","
	c.clientFirstBare = "n=" + saslEscaper.Replace(c.user) + ",r=" + c.cnonce
	return []byte(c.gs2 + c.clientFirstBare)
}

// hi is Hi() of RFC 5802 §2.2, i.e. PBKDF2 with one output block.
func hi(newHash func() hash.Hash, password string, salt []byte, iter int) []byte {
	mac := hmac.New(newHash, []byte(password))
	mac.Write(salt)
	var one [4]byte
	binary.BigEndian.PutUint32(one[:], 1)
	mac.Write(one[:])
	u := mac.Sum(nil)
	out := append([]byte(nil), u...)
	for i := 1; i < iter; i++ {
		mac.Reset()
		mac.Write(u)
		u = mac.Sum(u[:0])
		for j := range out {
			out[j] ^= u[j]
		}
	}
	return out
}

func (c *testClient) mac(key []byte, msg string) []byte {
	m := hmac.New(c.newHash, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// final answers the server-first-message; tamper may change the
// client-final-message-without-proof before the proof is computed.
func (c *testClient) final(serverFirst []byte) ([]byte, error) {
	attrs := strings.Split(string(serverFirst), ",")
	if len(attrs) < 3 || !strings.HasPrefix(attrs[0], "r=") || !strings.HasPrefix(attrs[1], "s=") || !strings.HasPrefix(attrs[2], "i=") {
		return nil, fmt.Errorf("bad server-first-message %q", serverFirst)
	}
	nonce := attrs[0][2:]
	if !strings.HasPrefix(nonce, c.cnonce) || len(nonce) == len(c.cnonce) {
		return nil, fmt.Errorf("server nonce %q does not extend %q", nonce, c.cnonce)
	}
	salt, err := base64.StdEncoding.DecodeString(attrs[1][2:])
	if err != nil {
		return nil, err
	}
	iter, err := strconv.Atoi(attrs[2][2:])
	if err != nil {
		return nil, err
	}
	if c.ssdp != nil {
		var h string
		for _, a := range attrs[3:] {
			if v, ok := strings.CutPrefix(a, "h="); ok {
				h = v
			}
		}
		if want := c.ssdpHash(*c.ssdp); h != want {
			return nil, fmt.Errorf("%w: server says h=%q, what we saw hashes to %q", errDowngrade, h, want)
		}
	}
	c.salted = hi(c.newHash, c.password, salt, iter)
	cbInput := append([]byte(c.gs2), c.cbData...)
	withoutProof := "c=" + base64.StdEncoding.EncodeToString(cbInput) + ",r=" + nonce
	return c.finalWith(string(serverFirst), withoutProof), nil
}

// errDowngrade is the client's XEP-0474 verdict: the list it saw is not the
// list the server offered.
var errDowngrade = errors.New("SSDP hash mismatch: offer tampered with")

// finalWith computes the proof for a given client-final-message-without-proof
// (so tests can tamper with it and still send a self-consistent proof).
func (c *testClient) finalWith(serverFirst, withoutProof string) []byte {
	c.authMessage = c.clientFirstBare + "," + serverFirst + "," + withoutProof
	clientKey := c.mac(c.salted, "Client Key")
	h := c.newHash()
	h.Write(clientKey)
	storedKey := h.Sum(nil)
	sig := c.mac(storedKey, c.authMessage)
	proof := make([]byte, len(clientKey))
	for i := range proof {
		proof[i] = clientKey[i] ^ sig[i]
	}
	return []byte(withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof))
}

// verify checks the server-final-message: the server must know ServerKey.
func (c *testClient) verify(serverFinal []byte) error {
	serverKey := c.mac(c.salted, "Server Key")
	want := "v=" + base64.StdEncoding.EncodeToString(c.mac(serverKey, c.authMessage))
	if string(serverFinal) != want {
		return fmt.Errorf("server-final %q, want %q", serverFinal, want)
	}
	return nil
}

// exchange runs a full SCRAM exchange and returns the negotiator and the
// error of the last step.
func exchange(t testing.TB, mech string, cfg Config, c *testClient) (Negotiator, error) {
	t.Helper()
	ctx := context.Background()
	n := mustNegotiator(t, mech, cfg)
	sf, done, err := n.Step(ctx, c.first())
	if err != nil {
		return n, err
	}
	if done {
		t.Fatal("done after client-first-message")
	}
	cf, err := c.final(sf)
	if err != nil {
		t.Fatal(err)
	}
	out, done, err := n.Step(ctx, cf)
	if err != nil {
		if done {
			t.Fatal("done with an error")
		}
		return n, err
	}
	if !done {
		t.Fatal("not done after client-final-message")
	}
	if err := c.verify(out); err != nil {
		t.Fatal(err)
	}
	return n, nil
}
