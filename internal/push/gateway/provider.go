package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"bluetick/internal/store"
)

// Message is what one push tells a device. Sender and Body are empty
// unless the server's push.include_sender / include_body allow them.
type Message struct {
	Node   string `json:"node"`
	Count  int    `json:"count,omitempty"`
	Sender string `json:"sender,omitempty"`
	Body   string `json:"body,omitempty"`
}

// Provider delivers a push to one device through one push service. It
// returns nil once the service accepted the push, ErrUnregistered when the
// service says the token or subscription is gone for good, an *HTTPError
// for other answers, or a transport error.
type Provider interface {
	Send(ctx context.Context, d store.PushDevice, m Message) error
}

// ErrUnregistered: the push service no longer knows the device (app
// uninstalled, token rotated, subscription expired). The gateway deletes
// the device and the XMPP server disables the registration.
var ErrUnregistered = errors.New("push: device unregistered at the push service")

// HTTPError is an unexpected answer of a push service.
type HTTPError struct {
	Provider   string
	Status     int
	Reason     string        // the service's error code or body, shortened
	RetryAfter time.Duration // from Retry-After, if any
	body       string        // up to 4 KiB of the answer, for providers to parse
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("%s: HTTP %d: %s", e.Provider, e.Status, e.Reason)
}

// Temporary reports whether the push may succeed later (5xx, 429).
func (e *HTTPError) Temporary() bool {
	return e.Status >= 500 || e.Status == http.StatusTooManyRequests
}

// retryable: server errors, rate limits and transport failures
// (connection refused or reset, timeouts, DNS failures other than "no
// such host") are retried; everything else (bad request, auth,
// unregistered, refused by the guard, a name that does not exist) is
// final for this push.
func retryable(err error) bool {
	var he *HTTPError
	if errors.As(err, &he) {
		return he.Temporary()
	}
	var de *net.DNSError
	if errors.As(err, &de) && de.IsNotFound {
		return false
	}
	if _, ok := isRefused(err); ok {
		return false
	}
	return err != nil && !errors.Is(err, ErrUnregistered) && !errors.Is(err, context.Canceled) && !errors.Is(err, errPermanent)
}

// errPermanent marks failures retrying cannot fix (bad configuration,
// malformed device data, a payload too large). It is not ErrUnregistered:
// the device is kept.
var errPermanent = errors.New("permanent")

// httpError reads an error answer (at most 4 KiB of it).
func httpError(provider string, resp *http.Response) *HTTPError {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	e := &HTTPError{Provider: provider, Status: resp.StatusCode, Reason: string(b), body: string(b)}
	if len(e.Reason) > 200 {
		e.Reason = e.Reason[:200]
	}
	if s := resp.Header.Get("Retry-After"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n >= 0 {
			e.RetryAfter = time.Duration(n) * time.Second
		} else if t, err := http.ParseTime(s); err == nil {
			e.RetryAfter = time.Until(t)
		}
	}
	return e
}

// drain reads and closes a response body so the connection is reused.
func drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// payload is the JSON the data-carrying providers (webhook, Web Push,
// FCM data) deliver.
func payload(d store.PushDevice, m Message) []byte {
	b, _ := json.Marshal(struct {
		Message
		DeviceID string `json:"device_id,omitempty"`
	}{m, d.DeviceID})
	return b
}
