package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"bluetick/internal/auth"
	"bluetick/internal/c2s"
	"bluetick/internal/config"
	"bluetick/internal/fast"
	"bluetick/internal/jid"
	"bluetick/internal/store"
)

// userCmd manages accounts directly in the store; it works while the server
// runs (SQLite in WAL mode allows a second process, PostgreSQL any number).
func userCmd(args []string) error {
	if len(args) == 0 {
		return errors.New("user: say add, passwd, del, list, info, tokens or kick (e.g. bluetick user add alice)")
	}
	sub := args[0]
	switch {
	case sub == "tokens":
		return tokensCmd(args[1:])
	case sub == "kick":
		return kickCmd(args[1:])
	case sub == "list" && slices.Contains(args[1:], "--online"):
		return onlineCmd(args[1:])
	}
	fs := flag.NewFlagSet("user "+sub, flag.ContinueOnError)
	pw := fs.String("password", "", "password (read from stdin when absent)")
	name, cfg, err := loadNamed(fs, args[1:])
	if err != nil {
		return err
	}
	if sub != "list" && name == "" {
		return fmt.Errorf("user %s: which user? (e.g. bluetick user %s alice)", sub, sub)
	}
	if name != "" {
		if name, err = accountName(name, cfg.Domain); err != nil {
			return err
		}
	}
	st, err := openUserStore(cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	ctx := context.Background()
	password := func() (string, error) {
		if *pw != "" {
			return *pw, nil
		}
		fmt.Fprintf(os.Stderr, "password for %s@%s: ", name, cfg.Domain)
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			if err != nil {
				return "", errors.New("no password given (use --password or type one on stdin)")
			}
			return "", errors.New("empty password")
		}
		return line, nil
	}
	switch sub {
	case "add", "passwd":
		p, err := password()
		if err != nil {
			return err
		}
		creds, err := auth.NewCredentials(p, auth.DefaultIterations)
		if err != nil {
			return fmt.Errorf("password not acceptable: %v", err)
		}
		if sub == "add" {
			err = st.CreateUser(ctx, name, creds)
			if errors.Is(err, store.ErrExists) {
				return fmt.Errorf("user %s already exists (use bluetick user passwd %s to change the password)", name, name)
			}
		} else {
			err = st.SetCredentials(ctx, name, creds)
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("no user %s (create it with bluetick user add %s)", name, name)
			}
			if err == nil {
				// The devices' login tokens were earned with the old password.
				if err = fast.PasswordChanged(ctx, st, name); err != nil {
					err = fmt.Errorf("password changed, but revoking the login tokens failed: %w", err)
				}
			}
		}
		if err != nil {
			return err
		}
		fmt.Printf("%s %s@%s\n", map[string]string{"add": "created", "passwd": "password changed for"}[sub], name, cfg.Domain)
		if sub == "passwd" {
			fmt.Println("its devices' login tokens are revoked: they log in with the new password next time")
		}
	case "del":
		if err := st.DeleteUser(ctx, name); errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("no user %s", name)
		} else if err != nil {
			return err
		}
		fmt.Printf("deleted %s@%s\n", name, cfg.Domain)
	case "list":
		users, err := st.ListUsers(ctx)
		if err != nil {
			return err
		}
		for _, u := range users {
			fmt.Printf("%s@%s\n", u, cfg.Domain)
		}
	case "info":
		ls, err := st.LoginStats(ctx, name)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("no user %s", name)
		} else if err != nil {
			return err
		}
		printLogins(os.Stdout, name+"@"+cfg.Domain, ls, c2s.ThrottleConfig(cfg), time.Now())
		uas, err := st.UserAgents(ctx, name)
		if err != nil {
			return err
		}
		printUserAgents(os.Stdout, uas)
	default:
		return fmt.Errorf("user: unknown subcommand %q (add, passwd, del, list, info, tokens or kick)", sub)
	}
	return nil
}

// printLogins writes what the store knows of an account's logins. A
// running server writes login outcomes within about a second.
func printLogins(w io.Writer, account string, ls store.LoginStats, tc auth.ThrottleConfig, now time.Time) {
	at := func(t time.Time, addr string) string {
		if t.IsZero() {
			return "never"
		}
		return t.UTC().Format("2006-01-02 15:04:05 MST") + " from " + addr
	}
	fmt.Fprintf(w, "%s\n", account)
	fmt.Fprintf(w, "  last login:                 %s\n", at(ls.LastSuccess, ls.LastSuccessAddr))
	fmt.Fprintf(w, "  failed logins since then:   %d\n", ls.Failed)
	fmt.Fprintf(w, "  last failed login:          %s\n", at(ls.LastFailure, ls.LastFailureAddr))
	streak := 0
	if !ls.StreakLast.IsZero() && now.Sub(ls.StreakLast) <= tc.Window {
		streak = ls.Streak
	}
	fmt.Fprintf(w, "  failures from new addresses (login throttle streak): %d", streak)
	if until := ls.StreakLast.Add(tc.Delay(streak)); streak > 0 && until.After(now) {
		fmt.Fprintf(w, "; logins from new addresses refused until %s", until.UTC().Format("2006-01-02 15:04:05 MST"))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  known addresses (logged in from before):")
	if len(ls.Known) == 0 {
		fmt.Fprintf(w, " none")
	}
	fmt.Fprintln(w)
	for _, k := range ls.Known {
		fmt.Fprintf(w, "    %-40s last %s\n", k.Prefix, k.LastSeen.UTC().Format("2006-01-02 15:04:05 MST"))
	}
}

// printUserAgents lists the client installations that logged in with
// SASL2 (XEP-0388 <user-agent/>), most recently seen first.
func printUserAgents(w io.Writer, uas []store.UserAgent) {
	fmt.Fprintf(w, "  devices (SASL2 user agents):")
	if len(uas) == 0 {
		fmt.Fprintf(w, " none")
	}
	fmt.Fprintln(w)
	for _, ua := range uas {
		what := strings.TrimSpace(ua.Software + " on " + ua.Device)
		switch {
		case ua.Software == "" && ua.Device == "":
			what = "(no description)"
		case ua.Device == "":
			what = ua.Software
		case ua.Software == "":
			what = ua.Device
		}
		fmt.Fprintf(w, "    %s  %q  last %s from %s\n", ua.ID, what, ua.LastSeen.UTC().Format("2006-01-02 15:04:05 MST"), ua.LastAddr)
	}
}

// loadNamed parses a user subcommand's flags and config, taking the user's
// name before the flags ("user add NAME --password X") or after them; name
// is "" when none is given.
func loadNamed(fs *flag.FlagSet, args []string) (name string, cfg config.Config, err error) {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if cfg, err = loadConfig(fs, args); err != nil {
		return "", cfg, err
	}
	if name == "" && fs.NArg() > 0 {
		name = fs.Arg(0)
	}
	return name, cfg, nil
}

// openUserStore opens the store for a user subcommand. Only SQLite lives
// in the data directory: with PostgreSQL there is nothing to put there,
// so none is created (on a machine that only administers accounts, in
// whatever directory the command runs).
func openUserStore(cfg config.Config) (store.Store, error) {
	if cfg.Store == "" {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, err
		}
	}
	return openStore(cfg)
}

// accountName turns what the operator typed into the account's localpart:
// a name ("alice") or the bare address ("alice@localhost"), which is what
// users naturally type. An address on a domain this server does not serve
// is refused, naming the one it does.
func accountName(typed, domain string) (string, error) {
	if !strings.ContainsAny(typed, "@/") {
		name, err := jid.PrepareLocal(typed)
		if err != nil {
			return "", fmt.Errorf("user name %q: %v (use letters, digits and . _ -, or the address %s)", typed, err, "name@"+domain)
		}
		return name, nil
	}
	j, err := jid.Parse(typed)
	if err != nil || j.Local() == "" {
		return "", fmt.Errorf("user %q is neither a name nor an address (use e.g. alice or alice@%s)", typed, domain)
	}
	if !j.IsBare() {
		return "", fmt.Errorf("user %q names a resource (a device); give the account: %s", typed, j.BareString())
	}
	if j.Domain() != domain {
		return "", fmt.Errorf("user %q: %s is not this server's domain; this server serves %s (use %s@%s, or --domain/--config for another server)", typed, j.Domain(), domain, j.Local(), domain)
	}
	return j.Local(), nil
}
