package store

import (
	"context"
	"time"
)

// PushRegistration is one XEP-0357 <enable/>: a client of User asked to be
// woken through the app server Service, on its node Node, with the
// publish-options form fields in Options (XEP-0357 §5: typically the
// secret the app server checks). A user may hold several registrations
// (one per device); (User, Service, Node) identifies one.
type PushRegistration struct {
	User     string
	Resource string // the resource that enabled it (informational)
	Service  string // app server JID
	Node     string
	Options  map[string]string // publish-options fields (FORM_TYPE excluded)
	Created  time.Time
}

// PushDevice is one device registered with the built-in push app server
// (package push/gateway): the node it publishes to, the hash of the secret
// the publish must carry, and where the provider delivers.
type PushDevice struct {
	Node       string // random, unguessable; primary key
	Owner      string // account (localpart) that registered it
	DeviceID   string // the client's device id; a re-registration replaces the old node
	Provider   string // "fcm", "apns", "webpush" or "webhook"
	Token      string // FCM/APNs token, Web Push endpoint or webhook URL
	P256DH     []byte // Web Push: the subscriber's ECDH public key (uncompressed point)
	Auth       []byte // Web Push: the 16-byte auth secret
	SecretHash []byte // SHA-256 of the publish-options secret
	Created    time.Time
}

// Push holds XEP-0357 registrations and the gateway's devices. Both are
// deleted with their account (DeleteUser).
type Push interface {
	// PutPushRegistration inserts or replaces (by User, Service, Node) a
	// registration; ErrNotFound if the account does not exist.
	PutPushRegistration(ctx context.Context, r PushRegistration) error
	// DeletePushRegistrations removes the user's registrations for
	// service, only the one for node if node is not empty, and returns how
	// many were removed.
	DeletePushRegistrations(ctx context.Context, user, service, node string) (int, error)
	// PushRegistrations returns the user's registrations, oldest first.
	PushRegistrations(ctx context.Context, user string) ([]PushRegistration, error)

	// PutPushDevice inserts or replaces (by Node) a device; ErrNotFound if
	// the owner's account does not exist.
	PutPushDevice(ctx context.Context, d PushDevice) error
	// PushDevice returns the device of a node; ErrNotFound if there is none.
	PushDevice(ctx context.Context, node string) (PushDevice, error)
	// PushDevices returns the devices an account registered, oldest first.
	PushDevices(ctx context.Context, owner string) ([]PushDevice, error)
	// DeletePushDevice removes a device (no error if absent) and reports
	// whether it existed.
	DeletePushDevice(ctx context.Context, node string) (bool, error)
}
