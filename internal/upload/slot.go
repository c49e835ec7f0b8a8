package upload

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"mime"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Slot is what the service remembers of one upload, stored as
// meta/<id>.json in the backend so every node can serve it: who asked,
// what was announced, and once the PUT is done, the SHA-256 of the content,
// which names the blob (identical files are stored once). A slot expires
// upload.expiry after Created, by the configuration in force, so changing
// the setting applies to files already stored.
type Slot struct {
	ID          string    `json:"id"`
	User        string    `json:"user"`
	Filename    string    `json:"filename"`
	Size        int64     `json:"size"`
	ContentType string    `json:"content_type"`
	Created     time.Time `json:"created"`
	SHA256      string    `json:"sha256,omitempty"` // empty until the PUT completes
	Filled      time.Time `json:"filled,omitzero"`
}

// Keys of the backend layout.
func metaKey(id string) string  { return "meta/" + id + ".json" }
func blobKey(sum string) string { return "blobs/" + sum }
func tmpKey(id string) string   { return "tmp/" + id }

// refKey records that a filled slot references a blob. The sweeper learns
// every reference from one listing of refs/, and whether one blob is still
// referenced from a listing of refs/<sha256>/, without reading metadata.
func refKey(id, sum string) string { return "refs/" + sum + "/" + id }

// parseRefKey reads a reference back.
func parseRefKey(key string) (id, sum string, ok bool) {
	sum, id, ok = strings.Cut(strings.TrimPrefix(key, "refs/"), "/")
	return id, sum, ok && validID(id) && validSHA256(sum)
}

// userPrefix is a user's index directory. The localpart is hex-encoded:
// JID localparts may contain dots and other characters that are no business
// in a key.
func userPrefix(user string) string { return "users/" + hex.EncodeToString([]byte(user)) + "/" }

// indexKey is a user's index entry of one slot. Its name carries the
// creation time and size, so quota and rate come from one List of the
// user's prefix without reading any object.
func indexKey(s *Slot) string {
	return userPrefix(s.User) + strconv.FormatInt(s.Created.Unix(), 10) + "-" + strconv.FormatInt(s.Size, 10) + "-" + s.ID
}

// parseIndexKey reads an index entry's name back.
func parseIndexKey(key string) (created time.Time, size int64, id string, ok bool) {
	name := key[strings.LastIndexByte(key, '/')+1:]
	parts := strings.Split(name, "-")
	if len(parts) != 3 || !validID(parts[2]) {
		return time.Time{}, 0, "", false
	}
	c, err1 := strconv.ParseInt(parts[0], 10, 64)
	sz, err2 := strconv.ParseInt(parts[1], 10, 64)
	if err1 != nil || err2 != nil {
		return time.Time{}, 0, "", false
	}
	return time.Unix(c, 0), sz, parts[2], true
}

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newID returns a slot id: 160 random bits, so a GET link cannot be guessed.
func newID() string {
	var b [20]byte
	rand.Read(b[:])
	return idEncoding.EncodeToString(b[:])
}

// validID accepts exactly what newID makes.
func validID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

func validSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}

// checkFilename accepts a name that is only ever shown (the last segment of
// the link): printable UTF-8, no path separators, not "." or "..".
func checkFilename(name string) error {
	switch {
	case name == "":
		return errors.New("filename is empty")
	case len(name) > 255:
		return errors.New("filename is longer than 255 bytes")
	case !utf8.ValidString(name):
		return errors.New("filename is not UTF-8")
	case name == "." || name == "..":
		return errors.New("filename must not be . or ..")
	case strings.ContainsAny(name, "/\\"):
		return errors.New("filename must not contain / or \\")
	}
	for _, r := range name {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return errors.New("filename contains control characters")
		}
	}
	return nil
}

// normalizeContentType checks a slot's announced type and returns the
// canonical "type/subtype" (lower case, no parameters) that the PUT must
// repeat; empty becomes application/octet-stream as XEP-0363 §6 allows.
func normalizeContentType(ct string) (string, error) {
	if ct == "" {
		return "application/octet-stream", nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || !strings.Contains(mt, "/") || strings.ContainsAny(mt, "*") {
		return "", errors.New("content-type is not a media type")
	}
	return mt, nil
}

// typeAllowed matches a media type against upload.content_types entries
// ("image/jpeg" or "image/*"); an empty list allows every type.
func typeAllowed(allowed []string, mt string) bool {
	if len(allowed) == 0 {
		return true
	}
	for _, a := range allowed {
		a = strings.ToLower(a)
		if a == mt || strings.HasSuffix(a, "/*") && strings.HasPrefix(mt, a[:len(a)-1]) {
			return true
		}
	}
	return false
}

// slotPath is the URL path of a slot, for both PUT and GET: the id, then
// the file name percent-encoded as one segment.
func slotPath(id, filename string) string {
	return "/upload/" + id + "/" + url.PathEscape(filename)
}

// parseSlotPath splits a request path (already unescaped by net/http) into
// the slot id and the display file name. Only the id is ever used to find
// data, and it is checked to be exactly a generated id.
func parseSlotPath(p string) (id, filename string, err error) {
	rest, ok := strings.CutPrefix(p, "/upload/")
	if !ok {
		return "", "", errors.New("not an upload path")
	}
	id, filename, ok = strings.Cut(rest, "/")
	if !ok || !validID(id) {
		return "", "", errors.New("bad slot id")
	}
	if err := checkFilename(filename); err != nil {
		return "", "", err
	}
	return id, filename, nil
}

func loadSlot(ctx context.Context, b Backend, id string) (*Slot, error) {
	data, err := readSmall(ctx, b, metaKey(id))
	if err != nil {
		return nil, err
	}
	var s Slot
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, err
	}
	if s.ID != id || s.SHA256 != "" && !validSHA256(s.SHA256) {
		return nil, errors.New("upload: corrupt slot metadata " + id)
	}
	return &s, nil
}

func saveSlot(ctx context.Context, b Backend, s *Slot) error {
	data, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return putSmall(ctx, b, metaKey(s.ID), data)
}
