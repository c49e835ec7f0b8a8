package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"bluetick/internal/store"
)

const rosterColumns = `contact, name, subscription, pending_out, pending_in, approved, in_roster, groups`

func scanItem(row pgx.Row) (store.RosterItem, error) {
	var it store.RosterItem
	err := row.Scan(&it.Contact, &it.Name, &it.Subscription, &it.PendingOut, &it.PendingIn, &it.Approved, &it.InRoster, &it.Groups)
	if len(it.Groups) == 0 {
		it.Groups = nil
	}
	return it, err
}

// Roster implements store.Rosters. One statement reads the version and the
// items, so they come from one snapshot and the version always describes
// exactly these items. The LEFT JOIN yields one row of NULL items for a
// user without any, and no row at all for an unknown user, whose roster is
// empty at version 0.
func (s *Store) Roster(ctx context.Context, user string) ([]store.RosterItem, int64, error) {
	rows, _ := s.pool.Query(ctx, `
SELECT u.roster_version, r.contact IS NOT NULL,
	coalesce(r.contact, ''), coalesce(r.name, ''), coalesce(r.subscription, ''),
	coalesce(r.pending_out, false), coalesce(r.pending_in, false),
	coalesce(r.approved, false), coalesce(r.in_roster, false), r.groups
FROM users u LEFT JOIN roster r ON r.username = u.name
WHERE u.name = $1
ORDER BY r.contact`, user)
	defer rows.Close()
	var items []store.RosterItem
	var ver int64
	for rows.Next() {
		var it store.RosterItem
		var has bool
		if err := rows.Scan(&ver, &has, &it.Contact, &it.Name, &it.Subscription, &it.PendingOut, &it.PendingIn, &it.Approved, &it.InRoster, &it.Groups); err != nil {
			return nil, 0, wrap(err, "roster of %q", user)
		}
		if !has {
			continue
		}
		if len(it.Groups) == 0 {
			it.Groups = nil
		}
		items = append(items, it)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, wrap(err, "roster of %q", user)
	}
	return items, ver, nil
}

// RosterItem implements store.Rosters.
func (s *Store) RosterItem(ctx context.Context, user, contact string) (store.RosterItem, error) {
	it, err := scanItem(s.pool.QueryRow(ctx, `SELECT `+rosterColumns+` FROM roster WHERE username = $1 AND contact = $2`, user, contact))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.RosterItem{}, notFound("roster item %s of %q", contact, user)
	}
	if err != nil {
		return store.RosterItem{}, wrap(err, "roster item")
	}
	return it, nil
}

// bumpVersion is the start of every roster change: a CTE that gives the
// user's roster the next number of the roster_version sequence. The
// change's statement takes its rows from it (FROM bump), so it changes
// nothing unless the bump happened, and the statement's result is the new
// version, or no row for an absent user. It runs after lockUser in the same
// transaction: drawing the number under the row lock is what makes a
// user's versions increase in commit order (a number drawn before waiting
// for the lock could be smaller than the one the lock holder then commits).
const bumpVersion = `
WITH bump AS (
	UPDATE users SET roster_version = nextval('roster_version')
	WHERE name = $1
	RETURNING name, roster_version
)`

// rosterWrite sends lockUser and then change (which starts with
// bumpVersion and selects the new version) as one batch, one round trip
// and one transaction, and returns the new version; ErrNotFound if the user
// does not exist.
func (s *Store) rosterWrite(ctx context.Context, user, what string, change string, args ...any) (int64, error) {
	b := &pgx.Batch{}
	b.Queue(lockUser, user)
	b.Queue(change, args...)
	br := s.pool.SendBatch(ctx, b)
	_, err := lockedRow(br)
	var ver int64
	found := false
	if err == nil {
		err = br.QueryRow().Scan(&ver)
		found = err == nil
		if errors.Is(err, pgx.ErrNoRows) {
			err = nil
		}
	}
	if err = closeBatch(br, err); err != nil {
		return 0, wrap(err, "%s of %q", what, user)
	}
	if !found {
		return 0, notFound("%s: user %q", what, user)
	}
	return ver, nil
}

// PutRosterItem implements store.Rosters; ErrNotFound if the account does
// not exist.
func (s *Store) PutRosterItem(ctx context.Context, user string, item store.RosterItem) (int64, error) {
	return s.rosterWrite(ctx, user, "put roster item", bumpVersion+`,
put AS (
	INSERT INTO roster (username, `+rosterColumns+`)
	SELECT name, $2, $3, $4, $5, $6, $7, $8, $9 FROM bump
	ON CONFLICT (username, contact) DO UPDATE SET
		name = excluded.name, subscription = excluded.subscription,
		pending_out = excluded.pending_out, pending_in = excluded.pending_in,
		approved = excluded.approved, in_roster = excluded.in_roster,
		groups = excluded.groups
)
SELECT roster_version FROM bump`,
		user, item.Contact, item.Name, item.Subscription, item.PendingOut, item.PendingIn, item.Approved, item.InRoster, nonNil(item.Groups))
}

// DeleteRosterItem implements store.Rosters; ErrNotFound if the account
// does not exist. Deleting an absent item still bumps the version: that
// costs a client at most one needless full roster fetch, and saves telling
// "nothing to do" apart.
func (s *Store) DeleteRosterItem(ctx context.Context, user, contact string) (int64, error) {
	return s.rosterWrite(ctx, user, "delete roster item", bumpVersion+`,
del AS (DELETE FROM roster WHERE username IN (SELECT name FROM bump) AND contact = $2)
SELECT roster_version FROM bump`, user, contact)
}

// RosterCounts implements store.Rosters: one scan of the user's rows
// (the primary key's prefix), at most the roster limit of them.
func (s *Store) RosterCounts(ctx context.Context, user string) (items, pendingOut int, err error) {
	err = s.pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE pending_out) FROM roster WHERE username = $1`, user).Scan(&items, &pendingOut)
	if err != nil {
		return 0, 0, wrap(err, "roster counts of %q", user)
	}
	return items, pendingOut, nil
}
