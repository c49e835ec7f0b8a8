package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"bluetick/internal/store"
)

const rosterColumns = `contact, name, subscription, pending_out, pending_in, approved, in_roster, group_names`

func scanItem(sc interface{ Scan(...any) error }) (store.RosterItem, error) {
	var it store.RosterItem
	var groups string
	if err := sc.Scan(&it.Contact, &it.Name, &it.Subscription, &it.PendingOut, &it.PendingIn, &it.Approved, &it.InRoster, &groups); err != nil {
		return it, err
	}
	if err := json.Unmarshal([]byte(groups), &it.Groups); err != nil {
		return it, fmt.Errorf("roster item %s: groups %q: %w", it.Contact, groups, err)
	}
	if len(it.Groups) == 0 {
		it.Groups = nil
	}
	return it, nil
}

// Roster implements store.Rosters. The items and the version are read in
// one transaction, so the version always describes exactly these items.
// Roster's statements, prepared once (Store.stmtRoster*): a new session
// reads the roster four times (roster get, presence broadcast, probes,
// pending subscriptions) and its end once more; parsing them again each
// time was a quarter of a fresh login's server CPU.
const (
	rosterVersionSQL = `SELECT roster_version FROM users WHERE name = ?`
	rosterItemsSQL   = `SELECT ` + rosterColumns + ` FROM roster WHERE user = ? ORDER BY contact`
)

// An unknown account has an empty roster at version 0.
func (s *Store) Roster(ctx context.Context, user string) ([]store.RosterItem, int64, error) {
	// ReadOnly makes it a plain (deferred) BEGIN: a WAL snapshot that
	// neither waits for nor blocks the writer.
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, 0, fmt.Errorf("sqlite: roster: %w", err)
	}
	defer tx.Rollback()
	var ver int64
	err = tx.StmtContext(ctx, s.stmtRosterVersion).QueryRowContext(ctx, user).Scan(&ver)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("sqlite: roster: %w", err)
	}
	rows, err := tx.StmtContext(ctx, s.stmtRosterItems).QueryContext(ctx, user)
	if err != nil {
		return nil, 0, fmt.Errorf("sqlite: roster: %w", err)
	}
	defer rows.Close()
	var items []store.RosterItem
	for rows.Next() {
		it, err := scanItem(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("sqlite: roster of %q: %w", user, err)
		}
		items = append(items, it)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("sqlite: roster: %w", err)
	}
	return items, ver, nil
}

// RosterItem implements store.Rosters.
func (s *Store) RosterItem(ctx context.Context, user, contact string) (store.RosterItem, error) {
	row := s.db.QueryRowContext(ctx, `SELECT `+rosterColumns+` FROM roster WHERE user = ? AND contact = ?`, user, contact)
	it, err := scanItem(row)
	if errors.Is(err, sql.ErrNoRows) {
		return store.RosterItem{}, notFound("roster item %s of %q", contact, user)
	}
	if err != nil {
		return store.RosterItem{}, fmt.Errorf("sqlite: roster item: %w", err)
	}
	return it, nil
}

// PutRosterItem implements store.Rosters; ErrNotFound if the account does
// not exist.
func (s *Store) PutRosterItem(ctx context.Context, user string, item store.RosterItem) (int64, error) {
	groups := item.Groups
	if groups == nil {
		groups = []string{}
	}
	gj, err := json.Marshal(groups)
	if err != nil {
		return 0, err
	}
	var ver int64
	err = s.write(ctx, func(tx *sql.Tx) error {
		var err error
		if ver, err = bumpVersion(ctx, tx, user); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `
INSERT INTO roster (user, `+rosterColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (user, contact) DO UPDATE SET
	name = excluded.name, subscription = excluded.subscription,
	pending_out = excluded.pending_out, pending_in = excluded.pending_in,
	approved = excluded.approved, in_roster = excluded.in_roster,
	group_names = excluded.group_names`,
			user, item.Contact, item.Name, item.Subscription, item.PendingOut, item.PendingIn, item.Approved, item.InRoster, string(gj))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: put roster item: %w", err)
	}
	return ver, nil
}

// DeleteRosterItem implements store.Rosters; ErrNotFound if the account
// does not exist. Deleting an absent item still bumps the version: that
// costs a client at most one needless full roster fetch, and saves telling
// "nothing to do" apart.
func (s *Store) DeleteRosterItem(ctx context.Context, user, contact string) (int64, error) {
	var ver int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		var err error
		if ver, err = bumpVersion(ctx, tx, user); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM roster WHERE user = ? AND contact = ?`, user, contact)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete roster item: %w", err)
	}
	return ver, nil
}

// bumpVersion gives user's roster the next version from the database-wide
// counter (see the schema) and returns it; ErrNotFound if there is no
// such account, in which case the caller's rollback undoes the bump.
func bumpVersion(ctx context.Context, tx *sql.Tx, user string) (int64, error) {
	var ver int64
	if err := tx.QueryRowContext(ctx, `UPDATE counters SET value = value + 1 WHERE name = 'roster_version' RETURNING value`).Scan(&ver); err != nil {
		return 0, err
	}
	res, err := tx.ExecContext(ctx, `UPDATE users SET roster_version = ? WHERE name = ?`, ver, user)
	if err != nil {
		return 0, err
	}
	if n, err := res.RowsAffected(); err != nil {
		return 0, err
	} else if n == 0 {
		return 0, fmt.Errorf("user %q: %w", user, store.ErrNotFound)
	}
	return ver, nil
}

// RosterCounts implements store.Rosters: one scan of the user's rows
// (the primary key's prefix), at most the roster limit of them.
func (s *Store) RosterCounts(ctx context.Context, user string) (items, pendingOut int, err error) {
	err = s.db.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(pending_out), 0) FROM roster WHERE user = ?`, user).Scan(&items, &pendingOut)
	if err != nil {
		return 0, 0, fmt.Errorf("sqlite: roster counts: %w", err)
	}
	return items, pendingOut, nil
}
