package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"bluetick/internal/store"
)

// PEP data is written a few times per session, not per message, so these
// methods use plain transactions (a few round trips) rather than batches.
// Every write first locks the user's row (lockUser), which serialises the
// writers of one account across nodes and makes a write for an absent
// account fail with ErrNotFound.

// pepTx runs fn in a transaction after locking user's row.
func (s *Store) pepTx(ctx context.Context, user, what string, fn func(tx pgx.Tx) error) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var one int
		err := tx.QueryRow(ctx, lockUser, user).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return notFound("%s: user %q", what, user)
		}
		if err != nil {
			return err
		}
		return fn(tx)
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrExists) {
		return wrap(err, "%s", what)
	}
	return err
}

func pepNodeExists(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, user, node string) error {
	var ok bool
	if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pep_nodes WHERE username = $1 AND node = $2)`, user, node).Scan(&ok); err != nil {
		return wrap(err, "pep node")
	}
	if !ok {
		return notFound("pep node %q of %q", node, user)
	}
	return nil
}

func pepTrim(ctx context.Context, tx pgx.Tx, user, node string, max int) error {
	if max <= 0 {
		return nil
	}
	_, err := tx.Exec(ctx, `
DELETE FROM pep_items WHERE username = $1 AND node = $2 AND seq NOT IN (
	SELECT seq FROM pep_items WHERE username = $1 AND node = $2 ORDER BY seq DESC LIMIT $3)`, user, node, max)
	return err
}

// CreatePEPNode implements store.PEP.
func (s *Store) CreatePEPNode(ctx context.Context, user string, n store.PEPNode) error {
	return s.pepTx(ctx, user, "create pep node", func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO pep_nodes (username, node, config) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, user, n.Node, nonNil(n.Config))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return wrap(store.ErrExists, "pep node %q of %q", n.Node, user)
		}
		return nil
	})
}

// PEPNode implements store.PEP.
func (s *Store) PEPNode(ctx context.Context, user, node string) (store.PEPNode, error) {
	n := store.PEPNode{Node: node}
	err := s.pool.QueryRow(ctx, `SELECT config FROM pep_nodes WHERE username = $1 AND node = $2`, user, node).Scan(&n.Config)
	if errors.Is(err, pgx.ErrNoRows) {
		return n, notFound("pep node %q of %q", node, user)
	}
	if err != nil {
		return n, wrap(err, "pep node")
	}
	return n, nil
}

// PEPNodes implements store.PEP.
func (s *Store) PEPNodes(ctx context.Context, user string) ([]store.PEPNode, error) {
	rows, _ := s.pool.Query(ctx, `SELECT node, config FROM pep_nodes WHERE username = $1 ORDER BY node`, user)
	defer rows.Close()
	var out []store.PEPNode
	for rows.Next() {
		var n store.PEPNode
		if err := rows.Scan(&n.Node, &n.Config); err != nil {
			return nil, wrap(err, "pep nodes")
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(err, "pep nodes")
	}
	return out, nil
}

// SetPEPNodeConfig implements store.PEP.
func (s *Store) SetPEPNodeConfig(ctx context.Context, user, node string, config []byte, maxItems int) error {
	return s.pepTx(ctx, user, "configure pep node", func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE pep_nodes SET config = $3 WHERE username = $1 AND node = $2`, user, node, nonNil(config))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return notFound("pep node %q of %q", node, user)
		}
		return pepTrim(ctx, tx, user, node, maxItems)
	})
}

// DeletePEPNode implements store.PEP; the items go with it (ON DELETE CASCADE).
func (s *Store) DeletePEPNode(ctx context.Context, user, node string) error {
	return s.pepTx(ctx, user, "delete pep node", func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM pep_nodes WHERE username = $1 AND node = $2`, user, node)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return notFound("pep node %q of %q", node, user)
		}
		return nil
	})
}

// PublishPEPItem implements store.PEP. Deleting and re-inserting a
// republished id gives it a new seq, so it becomes the newest.
func (s *Store) PublishPEPItem(ctx context.Context, user, node string, it store.PEPItem, maxItems int) error {
	return s.pepTx(ctx, user, "publish pep item", func(tx pgx.Tx) error {
		if err := pepNodeExists(ctx, tx, user, node); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM pep_items WHERE username = $1 AND node = $2 AND item_id = $3`, user, node, it.ID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `
INSERT INTO pep_items (username, node, item_id, publisher, published, payload) VALUES ($1, $2, $3, $4, $5, $6)`,
			user, node, it.ID, it.Publisher, it.Published, nonNil(it.Payload)); err != nil {
			return err
		}
		return pepTrim(ctx, tx, user, node, maxItems)
	})
}

// PEPItems implements store.PEP; one REPEATABLE READ transaction, so the
// node check and the items come from one snapshot.
func (s *Store) PEPItems(ctx context.Context, user, node string, ids []string, max int) ([]store.PEPItem, error) {
	var out []store.PEPItem
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if err := pepNodeExists(ctx, tx, user, node); err != nil {
			return err
		}
		var rows pgx.Rows
		if len(ids) > 0 {
			rows, _ = tx.Query(ctx, `
SELECT item_id, publisher, published, payload FROM pep_items
WHERE username = $1 AND node = $2 AND item_id = ANY($3) ORDER BY seq`, user, node, ids)
		} else {
			var lim *int
			if max > 0 {
				lim = &max
			}
			rows, _ = tx.Query(ctx, `
SELECT item_id, publisher, published, payload FROM (
	SELECT seq, item_id, publisher, published, payload FROM pep_items
	WHERE username = $1 AND node = $2 ORDER BY seq DESC LIMIT $3) t ORDER BY seq`, user, node, lim)
		}
		defer rows.Close()
		for rows.Next() {
			var it store.PEPItem
			if err := rows.Scan(&it.ID, &it.Publisher, &it.Published, &it.Payload); err != nil {
				return err
			}
			it.Published = utc(it.Published)
			out = append(out, it)
		}
		return rows.Err()
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, wrap(err, "pep items")
	}
	return out, err
}

// RetractPEPItem implements store.PEP.
func (s *Store) RetractPEPItem(ctx context.Context, user, node, id string) error {
	return s.pepTx(ctx, user, "retract pep item", func(tx pgx.Tx) error {
		if err := pepNodeExists(ctx, tx, user, node); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM pep_items WHERE username = $1 AND node = $2 AND item_id = $3`, user, node, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return notFound("pep item %q", id)
		}
		return nil
	})
}

// PurgePEPItems implements store.PEP.
func (s *Store) PurgePEPItems(ctx context.Context, user, node string) error {
	return s.pepTx(ctx, user, "purge pep node", func(tx pgx.Tx) error {
		if err := pepNodeExists(ctx, tx, user, node); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM pep_items WHERE username = $1 AND node = $2`, user, node)
		return err
	})
}

func (s *Store) getBlob(ctx context.Context, what, q string, args ...any) ([]byte, error) {
	var b []byte
	err := s.pool.QueryRow(ctx, q, args...).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound("%s", what)
	}
	if err != nil {
		return nil, wrap(err, "%s", what)
	}
	return b, nil
}

// PrivateXML implements store.PEP.
func (s *Store) PrivateXML(ctx context.Context, user, ns string) ([]byte, error) {
	return s.getBlob(ctx, "private xml", `SELECT data FROM private_xml WHERE username = $1 AND ns = $2`, user, ns)
}

// SetPrivateXML implements store.PEP.
func (s *Store) SetPrivateXML(ctx context.Context, user, ns string, data []byte) error {
	return s.pepTx(ctx, user, "set private xml", func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `
INSERT INTO private_xml (username, ns, data) VALUES ($1, $2, $3)
ON CONFLICT (username, ns) DO UPDATE SET data = excluded.data`, user, ns, nonNil(data))
		return err
	})
}

// VCard implements store.PEP.
func (s *Store) VCard(ctx context.Context, user string) ([]byte, error) {
	return s.getBlob(ctx, "vcard", `SELECT data FROM vcards WHERE username = $1`, user)
}

// SetVCard implements store.PEP.
func (s *Store) SetVCard(ctx context.Context, user string, data []byte) error {
	return s.pepTx(ctx, user, "set vcard", func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `
INSERT INTO vcards (username, data) VALUES ($1, $2)
ON CONFLICT (username) DO UPDATE SET data = excluded.data`, user, nonNil(data))
		return err
	})
}

// CapsInfo implements store.PEP.
func (s *Store) CapsInfo(ctx context.Context, key string) ([]byte, error) {
	return s.getBlob(ctx, "caps", `SELECT info FROM caps WHERE key = $1`, key)
}

// PutCapsInfo implements store.PEP. A verified hash always names the same
// info, so an existing row is kept.
func (s *Store) PutCapsInfo(ctx context.Context, key string, info []byte) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO caps (key, info) VALUES ($1, $2) ON CONFLICT DO NOTHING`, key, nonNil(info))
	if err != nil {
		return wrap(err, "put caps")
	}
	return nil
}
