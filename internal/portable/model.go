package portable

import (
	"time"

	"bluetick/internal/store"
	"bluetick/internal/xmlstream"
)

// Account is one <user/> of a file: everything the file holds for one
// account of one host, already checked and converted where Bluetick keeps
// it differently.
type Account struct {
	Host string // the <host jid=''/> it is under
	Name string // the localpart, as in the file
	// Creds are the SCRAM credentials the file carries (stored keys, not
	// passwords), or those derived from a plaintext password.
	Creds []store.Credential
	// NoPassword says why the account's password cannot be carried over
	// ("" when Creds holds at least one usable credential).
	NoPassword string
	Roster     []store.RosterItem
	VCard      *xmlstream.Element // vcard-temp <vCard/>, nil if none
	Private    []*xmlstream.Element
	PEP        []PEPNode
	Offline    []*xmlstream.Element // <message/> in jabber:client, oldest first
	Blocked    []string             // XEP-0191 blocklist
	// Skipped names what the file holds for the account that is not
	// imported (unknown elements, MAM archives, privacy lists ...).
	Skipped []string
	// Invalid, when set, says why the account cannot be imported at all.
	Invalid string
}

// PEPNode is one personal eventing node with its configuration form
// (nil: the defaults) and items, oldest first.
type PEPNode struct {
	Node  string
	Form  *xmlstream.Element
	Items []PEPItem
}

// PEPItem is one published item.
type PEPItem struct {
	ID      string
	Payload *xmlstream.Element
}

// Room is one group chat room of the <room/> extension element.
type Room struct {
	JID          string
	Config       []byte // package muc's stored configuration (JSON)
	Subject      string
	SubjectFrom  string
	Created      time.Time
	Affiliations []store.Affiliation
}
