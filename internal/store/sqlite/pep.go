package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"bluetick/internal/store"
)

// userExists checks the account inside a write transaction, so a write for
// an absent account fails with ErrNotFound instead of a foreign-key error.
func userExists(ctx context.Context, tx *sql.Tx, user string) error {
	var ok bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE name = ?)`, user).Scan(&ok); err != nil {
		return err
	}
	if !ok {
		return notFound("user %q", user)
	}
	return nil
}

func nodeExists(ctx context.Context, tx *sql.Tx, user, node string) error {
	var ok bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pep_nodes WHERE user = ? AND node = ?)`, user, node).Scan(&ok); err != nil {
		return err
	}
	if !ok {
		return notFound("pep node %q of %q", node, user)
	}
	return nil
}

// trim keeps the max newest items of a node (max <= 0: all).
func trim(ctx context.Context, tx *sql.Tx, user, node string, max int) error {
	if max <= 0 {
		return nil
	}
	_, err := tx.ExecContext(ctx, `
DELETE FROM pep_items WHERE user = ?1 AND node = ?2 AND seq NOT IN (
	SELECT seq FROM pep_items WHERE user = ?1 AND node = ?2 ORDER BY seq DESC LIMIT ?3)`, user, node, max)
	return err
}

// CreatePEPNode implements store.PEP.
func (s *Store) CreatePEPNode(ctx context.Context, user string, n store.PEPNode) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		if err := userExists(ctx, tx, user); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO pep_nodes (user, node, config) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, user, n.Node, nonNil(n.Config))
		if err != nil {
			return err
		}
		if k, err := res.RowsAffected(); err != nil {
			return err
		} else if k == 0 {
			return fmt.Errorf("pep node %q of %q: %w", n.Node, user, store.ErrExists)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: create pep node: %w", err)
	}
	return nil
}

// PEPNode implements store.PEP.
func (s *Store) PEPNode(ctx context.Context, user, node string) (store.PEPNode, error) {
	n := store.PEPNode{Node: node}
	err := s.db.QueryRowContext(ctx, `SELECT config FROM pep_nodes WHERE user = ? AND node = ?`, user, node).Scan(&n.Config)
	if errors.Is(err, sql.ErrNoRows) {
		return n, notFound("pep node %q of %q", node, user)
	}
	if err != nil {
		return n, fmt.Errorf("sqlite: pep node: %w", err)
	}
	return n, nil
}

// PEPNodes implements store.PEP.
func (s *Store) PEPNodes(ctx context.Context, user string) ([]store.PEPNode, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT node, config FROM pep_nodes WHERE user = ? ORDER BY node`, user)
	if err != nil {
		return nil, fmt.Errorf("sqlite: pep nodes: %w", err)
	}
	defer rows.Close()
	var out []store.PEPNode
	for rows.Next() {
		var n store.PEPNode
		if err := rows.Scan(&n.Node, &n.Config); err != nil {
			return nil, fmt.Errorf("sqlite: pep nodes: %w", err)
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: pep nodes: %w", err)
	}
	return out, nil
}

// SetPEPNodeConfig implements store.PEP.
func (s *Store) SetPEPNodeConfig(ctx context.Context, user, node string, config []byte, maxItems int) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE pep_nodes SET config = ? WHERE user = ? AND node = ?`, nonNil(config), user, node)
		if err != nil {
			return err
		}
		if k, err := res.RowsAffected(); err != nil {
			return err
		} else if k == 0 {
			return notFound("pep node %q of %q", node, user)
		}
		return trim(ctx, tx, user, node, maxItems)
	})
	if err != nil {
		return fmt.Errorf("sqlite: configure pep node: %w", err)
	}
	return nil
}

// DeletePEPNode implements store.PEP; the items go with it (ON DELETE CASCADE).
func (s *Store) DeletePEPNode(ctx context.Context, user, node string) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM pep_nodes WHERE user = ? AND node = ?`, user, node)
		if err != nil {
			return err
		}
		if k, err := res.RowsAffected(); err != nil {
			return err
		} else if k == 0 {
			return notFound("pep node %q of %q", node, user)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: delete pep node: %w", err)
	}
	return nil
}

// PublishPEPItem implements store.PEP. Deleting and re-inserting a
// republished id gives it a new seq, so it becomes the newest.
func (s *Store) PublishPEPItem(ctx context.Context, user, node string, it store.PEPItem, maxItems int) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		if err := nodeExists(ctx, tx, user, node); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM pep_items WHERE user = ? AND node = ? AND item_id = ?`, user, node, it.ID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `
INSERT INTO pep_items (user, node, item_id, publisher, published, payload) VALUES (?, ?, ?, ?, ?, ?)`,
			user, node, it.ID, it.Publisher, toDB(it.Published), nonNil(it.Payload)); err != nil {
			return err
		}
		return trim(ctx, tx, user, node, maxItems)
	})
	if err != nil {
		return fmt.Errorf("sqlite: publish pep item: %w", err)
	}
	return nil
}

// PEPItems implements store.PEP. The node check and the item query share
// one read transaction, so a concurrent delete cannot make an existing
// node look empty.
func (s *Store) PEPItems(ctx context.Context, user, node string, ids []string, max int) ([]store.PEPItem, error) {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("sqlite: pep items: %w", err)
	}
	defer tx.Rollback()
	if err := nodeExists(ctx, tx, user, node); err != nil {
		return nil, err
	}
	var rows *sql.Rows
	if len(ids) > 0 {
		args := []any{user, node}
		for _, id := range ids {
			args = append(args, id)
		}
		rows, err = tx.QueryContext(ctx, `
SELECT item_id, publisher, published, payload FROM pep_items
WHERE user = ? AND node = ? AND item_id IN (?`+strings.Repeat(", ?", len(ids)-1)+`) ORDER BY seq`, args...)
	} else {
		if max <= 0 {
			max = -1
		}
		rows, err = tx.QueryContext(ctx, `
SELECT item_id, publisher, published, payload FROM (
	SELECT seq, item_id, publisher, published, payload FROM pep_items
	WHERE user = ? AND node = ? ORDER BY seq DESC LIMIT ?) ORDER BY seq`, user, node, max)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: pep items: %w", err)
	}
	defer rows.Close()
	var out []store.PEPItem
	for rows.Next() {
		var it store.PEPItem
		var at int64
		if err := rows.Scan(&it.ID, &it.Publisher, &at, &it.Payload); err != nil {
			return nil, fmt.Errorf("sqlite: pep items: %w", err)
		}
		it.Published = fromDB(at)
		out = append(out, it)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: pep items: %w", err)
	}
	return out, nil
}

// RetractPEPItem implements store.PEP.
func (s *Store) RetractPEPItem(ctx context.Context, user, node, id string) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		if err := nodeExists(ctx, tx, user, node); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM pep_items WHERE user = ? AND node = ? AND item_id = ?`, user, node, id)
		if err != nil {
			return err
		}
		if k, err := res.RowsAffected(); err != nil {
			return err
		} else if k == 0 {
			return notFound("pep item %q", id)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: retract pep item: %w", err)
	}
	return nil
}

// PurgePEPItems implements store.PEP.
func (s *Store) PurgePEPItems(ctx context.Context, user, node string) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		if err := nodeExists(ctx, tx, user, node); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM pep_items WHERE user = ? AND node = ?`, user, node)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: purge pep node: %w", err)
	}
	return nil
}

// PrivateXML implements store.PEP.
func (s *Store) PrivateXML(ctx context.Context, user, ns string) ([]byte, error) {
	var b []byte
	err := s.db.QueryRowContext(ctx, `SELECT data FROM private_xml WHERE user = ? AND ns = ?`, user, ns).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("private xml %q of %q", ns, user)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: private xml: %w", err)
	}
	return b, nil
}

// SetPrivateXML implements store.PEP.
func (s *Store) SetPrivateXML(ctx context.Context, user, ns string, data []byte) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		if err := userExists(ctx, tx, user); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `
INSERT INTO private_xml (user, ns, data) VALUES (?, ?, ?)
ON CONFLICT (user, ns) DO UPDATE SET data = excluded.data`, user, ns, nonNil(data))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: set private xml: %w", err)
	}
	return nil
}

// VCard implements store.PEP.
func (s *Store) VCard(ctx context.Context, user string) ([]byte, error) {
	var b []byte
	err := s.db.QueryRowContext(ctx, `SELECT data FROM vcards WHERE user = ?`, user).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("vcard of %q", user)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: vcard: %w", err)
	}
	return b, nil
}

// SetVCard implements store.PEP.
func (s *Store) SetVCard(ctx context.Context, user string, data []byte) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		if err := userExists(ctx, tx, user); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `
INSERT INTO vcards (user, data) VALUES (?, ?)
ON CONFLICT (user) DO UPDATE SET data = excluded.data`, user, nonNil(data))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: set vcard: %w", err)
	}
	return nil
}

// CapsInfo implements store.PEP.
func (s *Store) CapsInfo(ctx context.Context, key string) ([]byte, error) {
	var b []byte
	err := s.db.QueryRowContext(ctx, `SELECT info FROM caps WHERE key = ?`, key).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("caps %q", key)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: caps: %w", err)
	}
	return b, nil
}

// PutCapsInfo implements store.PEP. A verified hash always names the same
// info, so an existing row is kept.
func (s *Store) PutCapsInfo(ctx context.Context, key string, info []byte) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO caps (key, info) VALUES (?, ?) ON CONFLICT DO NOTHING`, key, nonNil(info))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: put caps: %w", err)
	}
	return nil
}
