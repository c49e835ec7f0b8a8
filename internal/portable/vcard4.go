package portable

import (
	"strings"

	"bluetick/internal/xmlstream"
)

// Prosody's mod_vcard_legacy (on in Debian's default configuration) keeps
// no vcard-temp: it stores a vcard-temp a client sets as the XEP-0292
// vCard4 PEP node plus the XEP-0084 avatar nodes, and builds vcard-temp
// from them when asked. Its export thus has no <vCard/>, and clients that
// read vcard-temp (XEP-0054, XEP-0153 avatars) would find an empty one on
// Bluetick. The import builds it the same way: the vCard4 fields
// vcard-temp has, and the PHOTO from the current PEP avatar.

const (
	nsVCard4       = "urn:ietf:params:xml:ns:vcard-4.0"
	nodeVCard4     = "urn:xmpp:vcard4"
	nodeAvatarData = "urn:xmpp:avatar:data"
	nodeAvatarMeta = "urn:xmpp:avatar:metadata"
)

// vcardFromPEP builds a vcard-temp from the account's vCard4 node and
// avatar, or returns nil when it has no vCard4 item.
func vcardFromPEP(a *Account) *xmlstream.Element {
	v4 := lastPayload(a, nodeVCard4, "")
	if v4 == nil || v4.Space != nsVCard4 || v4.Name != "vcard" {
		return nil
	}
	v := xmlstream.New(nsVCard, "vCard")
	add := func(name, text string, sub ...string) {
		if text = strings.TrimSpace(text); text == "" {
			return
		}
		el := xmlstream.New(nsVCard, name)
		if len(sub) == 0 {
			el.AppendText(text)
		} else {
			for _, s := range sub[:len(sub)-1] {
				el.Append(xmlstream.New(nsVCard, s))
			}
			el.Append(xmlstream.New(nsVCard, sub[len(sub)-1]).AppendText(text))
		}
		v.Append(el)
	}
	val := func(el *xmlstream.Element, kind string) string { return el.ChildText(nsVCard4, kind) }
	for _, f := range v4.Elements() {
		if f.Space != nsVCard4 {
			continue
		}
		switch f.Name {
		case "fn":
			add("FN", val(f, "text"))
		case "n":
			n := xmlstream.New(nsVCard, "N")
			for _, p := range [][2]string{{"surname", "FAMILY"}, {"given", "GIVEN"}, {"additional", "MIDDLE"}, {"prefix", "PREFIX"}, {"suffix", "SUFFIX"}} {
				if t := strings.TrimSpace(f.ChildText(nsVCard4, p[0])); t != "" {
					n.Append(xmlstream.New(nsVCard, p[1]).AppendText(t))
				}
			}
			if len(n.Children) > 0 {
				v.Append(n)
			}
		case "nickname":
			add("NICKNAME", val(f, "text"))
		case "email":
			add("EMAIL", val(f, "text"), "INTERNET", "USERID")
		case "tel":
			add("TEL", strings.TrimPrefix(val(f, "uri")+val(f, "text"), "tel:"), "NUMBER")
		case "url":
			add("URL", val(f, "uri"))
		case "bday":
			add("BDAY", val(f, "date")+val(f, "date-time")+val(f, "text"))
		case "note":
			add("DESC", val(f, "text"))
		case "title":
			add("TITLE", val(f, "text"))
		case "role":
			add("ROLE", val(f, "text"))
		case "org":
			add("ORG", val(f, "text"), "ORGNAME")
		case "impp":
			if u := val(f, "uri"); strings.HasPrefix(u, "xmpp:") {
				add("JABBERID", strings.TrimPrefix(u, "xmpp:"))
			}
		}
	}
	if photo := avatarPhoto(a); photo != nil {
		v.Append(photo)
	}
	return v
}

// avatarPhoto is the vcard-temp PHOTO of the account's current PEP
// avatar: the newest metadata item's first <info/> without a url, whose
// image is the data node's item of that id.
func avatarPhoto(a *Account) *xmlstream.Element {
	meta := lastPayload(a, nodeAvatarMeta, "")
	if meta == nil {
		return nil
	}
	for _, info := range meta.Elements() {
		if info.Name != "info" || info.Attr("url") != "" || info.Attr("id") == "" {
			continue
		}
		data := lastPayload(a, nodeAvatarData, info.Attr("id"))
		if data == nil || data.Name != "data" {
			return nil
		}
		typ := info.Attr("type")
		if typ == "" {
			typ = "image/png"
		}
		return xmlstream.New(nsVCard, "PHOTO").Append(
			xmlstream.New(nsVCard, "TYPE").AppendText(typ),
			xmlstream.New(nsVCard, "BINVAL").AppendText(strings.Join(strings.Fields(data.Text()), "")))
	}
	return nil
}

// lastPayload is the payload of a node's item with id, or of its newest
// item when id is "".
func lastPayload(a *Account, node, id string) *xmlstream.Element {
	for _, n := range a.PEP {
		if n.Node != node || len(n.Items) == 0 {
			continue
		}
		if id == "" {
			return n.Items[len(n.Items)-1].Payload
		}
		for _, it := range n.Items {
			if it.ID == id {
				return it.Payload
			}
		}
	}
	return nil
}
