// Package upload is XEP-0363 HTTP File Upload, the way WhatsApp moves media:
// a client asks the server for a slot over XMPP, PUTs the file (encrypted
// by the client) over HTTP, and sends only the link in a message, so chat
// servers never carry media. Files are stored once per content (named by
// SHA-256) in a Backend — a local directory or an S3 bucket — together with
// all slot metadata, so any node sharing the backend serves any file.
package upload

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"bluetick/internal/config"
	"bluetick/internal/server"
	"bluetick/internal/stanza"
	"bluetick/internal/xmlstream"
)

// NS is the XEP-0363 namespace.
const NS = "urn:xmpp:http:upload:0"

// Limits are the per-file and per-user bounds (config [upload]).
type Limits struct {
	MaxFileSize    int64
	ContentTypes   []string
	Quota          int64 // bytes per user; 0 = unlimited
	UploadsPerHour int   // 0 = unlimited
	Expiry         time.Duration
	TokenLifetime  time.Duration
}

// LimitsFrom takes the limits from the configuration.
func LimitsFrom(c config.Upload) Limits {
	return Limits{
		MaxFileSize: c.MaxFileSize, ContentTypes: c.ContentTypes, Quota: c.Quota,
		UploadsPerHour: c.UploadsPerHour, Expiry: c.Expiry.Duration, TokenLifetime: c.TokenLifetime.Duration,
	}
}

// Service hands out slots (the IQ side) and stores and serves files (the
// HTTP side, see Handler).
type Service struct {
	m       metrics
	backend Backend
	signer  *Signer
	base    string // public URL prefix, no trailing slash
	lim     Limits
	log     *slog.Logger
	now     func() time.Time
	// bodyIdle is how long a PUT body may stall before the connection is
	// dropped (and the partial upload removed): slow is fine, stuck is not.
	bodyIdle time.Duration

	// userMu serializes a user's slot requests on this node (striped by
	// user) so that two concurrent ones cannot both pass the quota check.
	// Across nodes the limits hold up to requests in the same instant.
	userMu [64]sync.Mutex
	// putting holds the slots this node is receiving, so a second PUT on
	// the same slot gets 409 at once instead of racing the first.
	putMu   sync.Mutex
	putting map[string]bool
}

// New makes a service over a backend. base is the public URL prefix of the
// links ("https://media.example.com").
func New(b Backend, secret []byte, base string, lim Limits, log *slog.Logger) (*Service, error) {
	sg, err := NewSigner(secret)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{backend: b, signer: sg, base: strings.TrimRight(base, "/"), lim: lim, log: log,
		now: time.Now, bodyIdle: time.Minute, putting: map[string]bool{}, m: newMetrics()}, nil
}

// Secret returns the configured upload.secret, or the one generated once in
// dataDir/upload.secret (created on first start). A cluster must configure
// the secret: each node would generate its own otherwise.
func Secret(configured, dataDir string) ([]byte, error) {
	if configured != "" {
		return []byte(configured), nil
	}
	path := filepath.Join(dataDir, "upload.secret")
	b, err := os.ReadFile(path)
	if err == nil {
		s := strings.TrimSpace(string(b))
		if len(s) < 32 {
			return nil, fmt.Errorf("%s holds fewer than 32 characters; delete it to generate a new one", path)
		}
		return []byte(s), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	var r [32]byte
	rand.Read(r[:])
	s := hex.EncodeToString(r[:])
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) { // another process won the race
			return Secret("", dataDir)
		}
		return nil, err
	}
	_, err = f.WriteString(s + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, err
	}
	return []byte(s), nil
}

// Register puts the slot request handler on the server's IQ mux, on the
// main domain, and advertises it in the domain's disco#info: the feature,
// a store/file identity (clients such as slixmpp look for it) and the
// XEP-0128 form with max-file-size.
func (s *Service) Register(m *server.Mux) {
	m.Handle("get", NS, "request", server.ToServer, NS, s.handleRequest)
	m.ServerInfo(
		xmlstream.New(server.NSDiscoInfo, "identity", "category", "store", "type", "file", "name", "HTTP File Upload"),
		s.discoForm(),
	)
}

func (s *Service) discoForm() *xmlstream.Element {
	const nsData = "jabber:x:data"
	x := xmlstream.New(nsData, "x", "type", "result")
	x.Append(xmlstream.New(nsData, "field", "var", "FORM_TYPE", "type", "hidden").
		Append(xmlstream.New(nsData, "value").AppendText(NS)))
	x.Append(xmlstream.New(nsData, "field", "var", "max-file-size").
		Append(xmlstream.New(nsData, "value").AppendText(strconv.FormatInt(s.lim.MaxFileSize, 10))))
	return x
}

func (s *Service) handleRequest(ctx context.Context, iq *server.IQ) (*xmlstream.Element, error) {
	user := iq.From.Local()
	if user == "" {
		return nil, stanza.NewError("forbidden", "only accounts may upload")
	}
	req := iq.Payload
	slot, err := s.RequestSlot(ctx, user, req.Attr("filename"), req.Attr("size"), req.Attr("content-type"))
	if err != nil {
		return nil, err
	}
	out := xmlstream.New(NS, "slot")
	put := xmlstream.New(NS, "put", "url", s.base+slotPath(slot.ID, slot.Filename))
	tok := s.signer.Sign(slot.ID, slot.Size, slot.ContentType, slot.Created.Add(s.lim.TokenLifetime))
	put.Append(xmlstream.New(NS, "header", "name", "Authorization").AppendText("Bearer " + tok))
	out.Append(put)
	out.Append(xmlstream.New(NS, "get", "url", s.base+slotPath(slot.ID, slot.Filename)))
	return out, nil
}

// expires is when a slot's file stops being served and is deleted.
func (s *Service) expires(slot *Slot) time.Time { return slot.Created.Add(s.lim.Expiry) }

// requestSlot is RequestSlot before counting.
func (s *Service) requestSlot(ctx context.Context, user, filename, sizeAttr, ctype string) (*Slot, error) {
	if err := checkFilename(filename); err != nil {
		return nil, stanza.NewError("not-acceptable", err.Error())
	}
	size, err := strconv.ParseInt(sizeAttr, 10, 64)
	if err != nil || size <= 0 {
		return nil, stanza.NewError("bad-request", "size must be a positive number of bytes")
	}
	if size > s.lim.MaxFileSize {
		e := stanza.NewError("not-acceptable", "File too large. The maximum file size is "+strconv.FormatInt(s.lim.MaxFileSize, 10)+" bytes")
		e.App = xmlstream.New(NS, "file-too-large").Append(
			xmlstream.New(NS, "max-file-size").AppendText(strconv.FormatInt(s.lim.MaxFileSize, 10)))
		return nil, e
	}
	mt, err := normalizeContentType(ctype)
	if err != nil {
		return nil, stanza.NewError("not-acceptable", err.Error())
	}
	if !typeAllowed(s.lim.ContentTypes, mt) {
		return nil, stanza.NewError("not-acceptable", "content-type "+mt+" is not accepted here")
	}
	if s.lim.Quota > 0 && size > s.lim.Quota {
		return nil, stanza.NewError("not-acceptable", "file is larger than the whole per-user quota of "+strconv.FormatInt(s.lim.Quota, 10)+" bytes")
	}

	mu := &s.userMu[userStripe(user)]
	mu.Lock()
	defer mu.Unlock()
	now := s.now()
	if err := s.checkUser(ctx, user, size, now); err != nil {
		return nil, err
	}
	slot := &Slot{ID: newID(), User: user, Filename: filename, Size: size, ContentType: mt,
		Created: now.UTC().Truncate(time.Second)}
	// Index entry first: a crash in between leaves an entry the sweeper
	// drops (its meta is missing), never a file that escapes the quota.
	if err := putSmall(ctx, s.backend, indexKey(slot), nil); err != nil {
		return nil, err
	}
	if err := saveSlot(ctx, s.backend, slot); err != nil {
		s.backend.Delete(ctx, indexKey(slot))
		return nil, err
	}
	return slot, nil
}

// checkUser applies the per-user quota and hourly rate, computed from the
// user's index in the backend so they hold across nodes. A refusal is
// resource-constraint with <retry stamp> saying when to ask again.
func (s *Service) checkUser(ctx context.Context, user string, size int64, now time.Time) error {
	if s.lim.Quota == 0 && s.lim.UploadsPerHour == 0 {
		return nil
	}
	entries, err := s.backend.List(ctx, userPrefix(user))
	if err != nil {
		return err
	}
	var used int64
	var recent []time.Time
	var oldestExpiry time.Time
	for _, e := range entries {
		created, sz, _, ok := parseIndexKey(e.Key)
		if !ok {
			continue
		}
		exp := created.Add(s.lim.Expiry)
		if !exp.After(now) {
			continue // expired, the sweeper has not got to it yet
		}
		used += sz
		if oldestExpiry.IsZero() || exp.Before(oldestExpiry) {
			oldestExpiry = exp
		}
		if created.After(now.Add(-time.Hour)) {
			recent = append(recent, created)
		}
	}
	if s.lim.UploadsPerHour > 0 && len(recent) >= s.lim.UploadsPerHour {
		first := recent[0]
		for _, t := range recent {
			if t.Before(first) {
				first = t
			}
		}
		return retryError(fmt.Sprintf("Quota reached. You can only upload %d files per hour", s.lim.UploadsPerHour), first.Add(time.Hour))
	}
	if s.lim.Quota > 0 && used+size > s.lim.Quota {
		return retryError(fmt.Sprintf("Quota reached. You store %d of %d bytes", used, s.lim.Quota), oldestExpiry)
	}
	return nil
}

func userStripe(user string) int {
	h := fnv.New32a()
	h.Write([]byte(user))
	return int(h.Sum32() % 64)
}

func retryError(text string, at time.Time) *stanza.Error {
	e := stanza.NewError("resource-constraint", text)
	e.App = xmlstream.New(NS, "retry", "stamp", at.UTC().Format("2006-01-02T15:04:05Z"))
	return e
}
