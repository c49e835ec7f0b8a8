// Command bluetick is the Bluetick messaging server: one binary with the
// subcommands serve, user and version. It loads the configuration, wires
// the packages together and holds no logic of its own.
package main

import (
	"fmt"
	"os"
	"runtime/debug"
)

const usage = `bluetick — a WhatsApp-style XMPP messaging server

Usage:
  bluetick serve [flags]                  run the server (zero config: localhost, ./bluetick-data)
  bluetick user add NAME [--password P]   create an account (password read from stdin if not given);
                                          NAME is alice or alice@DOMAIN, for every user subcommand
  bluetick user passwd NAME [--password P]
  bluetick user del NAME
  bluetick user list
  bluetick user info NAME                 failed logins since the last success, known addresses
  bluetick user tokens list NAME [--all]  the devices holding login tokens (XEP-0484 FAST)
  bluetick user tokens revoke NAME --agent ID|--all   log devices out (their tokens stop working)
  bluetick user list --online [--json]    the sessions online on the running server: JID, transport, address, since
  bluetick user kick NAME [--resource R] [--reason TEXT]   end a user's sessions (all, or one device's)
  bluetick status [--json]                the running server: version, uptime, sessions, accounts, rooms, cluster, memory
  bluetick room list [--json]             group chats: occupants, members, persistent
  bluetick room destroy ROOM [--reason TEXT]   destroy a group chat; its occupants are told
  bluetick announce TEXT [--subject S]    a message from the server to every online session
  bluetick bench --server H:P --scenario conns|chat|offline|storm   load test any XMPP server
  bluetick backup FILE                    copy a running server's state (SQLite store, keys) into FILE (.tar or .tar.gz)
  bluetick restore FILE                   put a backup back (the server must be stopped; the old state is kept aside)
  bluetick export FILE|DIR/              the whole server in XEP-0227 (accounts, rosters, vCards, PEP, offline, rooms)
  bluetick import FILE|DIR...             accounts from XEP-0227 files (Bluetick, Prosody, ejabberd); safe to repeat
  bluetick version                        the build: module version, commit, Go, dependencies

Common flags: --config FILE (TOML, see docs/configuration.md), --data DIR, --domain NAME.
status, user list --online, user kick, room and announce talk to the running server through
its admin socket (listen.admin, default DATA/admin.sock, mode 0600): run them as the server's user.
Run "bluetick serve -h" for all serve flags.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "user":
		err = userCmd(os.Args[2:])
	case "status":
		err = statusCmd(os.Args[2:])
	case "room":
		err = roomCmd(os.Args[2:])
	case "announce":
		err = announceCmd(os.Args[2:])
	case "backup":
		err = backupCmd(os.Args[2:])
	case "restore":
		err = restoreCmd(os.Args[2:])
	case "export":
		err = exportCmd(os.Args[2:])
	case "import":
		err = importCmd(os.Args[2:])
	case "bench":
		err = benchCmd(os.Args[2:])
	case "version", "--version", "-v":
		bi, ok := debug.ReadBuildInfo()
		printVersion(os.Stdout, bi, ok)
	case "help", "-h", "--help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "bluetick: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bluetick:", err)
		os.Exit(1)
	}
}
