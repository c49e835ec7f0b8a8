package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"

	"bluetick/internal/backup"
)

// pgBackupHelp is what backup and restore say in cluster mode: PostgreSQL
// has the right tools, and a copy made from one node would be half the
// story (docs/operations.md).
const pgBackupHelp = `the store is PostgreSQL (cluster mode): back it up with PostgreSQL's own tools, not bluetick backup:
  a logical copy:    pg_dump --format=custom --file=bluetick.dump "$STORE_URL"
                     pg_restore --clean --if-exists --dbname="$STORE_URL" bluetick.dump   (all nodes stopped)
  point in time:     continuous WAL archiving (archive_mode, archive_command) with pg_basebackup,
                     or a tool such as pgBackRest or Barman
also keep each node's upload storage (S3 bucket or shared directory) and its config file;
see docs/operations.md, "Backups with PostgreSQL"`

// backupCmd is `bluetick backup FILE`: a consistent copy of a running (or
// stopped) single node's state, without stopping it.
func backupCmd(args []string) error {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	file, cfg, err := loadNamed(fs, args)
	if err != nil {
		return err
	}
	if file == "" {
		return errors.New("backup: to which file? (e.g. bluetick backup /var/backups/bluetick-$(date +%F).tar.gz)")
	}
	if cfg.Store != "" {
		return errors.New("backup: " + pgBackupHelp)
	}
	res, err := backup.Create(context.Background(), cfg.DataDir, cfg.DBPath(), file, version(), cfg.Domain)
	if err != nil {
		return fmt.Errorf("backup: %v", err)
	}
	fmt.Printf("backup of %s written to %s: %d bytes in %v\n", cfg.DataDir, file, res.Bytes, res.Took.Round(1e6))
	fmt.Printf("  %d accounts, %d offline messages (%d of them from the journal's log), files: %s\n",
		res.Users, res.Offline, res.FromJournal, strings.Join(res.Files, ", "))
	fmt.Printf("  not included: uploaded files (rsync -a %s/ elsewhere) and the config file\n", cfg.UploadDir())
	return nil
}

// restoreCmd is `bluetick restore FILE`: the backup replaces the data
// directory's database and keys; the server must be stopped.
func restoreCmd(args []string) error {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	file, cfg, err := loadNamed(fs, args)
	if err != nil {
		return err
	}
	if file == "" {
		return errors.New("restore: from which file? (e.g. bluetick restore /var/backups/bluetick-2026-12-03.tar.gz)")
	}
	if cfg.Store != "" {
		return errors.New("restore: " + pgBackupHelp)
	}
	res, err := backup.Restore(context.Background(), file, cfg.DataDir)
	if errors.Is(err, backup.ErrRunning) {
		return fmt.Errorf("restore: refused: %v; stop the server first (systemctl stop bluetick), then restore", err)
	}
	if err != nil {
		return fmt.Errorf("restore: %v", err)
	}
	fmt.Printf("restored %s into %s: backup of %s taken %s by bluetick %s\n", file, cfg.DataDir, res.Domain,
		res.Created.Format("2006-01-02 15:04:05 MST"), res.Version)
	fmt.Printf("  %d accounts, %d offline messages, files: %s\n", res.Users, res.Offline, strings.Join(res.Files, ", "))
	if res.Aside != "" {
		fmt.Printf("  the previous database and keys are in %s (delete it once the server runs well)\n", res.Aside)
	}
	if res.Domain != cfg.Domain {
		fmt.Printf("  warning: the backup is of domain %s, this configuration serves %s\n", res.Domain, cfg.Domain)
	}
	return nil
}
