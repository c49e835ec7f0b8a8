package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"bluetick/internal/fast"
	"bluetick/internal/store"
)

// tokensCmd is `bluetick user tokens list|revoke NAME`: the account's
// XEP-0484 login tokens, by client (docs/devices.md). Like the other user
// commands it works on the store directly, while the server runs.
func tokensCmd(args []string) error {
	if len(args) == 0 || args[0] != "list" && args[0] != "revoke" {
		return errors.New("user tokens: say list or revoke (e.g. bluetick user tokens list alice)")
	}
	sub := args[0]
	fs := flag.NewFlagSet("user tokens "+sub, flag.ContinueOnError)
	all := fs.Bool("all", false, map[string]string{
		"list":   "also show revoked, expired and superseded tokens, one line per token",
		"revoke": "revoke the tokens of every client of the account",
	}[sub])
	agent := fs.String("agent", "", "revoke: the client id (from bluetick user tokens list) whose tokens to revoke")
	name, cfg, err := loadNamed(fs, args[1:])
	if err != nil {
		return err
	}
	if name == "" {
		return fmt.Errorf("user tokens %s: which user? (e.g. bluetick user tokens %s alice)", sub, sub)
	}
	if name, err = accountName(name, cfg.Domain); err != nil {
		return err
	}
	if sub == "revoke" && (*agent == "") == !*all {
		return errors.New("user tokens revoke: say which client with --agent ID, or --all")
	}
	st, err := openUserStore(cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	ctx := context.Background()
	if ok, err := st.UserExists(ctx, name); err != nil {
		return err
	} else if !ok {
		return fmt.Errorf("no user %s", name)
	}
	account := name + "@" + cfg.Domain
	if sub == "list" {
		if *all {
			toks, err := st.FastTokens(ctx, name)
			if err != nil {
				return err
			}
			printTokens(os.Stdout, account, toks, time.Now())
			return nil
		}
		devs, err := fast.Devices(ctx, st, name, time.Now())
		if err != nil {
			return err
		}
		printDevices(os.Stdout, account, devs)
		return nil
	}
	n, err := fast.Revoke(ctx, st, name, *agent, fast.RevokedByAdmin)
	if err != nil {
		return err
	}
	if n == 0 && *agent != "" {
		return fmt.Errorf("%s has no live token for client %q (see bluetick user tokens list %s)", account, *agent, name)
	}
	fmt.Printf("revoked %d login token(s) of %s\n", n, account)
	fmt.Println("connected sessions stay connected until they reconnect; then they need the password")
	return nil
}

func cliTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// printDevices lists the clients holding live tokens, most recent first.
func printDevices(w io.Writer, account string, devs []fast.Device) {
	if len(devs) == 0 {
		fmt.Fprintf(w, "%s: no device holds a login token\n", account)
		return
	}
	fmt.Fprintf(w, "%s: %d device(s) can log in with a token\n", account, len(devs))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CLIENT ID\tSOFTWARE\tDEVICE\tMECHANISM\tLAST LOGIN\tSINCE\tEXPIRES")
	for _, d := range devs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.AgentID, dash(d.Software), dash(d.Device), d.Mechanism,
			cliTime(d.LastUsed), cliTime(d.Since), cliTime(d.Expires))
	}
	tw.Flush()
}

// printTokens lists every stored token with its state.
func printTokens(w io.Writer, account string, toks []store.FastToken, now time.Time) {
	fmt.Fprintf(w, "%s: %d token(s) stored\n", account, len(toks))
	if len(toks) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CLIENT ID\tSOFTWARE\tSTATE\tMECHANISM\tISSUED\tLAST USED\tEXPIRES")
	for _, t := range toks {
		state := "live"
		switch {
		case !t.Revoked.IsZero():
			state = "revoked (" + t.RevokeReason + ") " + cliTime(t.Revoked)
		case !now.Before(t.Expires):
			state = "expired"
		case t.LastUsed.IsZero():
			state = "live, not used yet"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.AgentID, dash(t.Software), state, t.Mechanism,
			cliTime(t.Created), cliTime(t.LastUsed), cliTime(t.Expires))
	}
	tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
