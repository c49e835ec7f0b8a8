package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"bluetick/internal/auth"
	"bluetick/internal/dataform"
	"bluetick/internal/fast"
	"bluetick/internal/jid"
	"bluetick/internal/session"
	"bluetick/internal/stanza"
	"bluetick/internal/store"
	"bluetick/internal/xmlstream"
)

// NSAdmin is XEP-0133 service administration: its command nodes are
// NSAdmin + "#add-user" and so on, and its forms carry it as FORM_TYPE.
const NSAdmin = "http://jabber.org/protocol/admin"

// The XEP-0133 commands the server offers to the accounts listed in the
// config's admins. Left out: get-user-password (only SCRAM keys are
// stored), the rest (blacklists, welcome, restart, ...) not yet.
const (
	NodeAddUser         = NSAdmin + "#add-user"
	NodeDeleteUser      = NSAdmin + "#delete-user"
	NodeDisableUser     = NSAdmin + "#disable-user"
	NodeReenableUser    = NSAdmin + "#reenable-user"
	NodeEndUserSession  = NSAdmin + "#end-user-session"
	NodeChangePassword  = NSAdmin + "#change-user-password"
	NodeUserStats       = NSAdmin + "#user-stats"
	NodeRegisteredNum   = NSAdmin + "#get-registered-users-num"
	NodeOnlineNum       = NSAdmin + "#get-online-users-num"
	NodeOnlineList      = NSAdmin + "#get-online-users-list"
	NodeAnnounce        = NSAdmin + "#announce"
	NodeSetMOTD         = NSAdmin + "#set-motd"
	NodeEditMOTD        = NSAdmin + "#edit-motd"
	NodeDeleteMOTD      = NSAdmin + "#delete-motd"
	maxAdminAccounts    = 64 // accounts one submission may name
	maxAnnouncementSize = 16 << 10
)

// adminCommand is one XEP-0133 command: form makes the form of its
// first stage (nil: the command runs at once), run acts on the submitted
// values and returns the result's note and, optionally, a result form.
type adminCommand struct {
	node, name string
	form       func(ctx context.Context) (*dataform.Form, error)
	run        func(ctx context.Context, admin jid.JID, v formValues) (string, *dataform.Form, error)
}

// formValues are the submitted fields, each with all its values.
type formValues map[string][]string

func (v formValues) one(name string) string {
	if len(v[name]) == 0 {
		return ""
	}
	return v[name][0]
}

// text joins a text-multi field's lines.
func (v formValues) text(name string) string { return strings.Join(v[name], "\n") }

// IsAdmin reports whether the account of from is listed in the config's
// admins.
func (s *Server) IsAdmin(from jid.JID) bool {
	if from.Local() == "" || from.Domain() != s.Domain.Domain() {
		return false
	}
	return slices.Contains(s.cfg.Admins, from.BareString())
}

// registerAdmin offers the XEP-0133 commands when the config lists admins;
// only they see and run them.
func (s *Server) registerAdmin() {
	if len(s.cfg.Admins) == 0 {
		return
	}
	s.motd.path = filepath.Join(s.cfg.DataDir, "motd.json")
	for _, c := range []adminCommand{
		{NodeAddUser, "Add a User", s.addUserForm, s.addUser},
		{NodeDeleteUser, "Delete Users", accountsForm("Delete Users", "The accounts and everything stored for them are removed; their sessions end."), s.deleteUsers},
		{NodeDisableUser, "Disable Users", accountsForm("Disabling Users", "The accounts keep everything they hold but cannot log in until re-enabled; their sessions end."), s.disableUsers(true)},
		{NodeReenableUser, "Re-Enable Users", accountsForm("Re-Enabling Users", "The accounts can log in again."), s.disableUsers(false)},
		{NodeChangePassword, "Change User Password", s.passwordForm, s.changePassword},
		{NodeEndUserSession, "End User Sessions", accountsForm("End User Sessions", "A bare address ends all of the account's sessions, a full address only that one."), s.endSessions},
		{NodeUserStats, "Get User Statistics", s.statsForm, s.userStats},
		{NodeRegisteredNum, "Get Number of Registered Users", nil, s.registeredNum},
		{NodeOnlineNum, "Get Number of Online Users", nil, s.onlineNum},
		{NodeOnlineList, "Get List of Online Users", s.onlineListForm, s.onlineList},
		{NodeAnnounce, "Send Announcement to Online Users", s.announceForm, s.announce},
		{NodeSetMOTD, "Set Message of the Day", s.motdForm(false), s.setMOTD},
		{NodeEditMOTD, "Edit Message of the Day", s.motdForm(true), s.setMOTD},
		{NodeDeleteMOTD, "Delete Message of the Day", nil, s.deleteMOTD},
	} {
		s.mux.restrictedCommand(c.node, c.name, s.IsAdmin, s.adminHandler(c))
	}
}

// adminHandler runs an adminCommand as XEP-0050 asks: the form first
// (status executing), then the result (completed). No state is kept
// between the stages: the submitted form says everything.
func (s *Server) adminHandler(c adminCommand) CommandHandler {
	return func(ctx context.Context, from jid.JID, cmd *xmlstream.Element) (*xmlstream.Element, error) {
		sid := cmd.Attr("sessionid")
		if sid == "" {
			var b [8]byte
			rand.Read(b[:])
			sid = hex.EncodeToString(b[:])
		}
		res := xmlstream.New(NSCommands, "command", "node", c.node, "sessionid", sid)
		switch cmd.Attr("action") {
		case "", "execute", "complete", "next":
		case "cancel":
			res.SetAttr("status", "canceled")
			return res, nil
		default:
			return nil, &stanza.Error{Type: "modify", Condition: "bad-request", Text: "actions here: execute, complete or cancel",
				App: xmlstream.New(NSCommands, "bad-action")}
		}
		x := cmd.Child(dataform.NS, "x")
		if x == nil && c.form != nil {
			f, err := c.form(ctx)
			if err != nil {
				return nil, err
			}
			res.SetAttr("status", "executing")
			res.Append(xmlstream.New(NSCommands, "actions", "execute", "complete").Append(xmlstream.New(NSCommands, "complete")))
			res.Append(f.Element())
			return res, nil
		}
		v := formValues{}
		if x != nil {
			switch x.Attr("type") {
			case "submit", "":
			case "cancel":
				res.SetAttr("status", "canceled")
				return res, nil
			default:
				return nil, badPayload("submit the command's form (type='submit')")
			}
			// Read the fields directly: clients often leave the types out
			// of a submitted form.
			for _, fl := range x.Elements() {
				if fl.Space != dataform.NS || fl.Name != "field" || fl.Attr("var") == "" {
					continue
				}
				for _, val := range fl.Elements() {
					if val.Space == dataform.NS && val.Name == "value" {
						v[fl.Attr("var")] = append(v[fl.Attr("var")], val.Text())
					}
				}
			}
		}
		msg, result, err := c.run(ctx, from, v)
		if err != nil {
			return nil, err
		}
		res.SetAttr("status", "completed")
		if result != nil {
			res.Append(result.Element())
		}
		if msg != "" {
			res.Append(xmlstream.New(NSCommands, "note", "type", "info").AppendText(msg))
		}
		return res, nil
	}
}

// badPayload is XEP-0050's error for a submission that lacks or botches
// what the command needs.
func badPayload(text string) error {
	return &stanza.Error{Type: "modify", Condition: "bad-request", Text: text, App: xmlstream.New(NSCommands, "bad-payload")}
}

// adminForm starts a form of the commands with its title and instructions.
func adminForm(title, instructions string) *dataform.Form {
	f := dataform.New("form", NSAdmin)
	f.Title = title
	f.Instructions = instructions
	return f
}

func accountsForm(title, instructions string) func(context.Context) (*dataform.Form, error) {
	return func(context.Context) (*dataform.Form, error) {
		f := adminForm(title, instructions)
		f.Fields = append(f.Fields, dataform.Field{Var: "accountjids", Type: "jid-multi", Label: "The Jabber ID(s)", Required: true})
		return f, nil
	}
}

// account checks a submitted address: an account of this server's domain.
// full allows a resource (the session of one device).
func (s *Server) account(typed string, full bool) (jid.JID, error) {
	typed = strings.TrimSpace(typed)
	if typed == "" {
		return jid.JID{}, badPayload("give the account's address (e.g. alice@" + s.Domain.Domain() + ")")
	}
	j, err := jid.Parse(typed)
	if err != nil || j.Local() == "" {
		return jid.JID{}, stanza.NewError("jid-malformed", fmt.Sprintf("%q is not an account address (e.g. alice@%s)", typed, s.Domain.Domain()))
	}
	if j.Domain() != s.Domain.Domain() {
		return jid.JID{}, stanza.NewError("not-acceptable", fmt.Sprintf("%s is not on this server's domain %s", typed, s.Domain.Domain()))
	}
	if !full && !j.IsBare() {
		return jid.JID{}, badPayload(fmt.Sprintf("%s names a resource; give the account %s", typed, j.BareString()))
	}
	return j, nil
}

// AdminAccount checks an address typed by an administrator (an XEP-0133
// form, the admin socket): an existing account of this server's domain,
// with a resource only if full. Errors are stanza errors with the reason
// (item-not-found for an unknown account).
func (s *Server) AdminAccount(ctx context.Context, typed string, full bool) (jid.JID, error) {
	return s.existing(ctx, typed, full)
}

// existing is account for an account that must exist.
func (s *Server) existing(ctx context.Context, typed string, full bool) (jid.JID, error) {
	j, err := s.account(typed, full)
	if err != nil {
		return j, err
	}
	ok, err := s.store.UserExists(ctx, j.Local())
	if err != nil {
		return j, err
	}
	if !ok {
		return j, stanza.NewError("item-not-found", "no user "+j.BareString())
	}
	return j, nil
}

// accounts reads the accountjids field: at least one, each existing.
func (s *Server) accounts(ctx context.Context, v formValues, full bool) ([]jid.JID, error) {
	var out []jid.JID
	for _, a := range v["accountjids"] {
		if strings.TrimSpace(a) == "" {
			continue
		}
		if len(out) >= maxAdminAccounts {
			return nil, stanza.NewError("not-acceptable", fmt.Sprintf("at most %d accounts at a time", maxAdminAccounts))
		}
		j, err := s.existing(ctx, a, full)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	if len(out) == 0 {
		return nil, badPayload("the field accountjids is missing: name at least one account")
	}
	return out, nil
}

func (s *Server) addUserForm(context.Context) (*dataform.Form, error) {
	f := adminForm("Adding a User", "Fill out this form to add a user.")
	f.Fields = append(f.Fields,
		dataform.Field{Var: "accountjid", Type: "jid-single", Label: "The Jabber ID for the account to be added", Required: true},
		dataform.Field{Var: "password", Type: "text-private", Label: "The password for this account", Required: true},
		dataform.Field{Var: "password-verify", Type: "text-private", Label: "Retype password", Required: true})
	return f, nil
}

// newCredentials derives the SCRAM credentials of a submitted password,
// checked against its retyped copy when the form has one.
func newCredentials(v formValues) ([]store.Credential, error) {
	pw := v.one("password")
	if pw == "" {
		return nil, badPayload("the field password is missing")
	}
	if vv, ok := v["password-verify"]; ok && (len(vv) == 0 || vv[0] != pw) {
		return nil, stanza.NewError("not-acceptable", "the passwords do not match")
	}
	creds, err := auth.NewCredentials(pw, auth.DefaultIterations)
	if err != nil {
		return nil, stanza.NewError("not-acceptable", "password not acceptable: "+err.Error())
	}
	return creds, nil
}

func (s *Server) addUser(ctx context.Context, admin jid.JID, v formValues) (string, *dataform.Form, error) {
	j, err := s.account(v.one("accountjid"), false)
	if err != nil {
		return "", nil, err
	}
	creds, err := newCredentials(v)
	if err != nil {
		return "", nil, err
	}
	if err := s.store.CreateUser(ctx, j.Local(), creds); errors.Is(err, store.ErrExists) {
		return "", nil, stanza.NewError("conflict", "user "+j.BareString()+" already exists")
	} else if err != nil {
		return "", nil, err
	}
	s.log.Info("admin: user added", "admin", admin.BareString(), "user", j.BareString())
	return "Created " + j.BareString() + ".", nil, nil
}

func (s *Server) deleteUsers(ctx context.Context, admin jid.JID, v formValues) (string, *dataform.Form, error) {
	js, err := s.accounts(ctx, v, false)
	if err != nil {
		return "", nil, err
	}
	var done []string
	for _, j := range js {
		if err := s.store.DeleteUser(ctx, j.Local()); err != nil && !errors.Is(err, store.ErrNotFound) {
			return "", nil, err
		}
		s.log.Info("admin: user deleted", "admin", admin.BareString(), "user", j.BareString())
		s.endAll(j, admin, "not-authorized", "account removed")
		done = append(done, j.BareString())
	}
	return "Deleted " + strings.Join(done, ", ") + ".", nil, nil
}

// endAll ends the sessions of a bare or full JID with a stream error and
// returns how many. The requester's own session ends only after its
// answer has gone out.
func (s *Server) endAll(j, admin jid.JID, condition, text string) int {
	n := 0
	for _, r := range s.Router.Resources(j.Bare()) {
		if !j.IsBare() && r.JID() != j {
			continue
		}
		n++
		if r.JID() == admin {
			go func() {
				time.Sleep(100 * time.Millisecond)
				r.Kick(condition, text)
			}()
			continue
		}
		r.Kick(condition, text)
	}
	return n
}

// disableUsers disables (off) or re-enables accounts. A disabled account
// cannot log in with a password mechanism (package c2s asks the store
// before any password check); its login tokens are revoked and its open
// sessions end. Re-enabled, its devices log in with the password.
func (s *Server) disableUsers(off bool) func(context.Context, jid.JID, formValues) (string, *dataform.Form, error) {
	return func(ctx context.Context, admin jid.JID, v formValues) (string, *dataform.Form, error) {
		js, err := s.accounts(ctx, v, false)
		if err != nil {
			return "", nil, err
		}
		var done []string
		for _, j := range js {
			if err := s.store.SetUserDisabled(ctx, j.Local(), off); errors.Is(err, store.ErrNotFound) {
				return "", nil, stanza.NewError("item-not-found", "no user "+j.BareString())
			} else if err != nil {
				return "", nil, err
			}
			done = append(done, j.BareString())
			if off {
				// Token logins (FAST) do not pass the c2s check of the
				// disabled mark: the tokens go, as the operator's revoke.
				if _, err := fast.Revoke(ctx, s.store, j.Local(), "", fast.RevokedByAdmin); err != nil {
					return "", nil, err
				}
				n := s.endAll(j, admin, "not-authorized", "account disabled")
				s.log.Info("admin: user disabled", "admin", admin.BareString(), "user", j.BareString(), "sessions", n)
			} else {
				s.log.Info("admin: user re-enabled", "admin", admin.BareString(), "user", j.BareString())
			}
		}
		if off {
			return "Disabled " + strings.Join(done, ", ") + ": no login until re-enabled; login tokens revoked.", nil, nil
		}
		return "Re-enabled " + strings.Join(done, ", ") + ".", nil, nil
	}
}

func (s *Server) passwordForm(context.Context) (*dataform.Form, error) {
	f := adminForm("Changing a User Password", "Fill out this form to change a user's password. The devices' login tokens are revoked; connected sessions stay.")
	f.Fields = append(f.Fields,
		dataform.Field{Var: "accountjid", Type: "jid-single", Label: "The Jabber ID for this account", Required: true},
		dataform.Field{Var: "password", Type: "text-private", Label: "The password for this account", Required: true})
	return f, nil
}

// changePassword does what `bluetick user passwd` does: new credentials,
// and the devices' FAST tokens, earned with the old password, revoked.
func (s *Server) changePassword(ctx context.Context, admin jid.JID, v formValues) (string, *dataform.Form, error) {
	j, err := s.existing(ctx, v.one("accountjid"), false)
	if err != nil {
		return "", nil, err
	}
	creds, err := newCredentials(v)
	if err != nil {
		return "", nil, err
	}
	if err := s.store.SetCredentials(ctx, j.Local(), creds); errors.Is(err, store.ErrNotFound) {
		return "", nil, stanza.NewError("item-not-found", "no user "+j.BareString())
	} else if err != nil {
		return "", nil, err
	}
	if err := fast.PasswordChanged(ctx, s.store, j.Local()); err != nil {
		s.log.Error("admin: password change: revoking login tokens", "user", j.BareString(), "err", err)
		return "", nil, err
	}
	s.log.Info("admin: password changed", "admin", admin.BareString(), "user", j.BareString())
	return "Password changed for " + j.BareString() + "; its devices' login tokens are revoked.", nil, nil
}

func (s *Server) endSessions(ctx context.Context, admin jid.JID, v formValues) (string, *dataform.Form, error) {
	js, err := s.accounts(ctx, v, true)
	if err != nil {
		return "", nil, err
	}
	n := 0
	for _, j := range js {
		n += s.EndSessions(j, admin.BareString(), admin, "")
	}
	return fmt.Sprintf("%d session(s) ended.", n), nil, nil
}

// EndSessions is the administrator's end of sessions (XEP-0133
// end-user-session, `bluetick user kick`): the sessions of an account
// (bare j) or one of its resources (full j), on every node of a cluster,
// end with the stream error policy-violation and the reason, and do not
// wait for a resumption. by names the administrator in the log; self is
// the session that asked (zero: none), which ends after its answer. It
// returns how many sessions it ended.
func (s *Server) EndSessions(j jid.JID, by string, self jid.JID, reason string) int {
	text := "session ended by an administrator"
	if reason != "" {
		text += ": " + reason
	}
	n := s.endAll(j, self, "policy-violation", text)
	s.log.Info("admin: sessions ended", "admin", by, "jid", j.String(), "sessions", n, "reason", reason)
	return n
}

func (s *Server) statsForm(context.Context) (*dataform.Form, error) {
	f := adminForm("Get User Statistics", "Fill out this form to gather user statistics.")
	f.Fields = append(f.Fields, dataform.Field{Var: "accountjid", Type: "jid-single", Label: "The Jabber ID for statistics", Required: true})
	return f, nil
}

// userStats answers with the account's roster size, online resources and
// the IP addresses of its sessions on this node.
func (s *Server) userStats(ctx context.Context, admin jid.JID, v formValues) (string, *dataform.Form, error) {
	j, err := s.existing(ctx, v.one("accountjid"), false)
	if err != nil {
		return "", nil, err
	}
	items, _, err := s.store.Roster(ctx, j.Local())
	if err != nil {
		return "", nil, err
	}
	roster := 0
	for _, it := range items {
		if it.InRoster {
			roster++
		}
	}
	var resources, addrs []string
	for _, r := range s.Router.Resources(j) {
		resources = append(resources, r.JID().String())
		if l, ok := r.(*session.Session); ok {
			if a := l.Remote(); a.IsValid() && !slices.Contains(addrs, a.String()) {
				addrs = append(addrs, a.String())
			}
		}
	}
	f := dataform.New("result", NSAdmin)
	f.Fields = append(f.Fields,
		dataform.Field{Var: "accountjid", Type: "jid-single", Label: "The Jabber ID", Values: []string{j.BareString()}},
		dataform.Field{Var: "rostersize", Type: "text-single", Label: "Roster size", Values: []string{strconv.Itoa(roster)}},
		dataform.Field{Var: "onlineresources", Type: "text-multi", Label: "Online resources", Values: resources},
		dataform.Field{Var: "ipaddresses", Type: "text-multi", Label: "IP addresses", Values: addrs})
	return "", f, nil
}

func (s *Server) registeredNum(ctx context.Context, admin jid.JID, v formValues) (string, *dataform.Form, error) {
	n, err := s.CountUsers(ctx)
	if err != nil {
		return "", nil, err
	}
	f := dataform.New("result", NSAdmin)
	f.Fields = append(f.Fields, dataform.Field{Var: "registeredusersnum", Type: "text-single", Label: "The number of registered users", Values: []string{strconv.Itoa(n)}})
	return "", f, nil
}

// CountUsers is the number of accounts (XEP-0133 get-registered-users-num,
// `bluetick status`).
func (s *Server) CountUsers(ctx context.Context) (int, error) {
	users, err := s.store.ListUsers(ctx)
	return len(users), err
}

// OnlineUsers lists the users with a session on this node, sorted
// (XEP-0133 get-online-users-list, `bluetick status`).
func (s *Server) OnlineUsers() []string {
	var out []string
	for _, u := range s.Router.LocalUsers() {
		out = append(out, u.String())
	}
	slices.Sort(out)
	return out
}

func (s *Server) onlineNum(ctx context.Context, admin jid.JID, v formValues) (string, *dataform.Form, error) {
	f := dataform.New("result", NSAdmin)
	f.Fields = append(f.Fields, dataform.Field{Var: "onlineusersnum", Type: "text-single", Label: "The number of online users", Values: []string{strconv.Itoa(len(s.OnlineUsers()))}})
	return "", f, nil
}

func (s *Server) onlineListForm(context.Context) (*dataform.Form, error) {
	f := adminForm("Requesting List of Online Users", "Fill out this form to request the online users of this service.")
	fl := dataform.Field{Var: "max_items", Type: "list-single", Label: "Maximum number of items to show", Values: []string{"100"}}
	for _, o := range []string{"25", "50", "75", "100", "150", "200", "none"} {
		fl.Options = append(fl.Options, dataform.Option{Label: o, Value: o})
	}
	f.Fields = append(f.Fields, fl)
	return f, nil
}

func (s *Server) onlineList(ctx context.Context, admin jid.JID, v formValues) (string, *dataform.Form, error) {
	users := s.OnlineUsers()
	total := len(users)
	if m := v.one("max_items"); m != "" && m != "none" {
		n, err := strconv.Atoi(m)
		if err != nil || n < 1 {
			return "", nil, badPayload("max_items is a number or none")
		}
		users = users[:min(n, len(users))]
	}
	f := dataform.New("result", NSAdmin)
	f.Fields = append(f.Fields, dataform.Field{Var: "onlineuserjids", Type: "text-multi", Label: "The list of all online users", Values: users})
	msg := ""
	if len(users) < total {
		msg = fmt.Sprintf("%d of %d online users shown.", len(users), total)
	}
	return msg, f, nil
}

func (s *Server) announceForm(context.Context) (*dataform.Form, error) {
	f := adminForm("Making an Announcement", "Fill out this form to make an announcement to all active users of this service.")
	f.Fields = append(f.Fields,
		dataform.Field{Var: "subject", Type: "text-single", Label: "Subject"},
		dataform.Field{Var: "announcement", Type: "text-multi", Label: "Announcement", Required: true})
	return f, nil
}

// announcement reads subject and body of the announce and motd forms.
func announcement(v formValues) (subject, body string, err error) {
	body = v.text("announcement")
	if body == "" {
		body = v.text("motd") // the field some clients send for the MOTD
	}
	subject = v.one("subject")
	return subject, body, checkAnnouncement(subject, body)
}

// checkAnnouncement refuses an empty or oversized announcement.
func checkAnnouncement(subject, body string) error {
	if strings.TrimSpace(body) == "" {
		return badPayload("the field announcement is missing: write the message")
	}
	if len(body)+len(subject) > maxAnnouncementSize {
		return stanza.NewError("not-acceptable", fmt.Sprintf("at most %d bytes", maxAnnouncementSize))
	}
	return nil
}

// serverMessage is a message from the server's domain to a session.
func (s *Server) serverMessage(to jid.JID, subject, body string) *xmlstream.Element {
	m := xmlstream.New(xmlstream.NSClient, "message", "from", s.Domain.String(), "to", to.String(), "id", NewID())
	if subject != "" {
		m.Append(xmlstream.New(xmlstream.NSClient, "subject").AppendText(subject))
	}
	return m.Append(xmlstream.New(xmlstream.NSClient, "body").AppendText(body))
}

func (s *Server) announce(ctx context.Context, admin jid.JID, v formValues) (string, *dataform.Form, error) {
	subject, body, err := announcement(v)
	if err != nil {
		return "", nil, err
	}
	n, err := s.Announce(admin.BareString(), subject, body)
	if err != nil {
		return "", nil, err
	}
	return fmt.Sprintf("Announcement sent to %d session(s).", n), nil, nil
}

// Announce sends a message from the server's domain to every available
// session on this node (XEP-0133 announce, `bluetick announce`) and
// returns how many got it. by names the administrator in the log.
func (s *Server) Announce(by, subject, body string) (int, error) {
	if err := checkAnnouncement(subject, body); err != nil {
		return 0, err
	}
	n := 0
	for _, u := range s.Router.LocalUsers() {
		for _, r := range s.Router.LocalResources(u) {
			if r.Available() && r.Send(s.serverMessage(r.JID(), subject, body)) == nil {
				n++
			}
		}
	}
	s.log.Info("admin: announcement sent", "admin", by, "sessions", n, "subject", subject)
	return n, nil
}

// motd is the message of the day, kept in the data directory and sent to
// each session at its first available presence.
type motd struct {
	path string
	mu   sync.Mutex
	// loaded: the file was read; cur is what it holds (nil: no MOTD).
	loaded bool
	cur    *motdText
}

type motdText struct {
	Subject string `json:"subject,omitempty"`
	Body    string `json:"body"`
}

// get returns the message of the day, or nil.
func (m *motd) get() (*motdText, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.path == "" {
		return nil, nil
	}
	if !m.loaded {
		b, err := os.ReadFile(m.path)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		if err == nil {
			var t motdText
			if err := json.Unmarshal(b, &t); err != nil {
				return nil, fmt.Errorf("%s: %w", m.path, err)
			}
			m.cur = &t
		}
		m.loaded = true
	}
	return m.cur, nil
}

// set replaces the message of the day (nil deletes it), on disk first.
func (m *motd) set(t *motdText) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t == nil {
		if err := os.Remove(m.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	} else {
		b, err := json.Marshal(t)
		if err != nil {
			return err
		}
		tmp := m.path + ".tmp"
		if err := os.WriteFile(tmp, b, 0o600); err != nil {
			return err
		}
		if err := os.Rename(tmp, m.path); err != nil {
			return err
		}
	}
	m.cur, m.loaded = t, true
	return nil
}

func (s *Server) motdForm(edit bool) func(context.Context) (*dataform.Form, error) {
	return func(context.Context) (*dataform.Form, error) {
		f := adminForm("Setting the Message of the Day", "Fill out this form to set the message of the day, sent to users when they log in.")
		subject := dataform.Field{Var: "subject", Type: "text-single", Label: "Subject"}
		body := dataform.Field{Var: "announcement", Type: "text-multi", Label: "Message of the day", Required: true}
		if edit {
			f.Title = "Editing the Message of the Day"
			cur, err := s.motd.get()
			if err != nil {
				return nil, err
			}
			if cur != nil {
				if cur.Subject != "" {
					subject.Values = []string{cur.Subject}
				}
				body.Values = strings.Split(cur.Body, "\n")
			}
		}
		f.Fields = append(f.Fields, subject, body)
		return f, nil
	}
}

func (s *Server) setMOTD(ctx context.Context, admin jid.JID, v formValues) (string, *dataform.Form, error) {
	subject, body, err := announcement(v)
	if err != nil {
		return "", nil, err
	}
	if err := s.motd.set(&motdText{Subject: subject, Body: body}); err != nil {
		return "", nil, err
	}
	s.log.Info("admin: message of the day set", "admin", admin.BareString(), "subject", subject, "bytes", len(body))
	return "The message of the day is set: users get it when they log in.", nil, nil
}

func (s *Server) deleteMOTD(ctx context.Context, admin jid.JID, v formValues) (string, *dataform.Form, error) {
	if err := s.motd.set(nil); err != nil {
		return "", nil, err
	}
	s.log.Info("admin: message of the day deleted", "admin", admin.BareString())
	return "The message of the day is deleted.", nil, nil
}

// sendMOTD sends the message of the day, if there is one, to a session
// at its first available presence.
func (s *Server) sendMOTD(sess *session.Session) {
	if s.motd.path == "" || !sess.FirstLogin() {
		return
	}
	t, err := s.motd.get()
	if err != nil {
		s.log.Error("message of the day", "err", err)
		return
	}
	if t != nil {
		_ = sess.Send(s.serverMessage(sess.JID(), t.Subject, t.Body))
	}
}
