package config

import (
	"errors"
	"time"
)

// Fast is XEP-0484 FAST: after a password login a client may ask for a
// token and log in with it afterwards in a single round trip, without
// keeping the password (package fast, docs/devices.md).
type Fast struct {
	// Enabled offers the HT-* token mechanisms in SASL2 and issues
	// tokens. Off: no new tokens, and existing ones are refused.
	Enabled bool `toml:"enabled"`
	// TokenLifetime is how long a token stays valid. A client that logs
	// in with a token that has less than half of it left gets a fresh one,
	// so a device used at least once per half lifetime never has to type
	// the password again; one left unused longer is logged out. Shorter
	// limits the damage of a lost device, longer logs out fewer idle ones.
	TokenLifetime Duration `toml:"token_lifetime"`
	// MaxTokensPerAccount caps the clients (devices) holding tokens per
	// account; a new one revokes the tokens of the one used least
	// recently. A client in the middle of a rotation holds two tokens
	// but counts once. 0: no cap.
	MaxTokensPerAccount int `toml:"max_tokens_per_account"`
}

// DefaultFast is the [fast] section's default.
func DefaultFast() Fast {
	return Fast{Enabled: true, TokenLifetime: Duration{14 * 24 * time.Hour}, MaxTokensPerAccount: 10}
}

func (f *Fast) validate() error {
	if f.TokenLifetime.Duration < time.Hour {
		return errors.New("config: fast.token_lifetime must be at least 1h (e.g. \"14d\")")
	}
	if f.MaxTokensPerAccount < 0 {
		return errors.New("config: fast.max_tokens_per_account must be 0 (no cap) or more")
	}
	return nil
}
