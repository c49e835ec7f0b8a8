package main

import (
	"context"
	"errors"
	"runtime"
	"time"

	"bluetick/internal/adminsock"
	"bluetick/internal/c2s"
	"bluetick/internal/cluster"
	"bluetick/internal/config"
	"bluetick/internal/jid"
	"bluetick/internal/muc"
	"bluetick/internal/server"
	"bluetick/internal/stanza"
)

// adminBackend answers the admin socket with the same server functions
// the XEP-0133 commands use (server.EndSessions, Announce, CountUsers,
// OnlineUsers) and the group chat service's own (muc.Rooms, Destroy).
type adminBackend struct {
	cfg     config.Config
	im      *server.Server
	svc     *c2s.Service
	groups  *muc.Service  // nil: group chat disabled
	node    *cluster.Node // nil: a single node
	started time.Time
}

// scope is what a command acting on every node reports.
func (b *adminBackend) scope() string {
	if b.node != nil {
		return "cluster"
	}
	return "node"
}

func (b *adminBackend) Status(ctx context.Context) (adminsock.Status, error) {
	st := adminsock.Status{
		Version: version(), Domain: b.cfg.Domain, DataDir: b.cfg.DataDir, Store: "sqlite",
		Started: b.started, Uptime: time.Since(b.started).Seconds(),
		Sessions:    map[string]int{"tcp": 0, "tls": 0, "websocket": 0, "bosh": 0, "none": 0},
		OnlineUsers: len(b.im.OnlineUsers()),
	}
	if b.cfg.Store != "" {
		st.Store = "postgres"
	}
	for _, s := range b.svc.Sessions() {
		st.Sessions[s.Transport]++
	}
	var err error
	if st.Accounts, err = b.im.CountUsers(ctx); err != nil {
		return st, err
	}
	if b.groups != nil {
		rooms, err := b.groups.Rooms(ctx)
		if err != nil {
			return st, err
		}
		st.Rooms = len(rooms)
		for _, r := range rooms {
			if r.Here {
				st.RoomsHere++
				st.Occupants += r.Occupants
			}
		}
	}
	if b.node != nil {
		st.Node, st.Nodes = b.node.ID(), b.node.Nodes()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	st.Memory = adminsock.Memory{HeapAlloc: ms.HeapAlloc, HeapSys: ms.HeapSys, Sys: ms.Sys, Goroutines: runtime.NumGoroutine()}
	return st, nil
}

// nodeName is this node's name in a cluster, "" alone.
func (b *adminBackend) nodeName() string {
	if b.node != nil {
		return b.node.ID()
	}
	return ""
}

func (b *adminBackend) Sessions(ctx context.Context) (adminsock.SessionList, error) {
	out := adminsock.SessionList{Node: b.nodeName(), Sessions: []adminsock.Session{}}
	for _, s := range b.svc.Sessions() {
		as := adminsock.Session{JID: s.JID.String(), Transport: s.Transport, State: s.State, Since: s.Since.UTC()}
		if s.Remote.IsValid() {
			as.Addr = s.Remote.String()
		}
		out.Sessions = append(out.Sessions, as)
	}
	return out, nil
}

func (b *adminBackend) Kick(ctx context.Context, typed, reason string) (adminsock.Count, error) {
	j, err := b.im.AdminAccount(ctx, typed, true)
	if err != nil {
		return adminsock.Count{}, adminError(err)
	}
	n := b.im.EndSessions(j, "admin socket", jid.JID{}, reason)
	if n == 0 {
		return adminsock.Count{}, adminsock.Errorf(adminsock.CodeNotFound, "%s has no session online", j)
	}
	return adminsock.Count{N: n, Scope: b.scope(), Node: b.nodeName()}, nil
}

func (b *adminBackend) Rooms(ctx context.Context) (adminsock.RoomList, error) {
	out := adminsock.RoomList{Node: b.nodeName(), Rooms: []adminsock.Room{}}
	if b.groups == nil {
		return out, errNoGroups
	}
	rooms, err := b.groups.Rooms(ctx)
	if err != nil {
		return out, err
	}
	for _, r := range rooms {
		ar := adminsock.Room{JID: r.JID.String(), Name: r.Name, Persistent: r.Persistent, Locked: r.Locked,
			Members: r.Members, Occupants: r.Occupants, Here: r.Here, Created: r.Created.UTC()}
		if b.node != nil {
			ar.Node = b.node.RoomHome(r.JID)
		}
		out.Rooms = append(out.Rooms, ar)
	}
	return out, nil
}

var errNoGroups = adminsock.Errorf(adminsock.CodeNotFound, "group chat is off on this server (muc.enabled = false)")

func (b *adminBackend) Destroy(ctx context.Context, typed, reason string) (adminsock.Count, error) {
	if b.groups == nil {
		return adminsock.Count{}, errNoGroups
	}
	room, err := jid.Parse(typed)
	if err != nil {
		return adminsock.Count{}, adminsock.Errorf(adminsock.CodeBadRequest, "%q is not a room address (e.g. team@%s)", typed, b.cfg.MUCDomain())
	}
	n, err := b.groups.Destroy(ctx, room, reason)
	if errors.Is(err, muc.ErrNotHere) {
		return adminsock.Count{}, adminsock.Errorf(adminsock.CodeElsewhere, "%s lives on another node: run bluetick room destroy there", room)
	}
	if err != nil {
		return adminsock.Count{}, adminError(err)
	}
	c := adminsock.Count{N: n, Scope: b.scope(), Node: b.nodeName()}
	if n < 0 && b.node != nil {
		c.Elsewhere = b.node.RoomHome(room)
	}
	return c, nil
}

func (b *adminBackend) Announce(ctx context.Context, subject, text string) (adminsock.Count, error) {
	n, err := b.im.Announce("admin socket", subject, text)
	if err != nil {
		return adminsock.Count{}, adminError(err)
	}
	return adminsock.Count{N: n, Scope: "node", Node: b.nodeName()}, nil
}

// adminError turns the stanza errors of the shared admin functions into
// the socket's codes, keeping their text (which says what to fix).
func adminError(err error) error {
	var se *stanza.Error
	if !errors.As(err, &se) {
		return err
	}
	code := adminsock.CodeBadRequest
	switch se.Condition {
	case "item-not-found":
		code = adminsock.CodeNotFound
	case "internal-server-error", "service-unavailable", "resource-constraint":
		code = adminsock.CodeInternal
	}
	msg := se.Text
	if msg == "" {
		msg = se.Condition
	}
	return &adminsock.Error{Code: code, Message: msg}
}
