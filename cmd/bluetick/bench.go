package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"bluetick/internal/loadgen"
)

const benchUsage = `bluetick bench — load generator for Bluetick, ejabberd, Prosody (any XMPP server)

Usage:
  bluetick bench --server HOST:PORT --scenario conns|chat|offline|storm|group|reconnect|register [flags]
  bluetick bench report [--base bluetick] [--md FILE] [--png FILE] [--json FILE] RESULT.json...

Scenarios (each bounded in count and by --duration):
  conns     open --conns sessions (SASL, bind, presence), hold them --hold, sample server RSS (memory/connection)
  chat      --pairs online pairs, each side sends --messages with XEP-0184 receipt requests, at most --window
            unreceipted (and at most --rate msg/s in all); delivered msg/s and send-to-receive latency
            percentiles; with --sm also the sender's ✓ (message to the server's XEP-0198 ack)
  offline   --offline-users receivers get --offline-messages each while offline, then log in; drain time
  storm     --storm users log in spread over --storm-window; logins/s and failures
  group     user1 creates a MUC room on --muc-service (instant room, then configured open and persistent),
            --group-members join it, --group-senders of them send --group-messages groupchat messages each
            (at most --window not yet reflected); deliveries/s, send-to-receive latency, lost, duplicates
  reconnect --reconnect-clients clients log in once, then each drops its TCP connection and reconnects
            --reconnects times (direct TLS by default: point --server at the XEP-0368 port, --c2s-tls);
            --reconnect-mode legacy (SASL SCRAM, stream restart, XEP-0198 <resume/>), sasl2 (one SASL2
            <authenticate/> with a FAST HT-SHA-256-NONE token and inline <resume/>), both (legacy, sasl2),
            full (a new session each time: SCRAM, bind, roster, presence) or all, side by side:
            reconnects/s, reconnect time p50/p99 (TCP connect to session usable), round trips per
            reconnect (TCP connect, TLS handshake, each XMPP wait), server CPU per reconnect (--pid)
  register  only register --register-count users in-band

`

func benchCmd(args []string) error {
	if len(args) > 0 && args[0] == "report" {
		return benchReport(args[1:])
	}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(os.Stderr, benchUsage); fs.PrintDefaults() }
	opt := &loadgen.Options{}
	cfg := &loadgen.Config{Opt: opt}
	fs.StringVar(&opt.Server, "server", "127.0.0.1:5222", "server host:port")
	fs.StringVar(&opt.Domain, "domain", "", "XMPP domain (default: the server host)")
	fs.StringVar(&opt.TLS, "tls", "starttls", "starttls (required), none, or direct (XEP-0368; the default of --scenario reconnect)")
	fs.StringVar(&opt.Transport, "transport", "tcp", "tcp, or websocket (RFC 7395; --server is then a ws:// or wss:// URL, or HOST:PORT of an HTTPS listener for wss://HOST:PORT/xmpp-websocket; TLS is wss, not STARTTLS)")
	fs.StringVar(&opt.Mech, "mech", "SCRAM-SHA-1", "SASL mechanism: SCRAM-SHA-1, SCRAM-SHA-256 or PLAIN")
	fs.StringVar(&opt.Resource, "resource", "bench", "resource to bind")
	fs.BoolVar(&opt.SM, "sm", false, "enable XEP-0198 stream management when offered")
	fs.DurationVar(&opt.Timeout, "step-timeout", 30*time.Second, "bound on each login step")
	curves := fs.String("tls-curves", "x25519", "TLS key exchanges offered: x25519, p256, x25519mlkem768, comma-separated, or default (Go's list)")
	sources := fs.String("sources", "", "comma-separated local source addresses, e.g. 127.0.0.1,127.0.0.2 (or 127.0.0.1-4)")
	fs.StringVar(&cfg.Label, "label", "", "name of the server in reports (default: the --server address)")
	fs.StringVar(&cfg.Users, "users", "user%d", "user name pattern with one %d")
	fs.IntVar(&cfg.First, "first", 1, "index of the first user")
	fs.StringVar(&cfg.Password, "password", "benchpass", "password of every user")
	fs.BoolVar(&cfg.Register, "register", false, "register the scenario's users in-band first (existing ones are skipped)")
	fs.IntVar(&cfg.RegisterN, "register-count", 0, "how many users to register (default: what the scenario uses)")
	fs.StringVar(&cfg.Scenario, "scenario", "conns", "conns, chat, offline, storm, group, reconnect or register")
	fs.StringVar(&cfg.SaltCache, "scram-cache", "", "file keeping SCRAM salted passwords between runs (as real clients cache them)")
	fs.BoolVar(&cfg.Warm, "warm", false, "after --register, log every user in once to fill --scram-cache")
	jsonOut := fs.String("json", "", "write the result as JSON to FILE")
	mdOut := fs.String("md", "", "write a markdown table to FILE")
	pngOut := fs.String("png", "", "write a PNG chart (throughput and server RSS over time) to FILE")
	fs.IntVar(&cfg.PID, "pid", 0, "server process id: RSS (summed over its process tree) and CPU are sampled from /proc")
	fs.DurationVar(&cfg.Duration, "duration", 5*time.Minute, "hard cap on the whole run")
	fs.IntVar(&cfg.Concurrency, "concurrency", 50, "logins in flight per process")
	fs.IntVar(&cfg.Procs, "procs", 1, "spread connections over N child processes (one process holds at most ~19,900 files here)")
	fs.IntVar(&cfg.Conns, "conns", 2000, "conns: sessions to open")
	fs.DurationVar(&cfg.Hold, "hold", 10*time.Second, "conns: how long to hold them idle")
	fs.IntVar(&cfg.Wake, "wake", 0, "conns: after the hold, time a message to N parked sessions and a second one to each, awake (wake_parked_p99 vs wake_active_p99)")
	fs.IntVar(&cfg.Pairs, "pairs", 50, "chat: online pairs")
	fs.IntVar(&cfg.Messages, "messages", 200, "chat: messages each side sends")
	fs.IntVar(&cfg.Window, "window", 10, "chat: unreceipted messages in flight per sender; group: own messages not yet reflected by the room")
	fs.IntVar(&cfg.Rate, "rate", 0, "chat: total messages per second over all senders (0: as fast as --window allows)")
	fs.IntVar(&cfg.BodySize, "body", 64, "message body size in bytes")
	fs.IntVar(&cfg.OfflineUsers, "offline-users", 100, "offline: receivers (as many senders)")
	fs.IntVar(&cfg.OfflineMessages, "offline-messages", 50, "offline: messages per receiver")
	fs.IntVar(&cfg.Storm, "storm", 1000, "storm: logins")
	fs.DurationVar(&cfg.StormWindow, "storm-window", 10*time.Second, "storm: window the logins are spread over")
	fs.IntVar(&cfg.GroupMembers, "group-members", 256, "group: members in the room (user 1 creates it)")
	fs.IntVar(&cfg.GroupSenders, "group-senders", 4, "group: members that send (the first S)")
	fs.IntVar(&cfg.GroupMessages, "group-messages", 200, "group: messages each sender sends")
	fs.StringVar(&cfg.MUCService, "muc-service", "", "group: MUC service domain (default groups.<domain>; conference.<domain> on ejabberd and Prosody)")
	fs.StringVar(&cfg.Room, "room", "", "group: room name (default bench-<run id>, a new room each run)")
	fs.IntVar(&cfg.ReconnectClients, "reconnect-clients", 1000, "reconnect: concurrent clients")
	fs.IntVar(&cfg.Reconnects, "reconnects", 5, "reconnect: drops and reconnects per client (after its first login)")
	fs.StringVar(&cfg.ReconnectMode, "reconnect-mode", "both", "reconnect: full, legacy, sasl2, both (legacy and sasl2) or all (one after the other, reported side by side)")
	fs.DurationVar(&cfg.ReconnectPause, "reconnect-pause", 0, "reconnect: wait between a drop and the reconnect (0: at once)")
	fs.BoolVar(&cfg.FastCount, "fast-count", false, "reconnect: sasl2 token logins send XEP-0484's replay counter <fast count=\"\"/> (the server then writes each login)")
	cpuProfile := fs.String("cpuprofile", "", "write the generator's CPU profile to FILE (single-process runs)")
	child := fs.String("child", "", "internal: shard i/n of a multi-process run")
	t0 := fs.Int64("t0", 0, "internal: start of the run, unix nanoseconds")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("bench: unexpected argument %q (flags start with --)", fs.Arg(0))
	}
	if cfg.Scenario == "reconnect" && !flagSet(fs, "tls") {
		opt.TLS = "direct" // the scenario measures reconnects over direct TLS (XEP-0368)
	}
	switch opt.Transport {
	case "tcp", "":
	case "websocket":
		if opt.TLS == "starttls" {
			opt.TLS = "direct" // wss: TLS comes with the connection
		}
	default:
		return fmt.Errorf("bench: unknown --transport %q (use tcp or websocket)", opt.Transport)
	}
	ips, err := parseSources(*sources)
	if err != nil {
		return err
	}
	opt.Sources = ips
	if opt.Curves, err = loadgen.ParseCurves(*curves); err != nil {
		return err
	}
	if cfg.Label == "" {
		cfg.Label = opt.Server
	}
	if *t0 != 0 {
		cfg.T0 = time.Unix(0, *t0)
	}
	if *child != "" {
		if _, err := fmt.Sscanf(*child, "%d/%d", &cfg.Shard, &cfg.Shards); err != nil || cfg.Shards < 1 {
			return fmt.Errorf("bench: bad --child %q", *child)
		}
		cfg.Procs = 1
		return loadgen.RunChild(cfg)
	}
	cfg.Args = args
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := loadgen.Run(ctx, cfg, os.Stderr)
	if res != nil {
		fmt.Print(res.Markdown())
		if *jsonOut != "" {
			if werr := res.WriteJSON(*jsonOut); werr != nil {
				return werr
			}
		}
		if *mdOut != "" {
			if werr := os.WriteFile(*mdOut, []byte(res.Markdown()), 0o644); werr != nil {
				return werr
			}
		}
		if *pngOut != "" {
			if werr := loadgen.RunChart(res, *pngOut); werr != nil {
				return werr
			}
		}
	}
	return err
}

// flagSet reports whether the flag was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// parseSources reads "127.0.0.1,127.0.0.2" or the range form "127.0.0.1-4".
func parseSources(s string) ([]net.IP, error) {
	var out []net.IP
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if i := strings.LastIndexByte(part, '-'); i > 0 {
			base := net.ParseIP(part[:i]).To4()
			last, err := strconv.Atoi(part[i+1:])
			if base == nil || err != nil || last < int(base[3]) || last > 255 {
				return nil, fmt.Errorf("bench: bad --sources range %q (use e.g. 127.0.0.1-4)", part)
			}
			for n := int(base[3]); n <= last; n++ {
				ip := net.IPv4(base[0], base[1], base[2], byte(n))
				out = append(out, ip)
			}
			continue
		}
		ip := net.ParseIP(part)
		if ip == nil {
			return nil, fmt.Errorf("bench: bad --sources address %q", part)
		}
		out = append(out, ip)
	}
	return out, nil
}

func benchReport(args []string) error {
	fs := flag.NewFlagSet("bench report", flag.ContinueOnError)
	base := fs.String("base", "bluetick", "label whose ratios to the others are reported")
	mdOut := fs.String("md", "", "write the comparison table to FILE (default stdout)")
	pngOut := fs.String("png", "", "write the ratio chart to FILE")
	jsonOut := fs.String("json", "", "write the combined results to FILE")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("bench report: give result JSON files")
	}
	var rs []*loadgen.Result
	for _, p := range fs.Args() {
		r, err := loadgen.ReadResult(p)
		if err != nil {
			return err
		}
		rs = append(rs, r)
	}
	rep := loadgen.NewReport(rs, *base)
	md := rep.Markdown()
	if *mdOut != "" {
		if err := os.WriteFile(*mdOut, []byte(md), 0o644); err != nil {
			return err
		}
	}
	fmt.Print(md)
	if *pngOut != "" {
		if err := rep.Chart(*pngOut); err != nil {
			return err
		}
	}
	if *jsonOut != "" {
		if err := rep.WriteJSON(*jsonOut); err != nil {
			return err
		}
	}
	return nil
}
