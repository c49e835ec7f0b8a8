package store

import "context"

// PrivateLister lists an account's private XML (XEP-0049) namespaces: what
// a full export (package portable) needs and the protocol never asks
// (a client reads private XML by namespace). Both stores implement it; it
// is not part of Store, so wrappers need not.
type PrivateLister interface {
	// PrivateXMLNamespaces returns the namespaces user has private XML
	// under, sorted; none for an unknown account.
	PrivateXMLNamespaces(ctx context.Context, user string) ([]string, error)
}
