package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"

	"bluetick/internal/backup"
	"bluetick/internal/config"
	"bluetick/internal/portable"
	"bluetick/internal/store"
	"bluetick/internal/store/sqlite"
)

// portableLock keeps a server from running on the data directory while
// export or import does (single node: the lock a server holds). With
// PostgreSQL there is no such lock: the operator stops the nodes.
func portableLock(what string, cfg config.Config) (func(), error) {
	if cfg.Store != "" {
		fmt.Fprintf(os.Stderr, "%s: the store is PostgreSQL: stop every node first (nothing here can tell whether one runs);\n"+
			"  a running node would not see the changes in its sessions' rosters until they log in again\n", what)
		return func() {}, nil
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, err
	}
	unlock, err := backup.Lock(cfg.DataDir)
	if errors.Is(err, backup.ErrRunning) {
		hint := "stop the server first (systemctl stop bluetick), then " + what
		if what == "export" {
			hint += "; or export a copy: bluetick backup /tmp/b.tar && bluetick restore /tmp/b.tar --data /tmp/copy && bluetick export --data /tmp/copy FILE"
		}
		return nil, fmt.Errorf("%s: refused: %v; %s", what, err, hint)
	}
	return unlock, err
}

// exportCmd is `bluetick export FILE|DIR`: the whole server in XEP-0227.
func exportCmd(args []string) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	dest, cfg, err := loadNamed(fs, args)
	if err != nil {
		return err
	}
	if dest == "" {
		return errors.New("export: to which file or directory? (e.g. bluetick export /var/backups/bluetick.xml, or DIR/ for one file per account)")
	}
	dir := strings.HasSuffix(dest, "/")
	if fi, err := os.Stat(dest); err == nil && fi.IsDir() {
		dir = true
	}
	unlock, err := portableLock("export", cfg)
	if err != nil {
		return err
	}
	defer unlock()
	st, err := openStore(cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	sum, err := portable.Export(context.Background(), st, cfg.Domain, strings.TrimSuffix(dest, "/"), dir)
	if err != nil {
		return fmt.Errorf("export: %v", err)
	}
	fmt.Printf("exported %s to %s (mode 0600: it holds the accounts' credentials)\n", cfg.Domain, strings.Join(sum.Files, ", "))
	fmt.Printf("  %d users, %d contacts, %d vcards, %d private XML, %d PEP nodes with %d items, %d offline messages, %d rooms\n",
		sum.Users, sum.Contacts, sum.VCards, sum.Private, sum.PEPNodes, sum.PEPItems, sum.Offline, sum.Rooms)
	printList("left out (unreadable in the store)", sum.Skipped)
	fmt.Println("  not included: message archives (XEP-0313), room archives, uploaded files, login tokens, push registrations")
	return nil
}

// importCmd is `bluetick import FILE|DIR...`.
func importCmd(args []string) (err error) {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	var paths []string
	for len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		paths, args = append(paths, args[0]), args[1:]
	}
	cfg, err := loadConfig(fs, args)
	if err != nil {
		return err
	}
	paths = append(paths, fs.Args()...)
	if len(paths) == 0 {
		return errors.New("import: which files? (e.g. bluetick import /tmp/prosody-export/ or bluetick import ejabberd/20261203-071122.xml)")
	}
	unlock, err := portableLock("import", cfg)
	if err != nil {
		return err
	}
	defer unlock()
	st, err := openImportStore(cfg)
	if err != nil {
		return err
	}
	// Close syncs a bulk SQLite store: its error is the import's.
	defer func() {
		if cerr := st.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("import: finishing %s: %v (import again: it is safe)", storeName(cfg), cerr)
		}
	}()
	ctx := context.Background()
	im := &portable.Importer{St: st, Domain: cfg.Domain}
	var notices []string
	v := portable.Visitor{
		Account: func(a *portable.Account) error { return im.Account(ctx, a) },
		Room:    func(host string, r *portable.Room) error { return im.Room(ctx, host, r) },
		Notice:  func(m string) { notices = append(notices, m) },
	}
	for _, p := range paths {
		if err := portable.ReadPath(p, v); err != nil {
			return fmt.Errorf("import: %v (what came before it is imported; importing again is safe)", err)
		}
	}
	s := im.Sum
	fmt.Printf("imported into %s (%s):\n", cfg.Domain, storeName(cfg))
	fmt.Printf("  users:            %d new, %d already there (kept their password, data merged)\n", s.Users, s.UsersExisting)
	fmt.Printf("  contacts:         %d roster items\n", s.Contacts)
	fmt.Printf("  vcards:           %d", s.VCards)
	if s.VCardsFromPEP > 0 {
		fmt.Printf(" (%d built from a vCard4 PEP node, as Prosody's mod_vcard_legacy keeps them)", s.VCardsFromPEP)
	}
	fmt.Println()
	fmt.Printf("  private XML:      %d\n", s.Private)
	fmt.Printf("  PEP:              %d new nodes, %d items\n", s.PEPNodes, s.PEPItems)
	fmt.Printf("  offline messages: %d stored, %d already there (not stored twice)\n", s.Offline, s.OfflineDuplicate)
	fmt.Printf("  blocked JIDs:     %d\n", s.Blocked)
	fmt.Printf("  rooms:            %d, with %d affiliations\n", s.Rooms, s.Affiliations)
	if len(s.NoPassword) > 0 {
		printList(fmt.Sprintf("PASSWORDS NOT CARRIED OVER (%d accounts: they cannot log in until you run bluetick user passwd NAME)", len(s.NoPassword)), s.NoPassword)
	} else {
		fmt.Println("  passwords: carried over for every new account (they log in with their old password)")
	}
	if len(s.SHA1Only) > 0 {
		printList(fmt.Sprintf("accounts with only a SCRAM-SHA-1 credential (%d): they log in with SCRAM-SHA-1 or PLAIN, but a client that picks SCRAM-SHA-256 fails: set sasl.scram_sha256 = false until they have set their passwords again (docs/operations.md, Migration)", len(s.SHA1Only)), s.SHA1Only)
	}
	printList("accounts NOT imported", s.Invalid)
	if len(s.OtherHosts) > 0 {
		var hs []string
		for h, n := range s.OtherHosts {
			hs = append(hs, fmt.Sprintf("%s: %d accounts (import them with --domain %s into that server's data directory)", h, n, h))
		}
		sort.Strings(hs)
		printList("other hosts, skipped (this server serves "+cfg.Domain+")", hs)
	}
	printList("read but not imported", append(s.Skipped, notices...))
	if s.Users+s.UsersExisting == 0 && s.Rooms == 0 {
		return fmt.Errorf("import: nothing imported for %s", cfg.Domain)
	}
	return nil
}

func storeName(cfg config.Config) string {
	if cfg.Store != "" {
		return "PostgreSQL"
	}
	return cfg.DBPath()
}

func printList(title string, items []string) {
	if len(items) == 0 {
		return
	}
	fmt.Printf("  %s:\n", title)
	for _, it := range items {
		fmt.Printf("    %s\n", it)
	}
}

// openImportStore opens the store for an import: SQLite without a sync per
// commit (sqlite.OpenBulk; the import can be run again, and no server is
// running: portableLock), PostgreSQL as always.
func openImportStore(cfg config.Config) (store.Store, error) {
	if cfg.Store != "" {
		return openUserStore(cfg)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, err
	}
	st, err := sqlite.OpenBulk(cfg.DBPath())
	if err != nil {
		return nil, fmt.Errorf("opening %s: %v", cfg.DBPath(), err)
	}
	return st, nil
}
