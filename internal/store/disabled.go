package store

import "context"

// Disabling marks accounts disabled: a disabled account keeps everything
// it holds but cannot log in until it is enabled again (XEP-0133
// disable-user / reenable-user).
type Disabling interface {
	// SetUserDisabled disables or re-enables an account; ErrNotFound if
	// it does not exist.
	SetUserDisabled(ctx context.Context, user string, disabled bool) error
	// UserDisabled reports whether an account is disabled; false for an
	// account that does not exist.
	UserDisabled(ctx context.Context, user string) (bool, error)
}
