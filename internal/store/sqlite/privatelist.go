package sqlite

import (
	"context"
	"fmt"
)

// PrivateXMLNamespaces implements store.PrivateLister.
func (s *Store) PrivateXMLNamespaces(ctx context.Context, user string) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT ns FROM private_xml WHERE user = ? ORDER BY ns`, user)
	if err != nil {
		return nil, fmt.Errorf("sqlite: private xml namespaces: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var ns string
		if err := rows.Scan(&ns); err != nil {
			return nil, err
		}
		out = append(out, ns)
	}
	return out, rows.Err()
}
