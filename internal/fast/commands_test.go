package fast

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"bluetick/internal/dataform"
	"bluetick/internal/jid"
	"bluetick/internal/stanza"
	"bluetick/internal/xmlstream"
)

var aliceJID = jid.MustParse("alice@example.com/laptop")

func (e *env) command(node string, from jid.JID, attrs []string, form *xmlstream.Element) (*xmlstream.Element, error) {
	e.t.Helper()
	cmd := xmlstream.New(NSCommands, "command", append([]string{"node", node}, attrs...)...)
	if form != nil {
		cmd.Append(form)
	}
	for _, c := range e.svc.Commands() {
		if c.Node == node {
			return c.Handle(context.Background(), from, cmd)
		}
	}
	e.t.Fatalf("no command %s", node)
	return nil, nil
}

func notes(res *xmlstream.Element) string {
	var out []string
	for _, n := range res.Elements() {
		if n.Space == NSCommands && n.Name == "note" {
			out = append(out, n.Attr("type")+": "+n.Text())
		}
	}
	return strings.Join(out, "\n")
}

// submit builds a submitted form, fields without types as many clients
// send them.
func submit(devices []string, all string) *xmlstream.Element {
	x := xmlstream.New(dataform.NS, "x", "type", "submit")
	f := xmlstream.New(dataform.NS, "field", "var", "devices")
	for _, d := range devices {
		f.Append(xmlstream.New(dataform.NS, "value").AppendText(d))
	}
	x.Append(f)
	if all != "" {
		x.Append(xmlstream.New(dataform.NS, "field", "var", "all").Append(xmlstream.New(dataform.NS, "value").AppendText(all)))
	}
	return x
}

func TestCommandList(t *testing.T) {
	e := newEnv(t)
	res, err := e.command(NodeListDevices, aliceJID, nil, nil)
	if err != nil || res.Attr("status") != "completed" || !strings.Contains(notes(res), "No device holds a login token") {
		t.Fatalf("empty list: %v %s", err, res)
	}
	if res.Attr("sessionid") == "" || res.Attr("node") != NodeListDevices {
		t.Fatalf("response lacks node or sessionid: %s", res)
	}
	e.issue("alice", phone, HTSHA256None)
	e.clk.Add(time.Hour)
	e.issue("alice", Client{AgentID: "web-1"}, HTSHA256None)
	e.issue("bob", Client{AgentID: "bobs"}, HTSHA256None)
	res, err = e.command(NodeListDevices, aliceJID, []string{"action", "execute"}, nil)
	if err != nil || res.Attr("status") != "completed" {
		t.Fatalf("list: %v %s", err, res)
	}
	x := res.Child(dataform.NS, "x")
	if x == nil || x.Attr("type") != "result" || x.Child(dataform.NS, "reported") == nil {
		t.Fatalf("no result table: %s", res)
	}
	var rows [][]string
	for _, it := range x.Elements() {
		if it.Name != "item" {
			continue
		}
		var row []string
		for _, f := range it.Elements() {
			row = append(row, f.Attr("var")+"="+f.ChildText(dataform.NS, "value"))
		}
		rows = append(rows, row)
	}
	want := [][]string{
		{"device=client web-1", "id=web-1", "last-used=2026-05-01 13:00 UTC", "expires=2026-05-15 13:00 UTC"},
		{"device=Conversations on Pixel 9", "id=" + phone.AgentID, "last-used=2026-05-01 12:00 UTC", "expires=2026-05-15 12:00 UTC"},
	}
	if !slices.EqualFunc(rows, want, slices.Equal) {
		t.Fatalf("rows %q, want %q", rows, want)
	}
}

func TestCommandRevoke(t *testing.T) {
	e := newEnv(t)
	type kick struct{ user, agent, except string }
	var kicks []kick
	e.svc.Kick = func(_ context.Context, user, agent string, except jid.JID) int {
		kicks = append(kicks, kick{user, agent, except.String()})
		return 1
	}
	// Nothing to log out.
	res, err := e.command(NodeRevokeDevice, aliceJID, nil, nil)
	if err != nil || res.Attr("status") != "completed" || !strings.Contains(notes(res), "nothing to log out") {
		t.Fatalf("no devices: %v %s", err, res)
	}
	e.issue("alice", Client{AgentID: "tablet"}, HTSHA256None)
	e.clk.Add(time.Minute)
	e.issue("alice", Client{AgentID: "web-1", Software: "Bluetick Web"}, HTSHA256None)
	e.clk.Add(time.Minute)
	ptok := e.issue("alice", phone, HTSHA256None)
	btok := e.issue("bob", Client{AgentID: "web-1"}, HTSHA256None)

	// Stage 1: the form.
	res, err = e.command(NodeRevokeDevice, aliceJID, nil, nil)
	if err != nil || res.Attr("status") != "executing" {
		t.Fatalf("stage 1: %v %s", err, res)
	}
	if a := res.Child(NSCommands, "actions"); a == nil || a.Attr("execute") != "complete" || a.Child(NSCommands, "complete") == nil {
		t.Fatalf("stage 1 actions: %s", res)
	}
	sid := res.Attr("sessionid")
	form := res.Child(dataform.NS, "x")
	var opts []string
	for _, f := range form.Elements() {
		if f.Attr("var") == "devices" {
			if f.Attr("type") != "list-multi" {
				t.Fatalf("devices field: %s", f)
			}
			for _, o := range f.Elements() {
				if o.Name == "option" {
					opts = append(opts, o.ChildText(dataform.NS, "value")+"|"+o.Attr("label"))
				}
			}
		}
	}
	if len(opts) != 3 || !strings.HasPrefix(opts[1], "web-1|Bluetick Web, last login ") {
		t.Fatalf("options %q", opts)
	}

	// Stage 2: log out two devices.
	res, err = e.command(NodeRevokeDevice, aliceJID, []string{"sessionid", sid}, submit([]string{phone.AgentID, "web-1"}, "0"))
	if err != nil || res.Attr("status") != "completed" || res.Attr("sessionid") != sid {
		t.Fatalf("stage 2: %v %s", err, res)
	}
	if !strings.Contains(notes(res), "2 login token(s) revoked, 2 session(s) disconnected") {
		t.Fatalf("stage 2 note: %s", notes(res))
	}
	if want := []kick{{"alice", phone.AgentID, aliceJID.String()}, {"alice", "web-1", aliceJID.String()}}; !slices.Equal(kicks, want) {
		t.Fatalf("kicks %v, want %v", kicks, want)
	}
	if n, _, err := e.login(HTSHA256None, Params{AgentID: phone.AgentID}, InitialResponse("alice", ptok.Token, nil)); n.Reason() != ReasonRevoked {
		t.Fatalf("revoked phone logs in: %v", err)
	}
	// Bob's client with the same id is untouched.
	if _, _, err := e.login(HTSHA256None, Params{AgentID: "web-1"}, InitialResponse("bob", btok.Token, nil)); err != nil {
		t.Fatalf("bob's token: %v", err)
	}
	if d, _ := e.svc.Devices(t.Context(), "alice"); len(d) != 1 || d[0].AgentID != "tablet" {
		t.Fatalf("devices left: %+v", d)
	}
	// A device that is already gone.
	res, err = e.command(NodeRevokeDevice, aliceJID, nil, submit([]string{"web-1"}, ""))
	if err != nil || !strings.Contains(notes(res), "warn: None of these devices") {
		t.Fatalf("revoking again: %v %s", err, res)
	}
	// All.
	kicks = nil
	res, err = e.command(NodeRevokeDevice, aliceJID, nil, submit(nil, "true"))
	if err != nil || !strings.Contains(notes(res), "1 login token(s) revoked") {
		t.Fatalf("all: %v %s", err, res)
	}
	if want := []kick{{"alice", "", aliceJID.String()}}; !slices.Equal(kicks, want) {
		t.Fatalf("kicks %v, want %v", kicks, want)
	}
	if d, _ := e.svc.Devices(t.Context(), "alice"); len(d) != 0 {
		t.Fatalf("devices left after all: %+v", d)
	}
}

func TestCommandErrors(t *testing.T) {
	e := newEnv(t)
	e.issue("alice", phone, HTSHA256None)
	cond := func(err error) string {
		var se *stanza.Error
		if !errors.As(err, &se) {
			return "not a stanza error: " + err.Error()
		}
		return se.Condition
	}
	// Nothing selected.
	if _, err := e.command(NodeRevokeDevice, aliceJID, nil, submit(nil, "0")); cond(err) != "bad-request" {
		t.Fatalf("nothing selected: %v", err)
	}
	// An empty value does not mean "all".
	if _, err := e.command(NodeRevokeDevice, aliceJID, nil, submit([]string{""}, "")); cond(err) != "bad-request" {
		t.Fatalf("empty device id: %v", err)
	}
	if d, _ := e.svc.Devices(t.Context(), "alice"); len(d) != 1 {
		t.Fatal("a refused submission revoked something")
	}
	// Cancel.
	res, err := e.command(NodeRevokeDevice, aliceJID, []string{"sessionid", "s1", "action", "cancel"}, nil)
	if err != nil || res.Attr("status") != "canceled" || res.Attr("sessionid") != "s1" {
		t.Fatalf("cancel: %v %s", err, res)
	}
	// Unknown action.
	if _, err := e.command(NodeRevokeDevice, aliceJID, []string{"action", "prev"}, nil); cond(err) != "bad-request" {
		t.Fatalf("prev: %v", err)
	}
	// Not an account.
	if _, err := e.command(NodeListDevices, jid.MustParse("example.com"), nil, nil); cond(err) != "forbidden" {
		t.Fatalf("from a domain: %v", err)
	}
	// A form of the wrong type.
	bad := xmlstream.New(dataform.NS, "x", "type", "result")
	if _, err := e.command(NodeRevokeDevice, aliceJID, nil, bad); cond(err) != "bad-request" {
		t.Fatalf("result form: %v", err)
	}
}
