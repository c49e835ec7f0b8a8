package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"bluetick/internal/adminsock"
	"bluetick/internal/config"
)

// The commands that act on a running server go through its admin socket
// (package adminsock); the account commands of user.go work on the store
// and need no server.

// adminCall sends one request to the server configured by cfg.
func adminCall(cfg config.Config, req adminsock.Request, out any) error {
	path := cfg.AdminSocket()
	if path == "" {
		return errors.New("the admin socket is off in this configuration (listen.admin = \"\"): set listen.admin (default \"admin.sock\") and restart the server")
	}
	err := adminsock.Call(context.Background(), path, req, out)
	if errors.Is(err, adminsock.ErrNoServer) {
		return fmt.Errorf("no server running with data directory %s (nothing listens on %s); start it with bluetick serve, or pass the running server's --config (or --data)", cfg.DataDir, path)
	}
	return err
}

// printJSON writes v indented, for --json.
func printJSON(w io.Writer, v any) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(v)
}

// statusCmd is `bluetick status`.
func statusCmd(args []string) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print the status as JSON")
	cfg, err := loadConfig(fs, args)
	if err != nil {
		return err
	}
	var st adminsock.Status
	if err := adminCall(cfg, adminsock.Request{Op: adminsock.OpStatus}, &st); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(os.Stdout, st)
	}
	printStatus(os.Stdout, st)
	return nil
}

func printStatus(w io.Writer, st adminsock.Status) {
	up := time.Duration(st.Uptime * float64(time.Second)).Round(time.Second)
	fmt.Fprintf(w, "bluetick %s serving %s, up %s (since %s)\n", st.Version, st.Domain, up, st.Started.UTC().Format("2006-01-02 15:04:05 MST"))
	here := "this server"
	if st.Node != "" {
		here = "this node (" + st.Node + ")"
		fmt.Fprintf(w, "cluster:          node %s of %d live: %s\n", st.Node, len(st.Nodes), strings.Join(st.Nodes, ", "))
	}
	fmt.Fprintf(w, "data directory:   %s (store: %s)\n", st.DataDir, st.Store)
	total := 0
	for _, n := range st.Sessions {
		total += n
	}
	fmt.Fprintf(w, "sessions:         %d on %s: tcp %d, tls %d, websocket %d, bosh %d, hibernated %d\n", total, here,
		st.Sessions["tcp"], st.Sessions["tls"], st.Sessions["websocket"], st.Sessions["bosh"], st.Sessions["none"])
	fmt.Fprintf(w, "online users:     %d on %s\n", st.OnlineUsers, here)
	fmt.Fprintf(w, "accounts:         %d\n", st.Accounts)
	if st.Node != "" {
		fmt.Fprintf(w, "rooms:            %d (%d live on this node, %d occupants)\n", st.Rooms, st.RoomsHere, st.Occupants)
	} else {
		fmt.Fprintf(w, "rooms:            %d (%d occupants)\n", st.Rooms, st.Occupants)
	}
	fmt.Fprintf(w, "memory:           %s live heap, %s from the OS, %d goroutines\n", mib(st.Memory.HeapAlloc), mib(st.Memory.Sys), st.Memory.Goroutines)
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// onlineCmd is `bluetick user list --online`: this node's sessions.
func onlineCmd(args []string) error {
	fs := flag.NewFlagSet("user list --online", flag.ContinueOnError)
	fs.Bool("online", true, "list the sessions online now (through the admin socket)")
	asJSON := fs.Bool("json", false, "print the sessions as JSON")
	cfg, err := loadConfig(fs, args)
	if err != nil {
		return err
	}
	var list adminsock.SessionList
	if err := adminCall(cfg, adminsock.Request{Op: adminsock.OpSessions}, &list); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(os.Stdout, list)
	}
	ss := list.Sessions
	if list.Node != "" {
		fmt.Printf("sessions on this node (%s) only: run the command on each node for the whole cluster\n", list.Node)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "JID\tTRANSPORT\tSTATE\tADDRESS\tSINCE")
	for _, s := range ss {
		addr := s.Addr
		if addr == "" {
			addr = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.JID, s.Transport, s.State, addr, s.Since.UTC().Format("2006-01-02 15:04:05 MST"))
	}
	tw.Flush()
	fmt.Printf("%d session(s)\n", len(ss))
	return nil
}

// kickCmd is `bluetick user kick NAME [--resource R] [--reason TEXT]`.
func kickCmd(args []string) error {
	fs := flag.NewFlagSet("user kick", flag.ContinueOnError)
	resource := fs.String("resource", "", "end only the session of this resource (device)")
	reason := fs.String("reason", "", "why, sent to the client with the stream error")
	name, cfg, err := loadNamed(fs, args)
	if err != nil {
		return err
	}
	if name == "" {
		return errors.New("user kick: whose sessions? (e.g. bluetick user kick alice@" + cfg.Domain + " [--resource phone])")
	}
	// A full address names the resource itself.
	if i := strings.IndexByte(name, '/'); i > 0 {
		if *resource != "" {
			return fmt.Errorf("user kick: %s names a resource already; leave out --resource", name)
		}
		name, *resource = name[:i], name[i+1:]
	}
	local, err := accountName(name, cfg.Domain)
	if err != nil {
		return err
	}
	target := local + "@" + cfg.Domain
	if *resource != "" {
		target += "/" + *resource
	}
	var n adminsock.Count
	if err := adminCall(cfg, adminsock.Request{Op: adminsock.OpKick, JID: target, Reason: *reason}, &n); err != nil {
		return err
	}
	where := "on this server"
	if n.Scope == "cluster" {
		where = "on every node of the cluster"
	}
	fmt.Printf("ended %d session(s) of %s %s (stream error policy-violation; no resumption)\n", n.N, target, where)
	return nil
}

// roomCmd is `bluetick room list|destroy`.
func roomCmd(args []string) error {
	if len(args) == 0 {
		return errors.New("room: say list or destroy (e.g. bluetick room list)")
	}
	switch args[0] {
	case "list":
		return roomListCmd(args[1:])
	case "destroy":
		return roomDestroyCmd(args[1:])
	}
	return fmt.Errorf("room: unknown subcommand %q (list or destroy)", args[0])
}

func roomListCmd(args []string) error {
	fs := flag.NewFlagSet("room list", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print the rooms as JSON")
	cfg, err := loadConfig(fs, args)
	if err != nil {
		return err
	}
	var list adminsock.RoomList
	if err := adminCall(cfg, adminsock.Request{Op: adminsock.OpRooms}, &list); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(os.Stdout, list)
	}
	rooms := list.Rooms
	sort.Slice(rooms, func(i, j int) bool { return rooms[i].JID < rooms[j].JID })
	cluster := list.Node != ""
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	if cluster {
		fmt.Fprintln(tw, "ROOM\tOCCUPANTS\tMEMBERS\tPERSISTENT\tNODE\tNAME")
	} else {
		fmt.Fprintln(tw, "ROOM\tOCCUPANTS\tMEMBERS\tPERSISTENT\tNAME")
	}
	for _, r := range rooms {
		occ := fmt.Sprint(r.Occupants)
		if !r.Here {
			occ = "-" // counted on the room's node
		}
		persistent := map[bool]string{true: "yes", false: "no"}[r.Persistent]
		if r.Locked {
			persistent = "(not configured yet)"
		}
		if cluster {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", r.JID, occ, r.Members, persistent, r.Node, r.Name)
		} else {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", r.JID, occ, r.Members, persistent, r.Name)
		}
	}
	tw.Flush()
	fmt.Printf("%d room(s)\n", len(rooms))
	if cluster {
		fmt.Printf("every room of the cluster; occupants are counted on each room's node (\"-\": not this node, %s; run the command there)\n", list.Node)
	}
	return nil
}

func roomDestroyCmd(args []string) error {
	fs := flag.NewFlagSet("room destroy", flag.ContinueOnError)
	reason := fs.String("reason", "", "why, shown to the occupants")
	room, cfg, err := loadNamed(fs, args)
	if err != nil {
		return err
	}
	if room == "" {
		return errors.New("room destroy: which room? (e.g. bluetick room destroy team@" + cfg.MUCDomain() + ")")
	}
	if !strings.Contains(room, "@") {
		room += "@" + cfg.MUCDomain() // the room's name alone
	}
	var n adminsock.Count
	if err := adminCall(cfg, adminsock.Request{Op: adminsock.OpDestroy, JID: room, Reason: *reason}, &n); err != nil {
		return err
	}
	if n.N < 0 {
		fmt.Printf("destroyed %s on its node %s, where its occupants were told; its members, archive and invites are deleted\n", room, n.Elsewhere)
	} else {
		fmt.Printf("destroyed %s: %d occupant(s) told; its members, archive and invites are deleted\n", room, n.N)
	}
	return nil
}

// announceCmd is `bluetick announce TEXT [--subject S]`.
func announceCmd(args []string) error {
	fs := flag.NewFlagSet("announce", flag.ContinueOnError)
	subject := fs.String("subject", "", "subject of the message")
	text, cfg, err := loadNamed(fs, args)
	if err != nil {
		return err
	}
	if strings.TrimSpace(text) == "" {
		return errors.New(`announce: what to say? (e.g. bluetick announce "maintenance at 22:00, back in 10 minutes")`)
	}
	var n adminsock.Count
	if err := adminCall(cfg, adminsock.Request{Op: adminsock.OpAnnounce, Subject: *subject, Text: text}, &n); err != nil {
		return err
	}
	if n.Node != "" {
		fmt.Printf("announcement sent to %d session(s) on this node (%s); run it on each node to reach the whole cluster\n", n.N, n.Node)
	} else {
		fmt.Printf("announcement sent to %d session(s)\n", n.N)
	}
	return nil
}
