package pep

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"image"
	_ "image/gif" // image.DecodeConfig for the avatar's width and height
	_ "image/jpeg"
	_ "image/png"
	"net/http"
	"strconv"
	"strings"

	"bluetick/internal/jid"
	"bluetick/internal/stanza"
	"bluetick/internal/store"
	"bluetick/internal/xmlstream"
)

// XEP-0398, User Avatar to vCard-Based Avatars Conversion: the server keeps
// the PEP avatar (XEP-0084) and the vcard-temp PHOTO (XEP-0153) of an
// account the same, whichever a client sets, and puts the XEP-0153 hash
// into the account's available presence so that clients need not fetch
// their own vCard to compute it.
//
//   - publishing to urn:xmpp:avatar:metadata copies the referenced
//     urn:xmpp:avatar:data item (the first <info/> without url, its SHA-1
//     verified against the id) into the vCard's PHOTO; an empty
//     <metadata/> (avatar disabled, XEP-0084 §4.2) removes the PHOTO;
//   - setting a vCard with a PHOTO publishes the data item (id = SHA-1 of
//     the image) and then the metadata item, notifying subscribers; a new
//     node is created with access open, since the vCard it comes from is
//     readable by anyone; a vCard without PHOTO disables the PEP avatar;
//   - the vCard PHOTO is shown to others only if they may read the avatar
//     data node (XEP-0398 §7): a PEP avatar restricted to contacts does not
//     leak to strangers through vcard-temp; retracting, purging or deleting
//     the image from the data node removes the PHOTO.

// Namespaces.
const (
	NSAvatarData      = "urn:xmpp:avatar:data"            // XEP-0084
	NSAvatarMeta      = "urn:xmpp:avatar:metadata"        // XEP-0084
	NSVCardUpdate     = "vcard-temp:x:update"             // XEP-0153
	NSVCardConversion = "urn:xmpp:pep-vcard-conversion:0" // XEP-0398
)

// photo is a decoded avatar image.
type photo struct {
	typ  string
	data []byte
	hash string // hex SHA-1 (XEP-0084 id, XEP-0153 hash)
}

func newPhoto(typ string, data []byte) photo {
	sum := sha1.Sum(data)
	if typ == "" {
		typ = http.DetectContentType(data)
	}
	return photo{typ: typ, data: data, hash: hex.EncodeToString(sum[:])}
}

// decodeBase64 decodes base64 with whitespace (vCards fold BINVAL lines).
func decodeBase64(s string) ([]byte, error) {
	s = strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\n' || r == '\r' {
			return -1
		}
		return r
	}, s)
	return base64.StdEncoding.DecodeString(s)
}

// vcardPhoto reads a vCard's PHOTO: ok is false when it has none or only
// an EXTVAL; an undecodable BINVAL is an error.
func vcardPhoto(v *xmlstream.Element) (p photo, ok bool, err error) {
	ph := v.Child(NSVCard, "PHOTO")
	if ph == nil {
		return photo{}, false, nil
	}
	bin := ph.Child(NSVCard, "BINVAL")
	if bin == nil {
		return photo{}, false, nil
	}
	data, err := decodeBase64(bin.Text())
	if err != nil {
		return photo{}, false, stanza.NewError("bad-request", "the vCard PHOTO BINVAL is not base64")
	}
	if len(data) == 0 {
		return photo{}, false, nil
	}
	return newPhoto(strings.TrimSpace(ph.ChildText(NSVCard, "TYPE")), data), true, nil
}

// loadVCard returns the stored vCard (nil if none).
func (s *Service) loadVCard(ctx context.Context, user string) (*xmlstream.Element, error) {
	b, err := s.st.VCard(ctx, user)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return s.parse(b)
}

// avatarToVCard is the PEP → vCard direction, after a publish of meta to
// the metadata node.
func (s *Service) avatarToVCard(ctx context.Context, owner jid.JID, meta *xmlstream.Element) error {
	if meta.Space != NSAvatarMeta || meta.Name != "metadata" {
		return nil
	}
	var infos []*xmlstream.Element
	for _, e := range meta.Elements() {
		if e.Space == NSAvatarMeta && e.Name == "info" {
			infos = append(infos, e)
		}
	}
	user := owner.Local()
	if len(infos) == 0 {
		// Avatar disabled: so is the vCard's.
		v, err := s.loadVCard(ctx, user)
		if err != nil || v == nil || v.RemoveChildren(NSVCard, "PHOTO") == 0 {
			return err
		}
		return s.st.SetVCard(ctx, user, []byte(v.String()))
	}
	var info *xmlstream.Element
	for _, i := range infos {
		if i.Attr("url") == "" {
			info = i
			break
		}
	}
	if info == nil || info.Attr("id") == "" {
		return nil // only external URLs: nothing a vCard can hold
	}
	id := strings.ToLower(info.Attr("id"))
	items, err := s.st.PEPItems(ctx, user, NSAvatarData, []string{info.Attr("id")}, 0)
	if errors.Is(err, store.ErrNotFound) || err == nil && len(items) == 0 {
		return nil // metadata for data never published: nothing to copy
	}
	if err != nil {
		return err
	}
	d, err := s.parse(items[0].Payload)
	if err != nil {
		return err
	}
	if d.Space != NSAvatarData || d.Name != "data" {
		return nil
	}
	data, err := decodeBase64(d.Text())
	if err != nil || len(data) == 0 {
		return nil
	}
	p := newPhoto(info.Attr("type"), data)
	if p.hash != id {
		// XEP-0398 §3: the SHA-1 of the image should match the id;
		// a mismatch is not the avatar the metadata describes.
		s.log.Warn("pep avatar: data does not match its metadata id", "user", user, "id", id)
		return nil
	}
	v, err := s.loadVCard(ctx, user)
	if err != nil {
		return err
	}
	if v == nil {
		v = xmlstream.New(NSVCard, "vCard")
	}
	if old, ok, _ := vcardPhoto(v); ok && old.hash == p.hash && old.typ == p.typ {
		return nil
	}
	v.RemoveChildren(NSVCard, "PHOTO")
	v.Append(xmlstream.New(NSVCard, "PHOTO").Append(
		xmlstream.New(NSVCard, "TYPE").AppendText(p.typ),
		xmlstream.New(NSVCard, "BINVAL").AppendText(base64.StdEncoding.EncodeToString(p.data))))
	return s.st.SetVCard(ctx, user, []byte(v.String()))
}

// avatarDataGone removes the vCard PHOTO when its image was retracted,
// purged or deleted from the avatar data node: the PHOTO must not outlive
// the avatar (nor, with the node gone, become visible to everyone).
func (s *Service) avatarDataGone(ctx context.Context, user string) error {
	v, err := s.loadVCard(ctx, user)
	if err != nil || v == nil {
		return err
	}
	p, ok, _ := vcardPhoto(v)
	if !ok {
		return nil
	}
	items, err := s.st.PEPItems(ctx, user, NSAvatarData, []string{p.hash}, 0)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if len(items) > 0 {
		return nil
	}
	v.RemoveChildren(NSVCard, "PHOTO")
	return s.st.SetVCard(ctx, user, []byte(v.String()))
}

// avatarNodeConfig is how the server creates the avatar nodes from a
// vCard: readable by anyone, as the vCard is, one item.
func avatarNodeConfig() Config {
	c := defaultConfig()
	c.Access = AccessOpen
	return c
}

// currentAvatar returns the info ids of the newest metadata item.
func (s *Service) currentAvatar(ctx context.Context, user string) (ids []string, exists bool, err error) {
	items, err := s.st.PEPItems(ctx, user, NSAvatarMeta, nil, 1)
	if errors.Is(err, store.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil || len(items) == 0 {
		return nil, false, err
	}
	m, err := s.parse(items[0].Payload)
	if err != nil {
		return nil, true, nil
	}
	for _, e := range m.Elements() {
		if e.Name == "info" {
			ids = append(ids, strings.ToLower(e.Attr("id")))
		}
	}
	return ids, true, nil
}

// vcardToAvatar is the vCard → PEP direction, after the owner set v.
func (s *Service) vcardToAvatar(ctx context.Context, owner jid.JID, v *xmlstream.Element) error {
	user := owner.Local()
	p, ok, err := vcardPhoto(v)
	if err != nil {
		return err
	}
	cur, exists, err := s.currentAvatar(ctx, user)
	if err != nil {
		return err
	}
	if !ok {
		if v.Child(NSVCard, "PHOTO") != nil || !exists || len(cur) == 0 {
			return nil // an external photo, or no PEP avatar to disable
		}
		return s.publishAs(ctx, owner, NSAvatarMeta, "current", xmlstream.New(NSAvatarMeta, "metadata"), avatarNodeConfig())
	}
	if len(cur) > 0 && cur[0] == p.hash {
		return nil // already the PEP avatar: no republish, no notification
	}
	data := xmlstream.New(NSAvatarData, "data").AppendText(base64.StdEncoding.EncodeToString(p.data))
	if err := s.publishAs(ctx, owner, NSAvatarData, p.hash, data, avatarNodeConfig()); err != nil {
		return err
	}
	info := xmlstream.New(NSAvatarMeta, "info", "bytes", strconv.Itoa(len(p.data)), "id", p.hash, "type", p.typ)
	if c, _, err := image.DecodeConfig(bytes.NewReader(p.data)); err == nil {
		info.SetAttr("width", strconv.Itoa(c.Width))
		info.SetAttr("height", strconv.Itoa(c.Height))
	}
	return s.publishAs(ctx, owner, NSAvatarMeta, p.hash, xmlstream.New(NSAvatarMeta, "metadata").Append(info), avatarNodeConfig())
}

// photoVisible reports whether requester may see the owner's vCard PHOTO:
// if the owner has a PEP avatar, its data node's access model decides.
func (s *Service) photoVisible(ctx context.Context, owner, requester jid.JID) (bool, error) {
	if requester.Bare() == owner {
		return true, nil
	}
	n, err := s.st.PEPNode(ctx, owner.Local(), NSAvatarData)
	if errors.Is(err, store.ErrNotFound) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	err = s.mayAccess(ctx, owner, unmarshalConfig(n.Config), requester)
	if err == nil {
		return true, nil
	}
	if _, ok := err.(*stanza.Error); ok {
		return false, nil
	}
	return false, err
}

// PhotoHash is the XEP-0153 hash of the account's vCard photo: "" when
// it has none.
func (s *Service) PhotoHash(ctx context.Context, user string) (string, error) {
	v, err := s.loadVCard(ctx, user)
	if err != nil || v == nil {
		return "", err
	}
	p, ok, err := vcardPhoto(v)
	if err != nil || !ok {
		return "", nil // a broken stored photo advertises none
	}
	return p.hash, nil
}

// PresenceUpdate puts <x xmlns='vcard-temp:x:update'><photo>hash</photo></x>
// into an available presence of the account (XEP-0398 §4), in place: an
// existing x without photo, or with another hash, is replaced; one with
// an empty <photo/> (the client is not ready to advertise) is kept.
// Without a vCard photo the x says so with an empty <photo/>.
func (s *Service) PresenceUpdate(ctx context.Context, user string, p *xmlstream.Element) {
	if x := p.Child(NSVCardUpdate, "x"); x != nil {
		if ph := x.Child(NSVCardUpdate, "photo"); ph != nil && strings.TrimSpace(ph.Text()) == "" {
			return
		}
	}
	hash, err := s.PhotoHash(ctx, user)
	if err != nil {
		s.log.Error("vcard photo hash", "user", user, "err", err)
		return
	}
	p.RemoveChildren(NSVCardUpdate, "x")
	p.Append(xmlstream.New(NSVCardUpdate, "x").Append(xmlstream.New(NSVCardUpdate, "photo").AppendText(hash)))
}
