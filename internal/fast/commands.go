package fast

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"bluetick/internal/dataform"
	"bluetick/internal/jid"
	"bluetick/internal/stanza"
	"bluetick/internal/xmlstream"
)

// NSCommands is XEP-0050 ad-hoc commands.
const NSCommands = "http://jabber.org/protocol/commands"

// The ad-hoc command nodes. They are offered on the server's domain, the
// entity XEP-0050 clients ask for server commands (Gajim, Psi,
// Conversations and Cheogram show them under the account or server), and
// each acts on the requester's own account.
const (
	NodeListDevices  = "urn:bluetick:devices#list"
	NodeRevokeDevice = "urn:bluetick:devices#revoke"
)

// Command is one XEP-0050 command: its node, its name in menus and its
// handler, which gets the requester's full JID and the <command/> of an
// IQ set and returns the <command/> to answer with (or a stanza error).
type Command struct {
	Node, Name string
	Handle     func(ctx context.Context, from jid.JID, cmd *xmlstream.Element) (*xmlstream.Element, error)
}

// Commands are the service's ad-hoc commands, for the server to offer on
// its domain: list the account's linked devices; log some or all out.
// None when FAST is disabled.
func (s *Service) Commands() []Command {
	if !s.Enabled() {
		return nil
	}
	return []Command{
		{NodeListDevices, "Linked devices", s.listCommand},
		{NodeRevokeDevice, "Log out linked devices", s.revokeCommand},
	}
}

// start checks a command request and makes its response <command/>; done
// is true when that response is final (a cancel).
func start(from jid.JID, cmd *xmlstream.Element) (user string, res *xmlstream.Element, done bool, err error) {
	if from.Local() == "" {
		return "", nil, false, stanza.NewError("forbidden", "only accounts of this server have devices")
	}
	sid := cmd.Attr("sessionid")
	if sid == "" {
		var b [8]byte
		rand.Read(b[:])
		sid = hex.EncodeToString(b[:])
	}
	res = xmlstream.New(NSCommands, "command", "node", cmd.Attr("node"), "sessionid", sid)
	switch cmd.Attr("action") {
	case "", "execute", "complete":
	case "cancel":
		res.SetAttr("status", "canceled")
		return from.Local(), res, true, nil
	default:
		return "", nil, false, &stanza.Error{Type: "modify", Condition: "bad-request", Text: "actions here: execute, complete or cancel",
			App: xmlstream.New(NSCommands, "bad-action")}
	}
	return from.Local(), res, false, nil
}

func note(typ, text string) *xmlstream.Element {
	return xmlstream.New(NSCommands, "note", "type", typ).AppendText(text)
}

// stamp formats a time for people reading a form (UTC, minutes).
func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

// maxSubmitted bounds the devices one submission may name.
const maxSubmitted = 64

// label is how a device is shown: its software and device names, or its id.
func label(d Device) string {
	var parts []string
	for _, p := range []string{d.Software, d.Device} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		return "client " + d.AgentID
	}
	return strings.Join(parts, " on ")
}

// listCommand answers in one stage with a XEP-0004 table of the devices.
func (s *Service) listCommand(ctx context.Context, from jid.JID, cmd *xmlstream.Element) (*xmlstream.Element, error) {
	user, res, done, err := start(from, cmd)
	if err != nil || done {
		return res, err
	}
	devs, err := s.Devices(ctx, user)
	if err != nil {
		return nil, err
	}
	res.SetAttr("status", "completed")
	if len(devs) == 0 {
		res.Append(note("info", "No device holds a login token: every client logs in with the password."))
		return res, nil
	}
	x := xmlstream.New(dataform.NS, "x", "type", "result")
	x.Append(xmlstream.New(dataform.NS, "title").AppendText("Linked devices"))
	cols := []struct{ v, l string }{
		{"device", "Device"}, {"id", "Client id"}, {"last-used", "Last login"}, {"expires", "Logged out on"},
	}
	rep := xmlstream.New(dataform.NS, "reported")
	for _, c := range cols {
		rep.Append(xmlstream.New(dataform.NS, "field", "var", c.v, "label", c.l))
	}
	x.Append(rep)
	for _, d := range devs {
		it := xmlstream.New(dataform.NS, "item")
		for _, kv := range [][2]string{{"device", label(d)}, {"id", d.AgentID}, {"last-used", stamp(d.LastUsed)}, {"expires", stamp(d.Expires)}} {
			it.Append(xmlstream.New(dataform.NS, "field", "var", kv[0]).Append(xmlstream.New(dataform.NS, "value").AppendText(kv[1])))
		}
		x.Append(it)
	}
	res.Append(x)
	res.Append(note("info", fmt.Sprintf("%d device(s) can log in without the password. Use %q to log them out.", len(devs), "Log out linked devices")))
	return res, nil
}

// revokeCommand has two stages: the form (devices to log out, or all),
// then the result. It keeps no state between them: the submitted form
// says everything, and it only ever touches the requester's account.
func (s *Service) revokeCommand(ctx context.Context, from jid.JID, cmd *xmlstream.Element) (*xmlstream.Element, error) {
	user, res, done, err := start(from, cmd)
	if err != nil || done {
		return res, err
	}
	x := cmd.Child(dataform.NS, "x")
	if x == nil {
		devs, err := s.Devices(ctx, user)
		if err != nil {
			return nil, err
		}
		if len(devs) == 0 {
			res.SetAttr("status", "completed")
			res.Append(note("info", "No device holds a login token: there is nothing to log out."))
			return res, nil
		}
		res.SetAttr("status", "executing")
		res.Append(xmlstream.New(NSCommands, "actions", "execute", "complete").Append(xmlstream.New(NSCommands, "complete")))
		f := xmlstream.New(dataform.NS, "x", "type", "form")
		f.Append(xmlstream.New(dataform.NS, "title").AppendText("Log out linked devices"))
		f.Append(xmlstream.New(dataform.NS, "instructions").AppendText(
			"The selected devices lose their login token and are disconnected: they need the password to log in again."))
		list := xmlstream.New(dataform.NS, "field", "var", "devices", "type", "list-multi", "label", "Devices to log out")
		for _, d := range devs {
			opt := xmlstream.New(dataform.NS, "option", "label", label(d)+", last login "+stamp(d.LastUsed))
			list.Append(opt.Append(xmlstream.New(dataform.NS, "value").AppendText(d.AgentID)))
		}
		f.Append(list)
		f.Append(xmlstream.New(dataform.NS, "field", "var", "all", "type", "boolean", "label", "Log out all devices (this one too, at its next login)").
			Append(xmlstream.New(dataform.NS, "value").AppendText("0")))
		res.Append(f)
		return res, nil
	}
	// Read the submission directly: clients often leave the field types
	// out of a submitted form, and dataform.Parse then refuses several
	// values in one field.
	if t := x.Attr("type"); t != "submit" && t != "" {
		return nil, stanza.NewError("bad-request", "submit the command's form (type='submit')")
	}
	var agents []string
	allValue := ""
	for _, fl := range x.Elements() {
		if fl.Space != dataform.NS || fl.Name != "field" {
			continue
		}
		for _, v := range fl.Elements() {
			if v.Space != dataform.NS || v.Name != "value" {
				continue
			}
			switch fl.Attr("var") {
			case "devices":
				if v.Text() == "" {
					continue // "" would mean every device to Revoke
				}
				if len(agents) >= maxSubmitted {
					return nil, stanza.NewError("not-acceptable", "too many devices selected; choose all instead")
				}
				agents = append(agents, v.Text())
			case "all":
				allValue = v.Text()
			}
		}
	}
	all := allValue == "1" || allValue == "true"
	if !all && len(agents) == 0 {
		return nil, stanza.NewError("bad-request", "select at least one device, or all")
	}
	if all {
		agents = []string{""}
	}
	revoked, kicked := 0, 0
	for _, a := range agents {
		n, err := s.Revoke(ctx, user, a, RevokedByUser)
		if err != nil {
			return nil, err
		}
		revoked += n
		if s.Kick != nil && (n > 0 || a == "") {
			kicked += s.Kick(ctx, user, a, from)
		}
	}
	res.SetAttr("status", "completed")
	if revoked == 0 {
		res.Append(note("warn", "None of these devices holds a login token any more."))
		return res, nil
	}
	msg := fmt.Sprintf("Logged out: %d login token(s) revoked, %d session(s) disconnected.", revoked, kicked)
	if all {
		msg += " This device stays connected now but needs the password at its next login."
	}
	res.Append(note("info", msg))
	return res, nil
}
