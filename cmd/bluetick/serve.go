package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"bluetick/internal/adminsock"
	"bluetick/internal/admission"
	"bluetick/internal/backup"
	"bluetick/internal/c2s"
	"bluetick/internal/certs"
	"bluetick/internal/cluster"
	"bluetick/internal/component"
	"bluetick/internal/config"
	"bluetick/internal/gctune"
	"bluetick/internal/hostmeta"
	stanzametrics "bluetick/internal/metrics"
	"bluetick/internal/muc"
	"bluetick/internal/server"
	"bluetick/internal/store"
	"bluetick/internal/store/postgres"
	"bluetick/internal/store/sqlite"
	"bluetick/internal/store/timed"
	"bluetick/internal/turn"
	"bluetick/internal/webapp"
)

// loadConfig parses the common flags and the config file; flags override
// the file, which overrides the defaults.
func loadConfig(fs *flag.FlagSet, args []string) (config.Config, error) {
	path := fs.String("config", "", "TOML config file (see docs/configuration.md)")
	domain := fs.String("domain", "", "XMPP domain (default localhost)")
	data := fs.String("data", "", "data directory (default ./bluetick-data)")
	c2sAddr := fs.String("c2s", "", "client STARTTLS listener, host:port (default :5222; \"off\" disables)")
	tlsAddr := fs.String("c2s-tls", "", "client direct-TLS listener (default :5223; \"off\" disables)")
	httpAddr := fs.String("http", "", "HTTP listener for WebSocket, /healthz and file upload (default :5280; \"off\" disables)")
	reg := fs.String("registration", "", "in-band registration: closed or open")
	starttls := fs.String("require-starttls", "", "auto, always or never")
	storeURL := fs.String("store", "", "storage: empty for SQLite in the data directory, or postgres://...")
	natsURL := fs.String("nats", "", "cluster mode: NATS URL(s) with JetStream")
	node := fs.String("node", "", "cluster mode: this node's unique name")
	archive := fs.String("archive", "", "message archive (XEP-0313): none (default, no server history) or archive")
	adminSock := fs.String("admin-socket", "", "admin socket path, relative to the data directory (default admin.sock; \"off\" disables)")
	if err := fs.Parse(args); err != nil {
		return config.Config{}, err
	}
	if fs.NArg() > 0 && fs.Name() == "serve" {
		return config.Config{}, fmt.Errorf("unexpected argument %q (flags start with --)", fs.Arg(0))
	}
	c, err := config.Load(*path)
	if err != nil {
		return c, err
	}
	set := func(dst *string, v string) {
		if v == "off" {
			*dst = ""
		} else if v != "" {
			*dst = v
		}
	}
	set(&c.Domain, *domain)
	set(&c.DataDir, *data)
	set(&c.Listen.C2S, *c2sAddr)
	set(&c.Listen.C2STLS, *tlsAddr)
	set(&c.Listen.HTTP, *httpAddr)
	set(&c.Registration, *reg)
	set(&c.TLS.RequireSTARTTLS, *starttls)
	set(&c.Store, *storeURL)
	set(&c.Cluster.NATS, *natsURL)
	set(&c.Cluster.Node, *node)
	set(&c.Archive.Mode, *archive)
	set(&c.Listen.Admin, *adminSock)
	return c, c.Validate()
}

// raiseFileLimit lifts the soft open-files limit to the hard one: every
// client is a file descriptor.
func raiseFileLimit() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

func serve(args []string) error {
	started := time.Now()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	pprofOn := fs.Bool("pprof", false, "serve Go profiles at /debug/pprof/ on the HTTP listener (for benchmarks; do not expose)")
	cfg, err := loadConfig(fs, args)
	if err != nil {
		return err
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level %q: use debug, info, warn or error", *logLevel)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
	raiseFileLimit()
	defer gctune.Start(uint64(cfg.Limits.GCHeadroomMB)<<20, time.Second)()

	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data_dir %s: %v", cfg.DataDir, err)
	}
	if cfg.Store == "" {
		// One process at a time on a SQLite data directory: a second
		// server would share its journal's log, and a restore must not
		// swap the database under a running one.
		unlock, err := backup.Lock(cfg.DataDir)
		if err != nil {
			return fmt.Errorf("%v; stop it first, or give this server its own --data", err)
		}
		defer unlock()
	}
	raw, err := openStore(cfg)
	if err != nil {
		return err
	}
	backend := "sqlite"
	if cfg.Store != "" {
		backend = "postgres"
	}
	st := timed.New(raw, backend) // every store call timed for /metrics
	defer st.Close()
	certFiles, err := certs.OpenFiles(cfg.TLS.CertFile, cfg.TLS.KeyFile, cfg.DataDir, cfg.Domain)
	if err != nil {
		return err
	}
	tlsConf := certFiles.TLSConfig()
	var acme *certs.ACME
	if cfg.TLS.ACME {
		// The self-signed certificate stands in until the first one is
		// obtained (Start, once the HTTP listener answers challenges).
		acme, err = certs.NewACME(certs.ACMEOptions{
			Names: cfg.ACMENames(), Email: cfg.TLS.ACMEEmail, CA: cfg.TLS.ACMECA, CARoot: cfg.TLS.ACMECARoot,
			Storage: cfg.ACMEStorageDir(), HTTPListen: cfg.Listen.HTTP, RenewCheck: cfg.TLS.ACMERenewCheck.Duration,
			Fallback: certFiles, Log: log,
		})
		if err != nil {
			return err
		}
		defer acme.Stop()
		tlsConf = acme.TLSConfig()
		certFiles = nil
	}
	server.Version = version()
	im := server.New(cfg, st, log)
	if cfg.Store == "" && cfg.DurableDelivery() {
		// Single node: messages for live sessions are kept in a log until
		// acked (offline/segments.go); what a crash left there moves to
		// the store now, before any client connects.
		if err := im.Offline.UseLog(context.Background(), filepath.Join(cfg.DataDir, "journal")); err != nil {
			return err
		}
	}
	turnServer, err := startTURN(cfg, im, log)
	if err != nil {
		return err
	}
	if turnServer != nil {
		defer turnServer.Close()
	}
	var groups *muc.Service
	if cfg.MUC.Enabled {
		groups, err = muc.New(context.Background(), cfg.MUCDomain(), cfg.MUC, st, im, log)
		if err != nil {
			return fmt.Errorf("group chat service: %v", err)
		}
		im.RegisterService(cfg.MUCDomain(), "Groups", groups)
	}
	components := component.New(cfg, im, log)
	svc := c2s.New(cfg, im, tlsConf, log)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go reloadOnHUP(ctx, certFiles, log)
	up, err := newUpload(ctx, cfg, im, log)
	if err != nil {
		return err
	}
	var clusterNode *cluster.Node
	if cfg.Cluster.NATS != "" {
		url := cfg.Cluster.NATS
		if url == "embedded" {
			u, stopNATS, err := cluster.StartEmbedded(cluster.Embedded{
				Listen: cfg.Cluster.EmbeddedListen, ClusterListen: cfg.Cluster.EmbeddedClusterListen,
				Routes: cfg.Cluster.EmbeddedRoutes, StoreDir: filepath.Join(cfg.DataDir, "nats"), Name: cfg.Cluster.Node,
			})
			if err != nil {
				return err
			}
			defer stopNATS()
			url = u
		}
		clusterNode, err = cluster.Start(ctx, cluster.Config{NATS: url, Node: cfg.Cluster.Node, Gone: im.RemoteGone, HandOver: svc.HandOver}, im.Router, log)
		if err != nil {
			return err
		}
		defer clusterNode.Close()
		svc.SetRemote(clusterNode)
		if groups != nil {
			// Each room lives on one node; the others forward to it.
			if err := clusterNode.ServeRooms(groups.HandleLocal); err != nil {
				return err
			}
			groups.Home, groups.Forward = clusterNode.IsRoomHome, clusterNode.ForwardRoom
		}
	}
	go im.Offline.Sweep(ctx, cfg.Offline.Expiry.Duration, time.Hour)
	if a := im.Archive(); a != nil { // mam branch
		go a.Sweep(ctx, cfg.Archive.Retention.Duration, time.Hour)
	}
	if groups != nil {
		go groups.Expire(ctx, time.Hour)
		go groups.EvictIdle(ctx, time.Minute, 10*time.Minute)
	}

	var listeners []net.Listener
	listen := func(addr string) (net.Listener, error) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("listen %s: %v (is another server on that port? change it with a flag or the config)", addr, err)
		}
		listeners = append(listeners, ln)
		return ln, nil
	}
	// Every feature registers on the server before a listener opens: disco
	// answers and the caps hash in the stream features are computed from
	// what is registered.
	mux := http.NewServeMux()
	mets := newMetrics(svc.Gate(), svc.LoginMetrics())
	mets.add(svc.Collectors()...)
	mets.add(stanzametrics.StanzaCollectors()...)
	mets.add(im.Offline.Collectors()...)
	mets.add(st.Collector())
	if clusterNode != nil {
		mets.add(clusterNode.Collectors()...)
	}
	if groups != nil {
		mets.add(groups.Collectors()...)
	}
	mets.add(svc.Shaper.Collectors()...)
	mets.add(im.Collectors()...)
	tokens := startFast(ctx, cfg, st, im, log)
	mets.add(tokens.Metrics.Collectors()...)
	svc.EnableFAST(tokens)
	stopPush, err := startPush(cfg, im, groups, mets, log)
	if err != nil {
		return err
	}
	defer stopPush()
	errc := make(chan error, 5)
	if cfg.Listen.C2S != "" {
		ln, err := listen(cfg.Listen.C2S)
		if err != nil {
			return err
		}
		go func() { errc <- svc.ServeTCP(ln, false) }()
	}
	if cfg.Listen.C2STLS != "" {
		ln, err := listen(cfg.Listen.C2STLS)
		if err != nil {
			return err
		}
		go func() { errc <- svc.ServeTCP(ln, true) }()
	}
	if len(cfg.Components) > 0 {
		ln, err := listen(cfg.Listen.Component)
		if err != nil {
			return err
		}
		go func() { errc <- components.Serve(ln) }()
	}
	if acme != nil {
		// HTTP-01: the CA fetches /.well-known/acme-challenge/<token>
		// from port 80 of each name.
		mux.HandleFunc("/.well-known/acme-challenge/", func(w http.ResponseWriter, r *http.Request) {
			if !acme.HandleHTTPChallenge(w, r) {
				http.NotFound(w, r)
			}
		})
	}
	mux.Handle("/xmpp-websocket", svc.WebSocketHandler())
	mux.Handle("/http-bind", svc.BOSHHandler())
	hm := hostmeta.Handler(cfg.Listen.PublicURL, "/xmpp-websocket", "/http-bind")
	mux.Handle("/.well-known/host-meta", hm)
	mux.Handle("/.well-known/host-meta.json", hm)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, "{\"status\":\"ok\",\"connections\":%d,\"sessions\":%d}\n", svc.Active(), im.Router.Count())
	})
	// Readiness: the store answers and, in a cluster, NATS is connected;
	// a balancer checking it stops sending clients to a node that could
	// not serve them.
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		rctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if _, err := st.UserExists(rctx, "readiness-probe"); err != nil {
			http.Error(w, "store unavailable: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		if clusterNode != nil && !clusterNode.Connected() {
			http.Error(w, "NATS unavailable", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	if up != nil {
		mux.Handle("/upload/", up.Handler())
		mets.add(up.Collectors()...)
		go up.Sweep(ctx, 10*time.Minute)
	}
	if cfg.Web.Enabled {
		// Bluetick Web (docs/web.md): the catch-all, so every endpoint
		// above keeps its path.
		// The upload origin goes into the app's CSP (S3 or a media domain
		// is another origin than the page's).
		wo := webapp.Options{Dir: cfg.Web.Dir, Domain: cfg.Domain}
		if up != nil {
			wo.UploadURL = cfg.UploadBaseURL()
		}
		mux.Handle("/", webapp.Handler(wo))
	}
	if *pprofOn {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	}
	var servers []*http.Server
	for _, hl := range []struct {
		addr string
		tls  bool
	}{{cfg.Listen.HTTP, false}, {cfg.Listen.HTTPTLS, true}} {
		if hl.addr == "" {
			continue
		}
		ln, err := listen(hl.addr)
		if err != nil {
			return err
		}
		name := "http"
		if hl.tls {
			name = "https"
		}
		ln = svc.Gate().Listener(ln, name, true)
		hs := admission.Server(mux, cfg.Limits, log)
		servers = append(servers, hs)
		if hl.tls {
			hs.TLSConfig = tlsConf.Clone()
			hs.TLSConfig.NextProtos = []string{"http/1.1"}
			go func() { errc <- hs.ServeTLS(ln, "", "") }()
		} else {
			go func() { errc <- hs.Serve(ln) }()
		}
	}
	if cfg.Listen.Metrics != "" {
		// Not fatal: a second server on the same host (a test, a
		// cluster node) serves without metrics rather than not at all.
		if ln, err := listen(cfg.Listen.Metrics); err != nil {
			log.Warn("metrics not served (set listen.metrics to a free address, or \"\" to turn this off)", "err", err)
		} else {
			ms := mets.server(log)
			servers = append(servers, ms)
			go func() { errc <- ms.Serve(ln) }()
		}
	}
	if acme != nil {
		if err := acme.Start(ctx); err != nil {
			return fmt.Errorf("tls.acme: %v", err)
		}
	}
	if path := cfg.AdminSocket(); path != "" {
		// Fatal like a port in use: the operator's tools expect it.
		as, err := adminsock.Listen(path, &adminBackend{cfg: cfg, im: im, svc: svc, groups: groups, node: clusterNode, started: started}, log)
		if err != nil {
			return err
		}
		defer as.Close()
	}
	log.Info("bluetick started", "version", version(), "domain", cfg.Domain, "data", cfg.DataDir,
		"c2s", cfg.Listen.C2S, "c2s_tls", cfg.Listen.C2STLS, "http", cfg.Listen.HTTP, "admin_socket", cfg.AdminSocket())

	select {
	case <-ctx.Done():
	case err := <-errc:
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("listener failed", "err", err)
		}
	}
	log.Info("shutting down")
	for _, ln := range listeners {
		ln.Close()
	}
	// Order matters: no new clients, then every session ends (and stores
	// what it holds), then the journal writes what is queued, and only
	// then do the deferred closes of the cluster link and the store run.
	for _, hs := range servers {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		hs.Shutdown(sctx)
		cancel()
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	svc.Shutdown(sctx)
	cancel()
	im.Offline.Close()
	js := im.Offline.Stats()
	log.Info("stopped: every session ended and its messages stored",
		"journal_batches", js.Batches.Load(), "journal_inserted", js.Inserted.Load(), "journal_logged", js.Logged.Load(),
		"journal_spilled", js.Spilled.Load(), "journal_skipped_acked_first", js.Skipped.Load(),
		"journal_deletes", js.Deleted.Load(), "journal_failed_batches", js.Failed.Load(), "journal_busy", time.Duration(js.Busy.Load()).Round(time.Millisecond))
	return nil
}

// reloadOnHUP reads the certificate files again on every SIGHUP: new
// connections get the new certificate, established ones keep theirs. A
// file that does not load is logged and the old certificate stays. With
// ACME (f nil) there is nothing to read, and the signal only logs.
func reloadOnHUP(ctx context.Context, f *certs.Files, log *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		if f == nil {
			log.Info("SIGHUP: certificates come from ACME (tls.acme) and renew themselves; nothing to reload")
			continue
		}
		if err := f.Reload(); err != nil {
			log.Error("SIGHUP: certificate not reloaded, still serving the old one", "err", err,
				"subject", f.Leaf().Subject.String(), "not_after", f.Leaf().NotAfter)
			continue
		}
		log.Info("SIGHUP: certificate reloaded", "subject", f.Leaf().Subject.String(),
			"serial", f.Leaf().SerialNumber.Text(16), "not_after", f.Leaf().NotAfter)
	}
}

// startTURN starts the built-in STUN/TURN server (unless turn.external) and
// registers XEP-0215 on the IM core; with TURN disabled it does nothing and
// nothing is advertised.
func startTURN(cfg config.Config, im *server.Server, log *slog.Logger) (*turn.Server, error) {
	if !cfg.TURN.Enabled {
		return nil, nil
	}
	secret := cfg.TURN.Secret
	if secret == "" {
		var err error
		if secret, err = turn.LoadOrCreateSecret(cfg.DataDir); err != nil {
			return nil, err
		}
	}
	var ts *turn.Server
	if !cfg.TURN.External {
		realm := cfg.TURN.Realm
		if realm == "" {
			realm = cfg.Domain
		}
		var err error
		if ts, err = turn.Start(cfg.TURN, realm, secret, log); err != nil {
			return nil, err
		}
		log.Info("turn started", "listen", cfg.TURN.Listen, "transports", cfg.TURN.Transports,
			"relay_ports", fmt.Sprintf("%d-%d", cfg.TURN.RelayMinPort, cfg.TURN.RelayMaxPort))
	}
	turn.NewDirectory(cfg, secret, ts).Register(im.Mux())
	return ts, nil
}

// openStore opens the configured store: SQLite in the data directory, or
// PostgreSQL.
func openStore(cfg config.Config) (store.Store, error) {
	if cfg.Store == "" {
		st, err := sqlite.Open(cfg.DBPath())
		if err != nil {
			return nil, fmt.Errorf("opening %s: %v", cfg.DBPath(), err)
		}
		return st, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := postgres.Open(ctx, cfg.Store, postgres.Options{MaxConns: int32(cfg.PostgresMaxConns)})
	if err != nil {
		return nil, fmt.Errorf("store: %v (check the store URL and that PostgreSQL is running)", err)
	}
	return st, nil
}
