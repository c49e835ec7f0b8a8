// Package gateway is Bluetick's built-in XEP-0357 push app server, served
// in-process at push.<domain>. Devices register with it through XEP-0050
// ad-hoc commands modelled on Conversations' app server ("p2"):
// register-push-fcm, register-push-apns, register-push-webpush,
// register-push-webhook and unregister-push; each registration returns a
// node and a secret that the client passes to its server in XEP-0357
// <enable/>. The server's publishes reach Publish directly (no network
// hop); the gateway checks the secret and hands the notification to the
// device's provider (FCM, APNs, Web Push or a webhook), retrying
// temporary failures and forgetting devices the provider reports gone.
package gateway

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"bluetick/internal/dataform"
	"bluetick/internal/jid"
	"bluetick/internal/server"
	"bluetick/internal/stanza"
	"bluetick/internal/store"
	"bluetick/internal/xmlstream"
)

// Namespaces.
const (
	NSPush           = "urn:xmpp:push:0"
	NSPubSub         = "http://jabber.org/protocol/pubsub"
	NSCommands       = "http://jabber.org/protocol/commands"
	NSDiscoInfo      = "http://jabber.org/protocol/disco#info"
	NSDiscoItems     = "http://jabber.org/protocol/disco#items"
	FormSummary      = "urn:xmpp:push:summary"
	FormPublishOpts  = "http://jabber.org/protocol/pubsub#publish-options"
	maxDevicesPerAcc = 20
)

// Gateway is the push app server of one XMPP domain.
type Gateway struct {
	jid       jid.JID // push.<domain>
	domain    string  // the XMPP domain whose users it serves
	st        store.Push
	providers map[string]Provider // by provider name: fcm, apns, webpush, webhook
	log       *slog.Logger

	// Guard checks the URLs devices register (Web Push endpoints,
	// webhook URLs). New sets one that allows no private address;
	// FromConfig one built from push.allow_private. The providers' HTTP
	// clients must use the same guard (Guard.HTTPClient).
	Guard *Guard

	// Retry policy for temporary failures.
	MaxRetries   int
	RetryTimeout time.Duration
	Backoff      time.Duration // first wait; doubles each retry

	metrics *Metrics
}

// New returns the gateway at push.<domain> with the given providers (nil
// entries are left out).
func New(domain string, st store.Push, providers map[string]Provider, log *slog.Logger) *Gateway {
	ps := map[string]Provider{}
	for n, p := range providers {
		if p != nil {
			ps[n] = p
		}
	}
	guard, _ := NewGuard(nil)
	return &Gateway{
		jid: jid.MustParse("push." + domain), domain: domain, st: st, providers: ps, log: log, Guard: guard,
		MaxRetries: 4, RetryTimeout: time.Minute, Backoff: time.Second, metrics: newMetrics(),
	}
}

// JID is the gateway's address, push.<domain>.
func (g *Gateway) JID() jid.JID { return g.jid }

// Metrics are the gateway's counters.
func (g *Gateway) Metrics() *Metrics { return g.metrics }

// HandleIQ answers the IQs clients send to push.<domain> (server.Component).
func (g *Gateway) HandleIQ(ctx context.Context, iq *server.IQ) (*xmlstream.Element, error) {
	p := iq.Payload
	switch {
	case iq.Type == "get" && p.Space == NSDiscoInfo && p.Name == "query":
		return g.discoInfo(p.Attr("node"))
	case iq.Type == "get" && p.Space == NSDiscoItems && p.Name == "query":
		return g.discoItems(p.Attr("node"))
	case iq.Type == "set" && p.Space == NSCommands && p.Name == "command":
		return g.command(ctx, iq.From, p)
	case p.Space == NSPubSub:
		return nil, stanza.NewError("forbidden", "only the server publishes to its push gateway")
	}
	return nil, stanza.ErrServiceUnavailable
}

func (g *Gateway) discoInfo(node string) (*xmlstream.Element, error) {
	q := xmlstream.New(NSDiscoInfo, "query", "node", node)
	switch node {
	case "":
		q.Append(xmlstream.New(NSDiscoInfo, "identity", "category", "pubsub", "type", "push", "name", "Bluetick push gateway"))
		for _, f := range []string{NSDiscoInfo, NSDiscoItems, NSCommands, NSPush} {
			q.Append(xmlstream.New(NSDiscoInfo, "feature", "var", f))
		}
	case NSCommands:
		q.Append(xmlstream.New(NSDiscoInfo, "identity", "category", "automation", "type", "command-list"))
	default:
		c := g.findCommand(node)
		if c == nil {
			return nil, stanza.ErrItemNotFound
		}
		q.Append(xmlstream.New(NSDiscoInfo, "identity", "category", "automation", "type", "command-node", "name", c.name))
		q.Append(xmlstream.New(NSDiscoInfo, "feature", "var", NSCommands))
		q.Append(xmlstream.New(NSDiscoInfo, "feature", "var", dataform.NS))
	}
	return q, nil
}

func (g *Gateway) discoItems(node string) (*xmlstream.Element, error) {
	q := xmlstream.New(NSDiscoItems, "query", "node", node)
	switch node {
	case "":
	case NSCommands:
		for _, c := range g.commands() {
			q.Append(xmlstream.New(NSDiscoItems, "item", "jid", g.jid.String(), "node", c.node, "name", c.name))
		}
	default:
		return nil, stanza.ErrItemNotFound
	}
	return q, nil
}

// Errors Publish returns, as the app server would answer a publish IQ
// (XEP-0357 §8): a node that does not exist or whose device is gone is
// item-not-found, a wrong secret forbidden — both tell the XMPP server to
// disable the registration — and a push the provider could not take now
// is resource-constraint (wait).
var (
	ErrNoNode     = stanza.NewError("item-not-found", "no such push node (the device was unregistered)")
	ErrBadSecret  = stanza.NewError("forbidden", "wrong or missing publish-options secret")
	ErrNotPublish = stanza.NewError("bad-request", "expected <pubsub><publish node='…'><item><notification xmlns='urn:xmpp:push:0'/>")
)

// Publish takes a XEP-0357 publish IQ from the XMPP server (in-process)
// and delivers the notification. It returns nil when the provider
// accepted it, or a *stanza.Error as the IQ error the server would get.
func (g *Gateway) Publish(ctx context.Context, iq *xmlstream.Element) error {
	from, err := jid.Parse(iq.Attr("from"))
	if err != nil || from.Domain() != g.domain {
		return stanza.NewError("forbidden", "publishes are accepted only from "+g.domain)
	}
	n, opts, err := ParsePublish(iq)
	if err != nil {
		return err
	}
	d, err := g.st.PushDevice(ctx, n.Node)
	if errors.Is(err, store.ErrNotFound) {
		return ErrNoNode
	}
	if err != nil {
		return err
	}
	if d.Owner != from.Local() {
		// Nodes are per account: another account's publish is refused
		// even with the right secret.
		return ErrBadSecret
	}
	sum := sha256.Sum256([]byte(opts["secret"]))
	if opts["secret"] == "" || subtle.ConstantTimeCompare(sum[:], d.SecretHash) != 1 {
		return ErrBadSecret
	}
	p := g.providers[d.Provider]
	if p == nil {
		// The provider was configured when the device registered and is not
		// any more: the device cannot be reached.
		g.metrics.failed(d.Provider)
		return stanza.NewError("item-not-found", "the push provider "+d.Provider+" is no longer configured")
	}
	err = g.send(ctx, p, d, n)
	var refused *RefusedError
	switch {
	case err == nil:
		g.metrics.sent(d.Provider)
		return nil
	case errors.Is(err, ErrUnregistered):
		// Only the push service's own answer (404/410, UNREGISTERED,
		// BadDeviceToken) removes a device.
		g.metrics.unregistered(d.Provider)
		g.log.Info("push: device unregistered by its provider, removing it", "provider", d.Provider, "owner", d.Owner, "node", d.Node)
		if _, err := g.st.DeletePushDevice(ctx, d.Node); err != nil {
			g.log.Error("push: removing an unregistered device", "node", d.Node, "err", err)
		}
		return ErrNoNode
	case errors.As(err, &refused):
		// The guard refused the device's URL (registered before the
		// guard, allowed_urls or allow_private changed since, or its name
		// now resolves to a private address): nothing was contacted, so
		// nothing is known about the device. It is kept, and so is the
		// registration (a wait error), in case the operator allows it.
		g.metrics.refused(d.Provider, "send", refused.Reason)
		g.log.Warn("push: endpoint refused by the address guard, push not sent (device kept)", "provider", d.Provider, "owner", d.Owner,
			"node", d.Node, "reason", refused.Reason, "err", refused.Error())
		return &stanza.Error{Type: "wait", Condition: "policy-violation", Text: "the device's push URL is refused by the server: " + refused.Error()}
	default:
		g.metrics.failed(d.Provider)
		msg := "push: delivery failed after retries (device kept)"
		if !retryable(err) {
			msg = "push: delivery failed, not retryable (device kept)"
		}
		g.log.Warn(msg, "provider", d.Provider, "owner", d.Owner, "node", d.Node, "err", err)
		return &stanza.Error{Type: "wait", Condition: "resource-constraint", Text: "the push provider did not take the notification"}
	}
}

// send delivers with bounded retries: temporary failures (5xx, 429,
// transport errors) are retried after 1s, 2s, 4s ... (or the provider's
// Retry-After, if longer), at most MaxRetries times and within
// RetryTimeout.
func (g *Gateway) send(ctx context.Context, p Provider, d store.PushDevice, m Message) error {
	deadline := time.Now().Add(g.RetryTimeout)
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	wait := g.Backoff
	for attempt := 0; ; attempt++ {
		err := p.Send(ctx, d, m)
		if err == nil || !retryable(err) || attempt >= g.MaxRetries {
			return err
		}
		w := wait
		var he *HTTPError
		if errors.As(err, &he) && he.RetryAfter > w {
			w = he.RetryAfter
		}
		if time.Now().Add(w).After(deadline) {
			return err
		}
		g.metrics.retried(d.Provider)
		t := time.NewTimer(w)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait *= 2
	}
}

// ParsePublish reads a XEP-0357 publish IQ: the node and notification
// summary, and the publish-options fields.
func ParsePublish(iq *xmlstream.Element) (Message, map[string]string, error) {
	ps := iq.Child(NSPubSub, "pubsub")
	if ps == nil {
		return Message{}, nil, ErrNotPublish
	}
	pub := ps.Child(NSPubSub, "publish")
	if pub == nil || pub.Attr("node") == "" {
		return Message{}, nil, ErrNotPublish
	}
	m := Message{Node: pub.Attr("node")}
	if item := pub.Child(NSPubSub, "item"); item != nil {
		if note := item.Child(NSPush, "notification"); note != nil {
			if x := note.Child(dataform.NS, "x"); x != nil {
				f, err := dataform.Parse(x)
				if err != nil || f.FormType() != FormSummary {
					return Message{}, nil, stanza.NewError("bad-request", "the notification must be a urn:xmpp:push:summary data form")
				}
				if c := f.Get("message-count"); c != "" {
					n, err := strconv.Atoi(c)
					if err != nil || n < 0 {
						return Message{}, nil, stanza.NewError("bad-request", "message-count is not a number")
					}
					m.Count = n
				}
				m.Sender = f.Get("last-message-sender")
				m.Body = f.Get("last-message-body")
			}
		}
	}
	opts := map[string]string{}
	if po := ps.Child(NSPubSub, "publish-options"); po != nil {
		if x := po.Child(dataform.NS, "x"); x != nil {
			f, err := dataform.Parse(x)
			if err != nil || f.Type != "submit" && f.Type != "" || f.FormType() != FormPublishOpts {
				return Message{}, nil, stanza.NewError("bad-request", "publish-options must be a submitted "+FormPublishOpts+" form")
			}
			opts = f.Values()
		}
	}
	return m, opts, nil
}

// newSecret returns a node name and a secret with its hash.
func newSecret() (node, secret string, hash []byte) {
	var a [16]byte
	var b [24]byte
	rand.Read(a[:])
	rand.Read(b[:])
	node = hex.EncodeToString(a[:])
	secret = base64.RawURLEncoding.EncodeToString(b[:])
	sum := sha256.Sum256([]byte(secret))
	return node, secret, sum[:]
}
