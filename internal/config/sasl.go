package config

// SASL chooses the password mechanisms offered to clients (package auth).
type SASL struct {
	// SCRAMSHA256 offers SCRAM-SHA-256 (and SCRAM-SHA-256-PLUS). Every
	// account created or given a password on Bluetick has credentials
	// for both SCRAM-SHA-1 and SCRAM-SHA-256; accounts imported from
	// Prosody or ejabberd (bluetick import) may have only SCRAM-SHA-1,
	// and a client that picks SCRAM-SHA-256 because it is offered cannot
	// log in to them. Turning it off makes such clients use SCRAM-SHA-1
	// until the imported users have set their passwords again.
	SCRAMSHA256 bool `toml:"scram_sha256"`
}

// DefaultSASL is the [sasl] section's default.
func DefaultSASL() SASL { return SASL{SCRAMSHA256: true} }
