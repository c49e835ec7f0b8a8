package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// PrivateXMLNamespaces implements store.PrivateLister.
func (s *Store) PrivateXMLNamespaces(ctx context.Context, user string) ([]string, error) {
	rows, _ := s.pool.Query(ctx, `SELECT ns FROM private_xml WHERE username = $1 ORDER BY ns`, user)
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, wrap(err, "private xml namespaces")
	}
	return out, nil
}
