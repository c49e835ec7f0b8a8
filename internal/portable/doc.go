// Package portable reads and writes XEP-0227 (Portable Import/Export
// Format for XMPP-IM Servers) files: the whole server's accounts with
// their SCRAM credentials, rosters, vCards, private XML (XEP-0049), PEP
// nodes with their items, offline messages and, in an extension element
// of Bluetick's own, the group chat rooms with their affiliations.
//
// It reads what the exporters of other servers write, as they write it:
//
//   - Prosody 0.12 (prosody-migrator to the "xep0227" store): one file per
//     account, namespace urn:xmpp:pie:0, <scram-credentials/> (SCRAM-SHA-1
//     unless Prosody's password_hash says otherwise, and then still
//     labelled SCRAM-SHA-1 by the migrator, so the key length decides),
//     roster, vcard-temp, private XML, PEP node configuration forms and
//     items, pending subscription requests as <presence type='subscribe'/>.
//     It writes no offline messages, and with mod_vcard_legacy no
//     vcard-temp: the import builds one from the vCard4 node (vcard4.go).
//   - ejabberd 23.01 (ejabberdctl export_piefxis DIR): a main file that
//     XIncludes one file per host; <scram-credentials/> whose values are
//     base64 of the base64 text, roster, vcard-temp, private XML, offline
//     messages, pending subscription requests, privacy lists (whose
//     blocking rules become the XEP-0191 blocklist). No PEP, no group
//     chats.
//   - The original namespace http://www.xmpp.org/extensions/xep-0227.html#ns
//     with plaintext password attributes (from which both SCRAM
//     credentials are derived).
//
// Files are read with encoding/xml as a token stream, one account (or
// room) at a time, so a file larger than memory can be imported; each
// account's subtree is bounded (MaxAccountBytes).
package portable

// Namespaces of the format and of what it carries.
const (
	NS         = "urn:xmpp:pie:0"                                  // XEP-0227 1.1
	NSLegacy   = "http://www.xmpp.org/extensions/xep-0227.html#ns" // XEP-0227 before 1.1 (ejabberd < 21)
	NSSCRAM    = "urn:xmpp:pie:0#scram"
	NSXInclude = "http://www.w3.org/2001/XInclude"
	// NSRooms qualifies Bluetick's extension element for group chat rooms
	// (XEP-0227 leaves MUC out of scope and allows extensions).
	NSRooms = "urn:bluetick:pie:muc:0"

	nsRoster      = "jabber:iq:roster"
	nsPrivate     = "jabber:iq:private"
	nsVCard       = "vcard-temp"
	nsClient      = "jabber:client"
	nsPubSub      = "http://jabber.org/protocol/pubsub"
	nsPubSubOwner = "http://jabber.org/protocol/pubsub#owner"
	nsData        = "jabber:x:data"
	nsDelay       = "urn:xmpp:delay"
	nsBlocking    = "urn:xmpp:blocking"
	nsPrivacy     = "jabber:iq:privacy"
	nsMAM         = "urn:xmpp:pie:0#mam"
)
