package gateway

import (
	"context"
	"crypto/ecdh"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"bluetick/internal/dataform"
	"bluetick/internal/jid"
	"bluetick/internal/stanza"
	"bluetick/internal/store"
	"bluetick/internal/xmlstream"
)

// A command is one XEP-0050 ad-hoc command of the gateway. Each is
// single-stage: a client may submit the form with its first execute (as
// Conversations does with its app server), or execute without a form, get
// the form, and submit it.
type command struct {
	node, name string
	provider   string // "" for unregister-push
	fields     []field
}

type field struct {
	name, label string
	required    bool
}

var allCommands = []command{
	{"register-push-fcm", "Register an Android device (Firebase Cloud Messaging)", "fcm",
		[]field{{"token", "FCM registration token", true}, {"device-id", "Device id", false}}},
	{"register-push-apns", "Register an Apple device (APNs)", "apns",
		[]field{{"token", "APNs device token (hex)", true}, {"device-id", "Device id", false}}},
	{"register-push-webpush", "Register a Web Push or UnifiedPush subscription", "webpush",
		[]field{{"endpoint", "Push endpoint URL", true}, {"p256dh", "Subscriber public key (base64url)", true}, {"auth", "Auth secret (base64url)", true}, {"device-id", "Device id", false}}},
	{"register-push-webhook", "Register a webhook", "webhook",
		[]field{{"url", "Webhook URL", true}, {"device-id", "Device id", false}}},
	{"unregister-push", "Unregister a device", "",
		[]field{{"node", "Node returned at registration", false}, {"device-id", "Device id", false}}},
}

// commands returns the commands of the configured providers.
func (g *Gateway) commands() []*command {
	var out []*command
	for i := range allCommands {
		c := &allCommands[i]
		if c.provider == "" || g.providers[c.provider] != nil {
			out = append(out, c)
		}
	}
	return out
}

func (g *Gateway) findCommand(node string) *command {
	for _, c := range g.commands() {
		if c.node == node {
			return c
		}
	}
	return nil
}

// maxFieldLen bounds one submitted value (tokens and URLs are far shorter).
const maxFieldLen = 2048

func (g *Gateway) command(ctx context.Context, from jid.JID, p *xmlstream.Element) (*xmlstream.Element, error) {
	c := g.findCommand(p.Attr("node"))
	if c == nil {
		return nil, stanza.NewError("item-not-found", "no such command on the push gateway")
	}
	if from.Domain() != g.domain || from.Local() == "" {
		return nil, stanza.NewError("forbidden", "only accounts of "+g.domain+" may register devices")
	}
	sid := p.Attr("sessionid")
	if sid == "" {
		sid, _, _ = newSecret()
	}
	res := xmlstream.New(NSCommands, "command", "node", c.node, "sessionid", sid)
	switch p.Attr("action") {
	case "", "execute", "complete":
	case "cancel":
		res.SetAttr("status", "canceled")
		return res, nil
	default:
		return nil, &stanza.Error{Type: "modify", Condition: "bad-request", Text: "this command has one stage: execute, complete or cancel",
			App: xmlstream.New(NSCommands, "bad-action")}
	}
	x := p.Child(dataform.NS, "x")
	if x == nil {
		// First stage: the form to fill.
		res.SetAttr("status", "executing")
		res.Append(xmlstream.New(NSCommands, "actions", "execute", "complete").Append(xmlstream.New(NSCommands, "complete")))
		f := dataform.New("form", "")
		f.Title = c.name
		for _, fl := range c.fields {
			f.Add(fl.name, "text-single", fl.label)
		}
		if wp, ok := g.providers["webpush"].(*WebPush); ok && c.provider == "webpush" {
			// The VAPID key the client subscribes with (applicationServerKey).
			f.Add("application-server-key", "fixed", "VAPID public key", b64.EncodeToString(wp.PublicKey()))
		}
		res.Append(f.Element())
		return res, nil
	}
	form, err := dataform.Parse(x)
	if err != nil || form.Type != "submit" {
		return nil, stanza.NewError("bad-request", "submit the command's data form (type='submit')")
	}
	vals := map[string]string{}
	for _, fl := range c.fields {
		v := strings.TrimSpace(form.Get(fl.name))
		if len(v) > maxFieldLen {
			return nil, stanza.NewError("not-acceptable", fl.name+" is too long")
		}
		if fl.required && v == "" {
			return nil, stanza.NewError("bad-request", "field "+fl.name+" is required")
		}
		vals[fl.name] = v
	}
	var out *dataform.Form
	if c.provider == "" {
		out, err = g.unregister(ctx, from.Local(), vals)
	} else {
		out, err = g.register(ctx, from.Local(), c.provider, vals)
	}
	if err != nil {
		return nil, err
	}
	res.SetAttr("status", "completed")
	res.Append(out.Element())
	return res, nil
}

func (g *Gateway) register(ctx context.Context, owner, provider string, v map[string]string) (*dataform.Form, error) {
	d := store.PushDevice{Owner: owner, DeviceID: v["device-id"], Provider: provider, Created: time.Now()}
	switch provider {
	case "fcm":
		d.Token = v["token"]
		if !tokenChars(d.Token, "-_:.") {
			return nil, stanza.NewError("not-acceptable", "not an FCM registration token")
		}
	case "apns":
		d.Token = strings.ToLower(v["token"])
		if _, err := hex.DecodeString(d.Token); err != nil || len(d.Token) < 32 || len(d.Token) > 400 {
			return nil, stanza.NewError("not-acceptable", "an APNs device token is hexadecimal")
		}
	case "webpush":
		d.Token = v["endpoint"]
		u, err := checkURL(d.Token, "https")
		if err == nil {
			err = g.checkHost(ctx, u)
		}
		if err != nil {
			return nil, g.refuse(owner, provider, "endpoint", d.Token, err)
		}
		if d.P256DH, err = decodeB64(v["p256dh"]); err != nil {
			return nil, stanza.NewError("not-acceptable", "p256dh is not base64url")
		}
		if _, err := ecdh.P256().NewPublicKey(d.P256DH); err != nil {
			return nil, stanza.NewError("not-acceptable", "p256dh is not an uncompressed P-256 public key")
		}
		if d.Auth, err = decodeB64(v["auth"]); err != nil || len(d.Auth) != 16 {
			return nil, stanza.NewError("not-acceptable", "auth must be 16 bytes, base64url")
		}
	case "webhook":
		d.Token = v["url"]
		wh, _ := g.providers["webhook"].(*Webhook)
		if wh == nil {
			return nil, stanza.NewError("not-acceptable", "webhooks are not configured")
		}
		u, err := wh.check(d.Token)
		if err == nil {
			err = g.checkHost(ctx, u)
		}
		if err != nil {
			return nil, g.refuse(owner, provider, "url", d.Token, err)
		}
	}
	old, err := g.st.PushDevices(ctx, owner)
	if err != nil {
		return nil, err
	}
	n := len(old)
	for _, o := range old {
		// A re-registration of the same device replaces its old node.
		if d.DeviceID != "" && o.DeviceID == d.DeviceID && o.Provider == provider {
			if _, err := g.st.DeletePushDevice(ctx, o.Node); err != nil {
				return nil, err
			}
			n--
		}
	}
	if n >= maxDevicesPerAcc {
		return nil, stanza.NewError("resource-constraint", "too many push devices registered for this account; unregister one")
	}
	node, secret, hash := newSecret()
	d.Node, d.SecretHash = node, hash
	if err := g.st.PutPushDevice(ctx, d); err != nil {
		return nil, err
	}
	g.log.Info("push: device registered", "owner", owner, "provider", provider, "node", node)
	return dataform.New("result", "").
		Add("jid", "jid-single", "App server", g.jid.String()).
		Add("node", "text-single", "Node", node).
		Add("secret", "text-private", "Secret", secret), nil
}

// checkHost resolves u's host now and checks its addresses with the guard
// (they are checked again at each connection).
func (g *Gateway) checkHost(ctx context.Context, u *url.URL) error {
	_, err := g.Guard.Resolve(ctx, u.Hostname())
	return err
}

// refuse turns a URL check's failure into the command's error: the
// guard's refusals and names that do not exist are not-acceptable, with
// the reason; a resolver that did not answer is a wait error.
func (g *Gateway) refuse(owner, provider, field, raw string, err error) error {
	reason := "dns"
	if re, ok := isRefused(err); ok {
		reason = re.Reason
	}
	var de *net.DNSError
	switch {
	case reason != "dns":
	case errors.As(err, &de) && de.IsNotFound:
		err = fmt.Errorf("host %s does not resolve", de.Name)
	default:
		g.log.Warn("push: registration: could not resolve a host", "owner", owner, "provider", provider, "err", err)
		return &stanza.Error{Type: "wait", Condition: "remote-server-timeout", Text: "could not resolve the " + field + "'s host now; try again later"}
	}
	g.metrics.refused(provider, "register", reason)
	if len(raw) > 200 {
		raw = raw[:200]
	}
	g.log.Info("push: registration refused", "owner", owner, "provider", provider, "reason", reason, field, raw, "err", err)
	return stanza.NewError("not-acceptable", field+" refused: "+err.Error())
}

func (g *Gateway) unregister(ctx context.Context, owner string, v map[string]string) (*dataform.Form, error) {
	if v["node"] == "" && v["device-id"] == "" {
		return nil, stanza.NewError("bad-request", "give the node or the device-id to unregister")
	}
	devs, err := g.st.PushDevices(ctx, owner)
	if err != nil {
		return nil, err
	}
	n := 0
	for _, d := range devs {
		if v["node"] != "" && d.Node == v["node"] || v["node"] == "" && d.DeviceID == v["device-id"] {
			if _, err := g.st.DeletePushDevice(ctx, d.Node); err != nil {
				return nil, err
			}
			n++
		}
	}
	if n == 0 {
		return nil, stanza.NewError("item-not-found", "no such device registered by this account")
	}
	return dataform.New("result", ""), nil
}

// tokenChars reports whether s is letters, digits and the given extra
// characters only (push tokens are; anything else is not a token).
func tokenChars(s, extra string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(extra, r)) {
			return false
		}
	}
	return s != ""
}

// decodeB64 accepts base64url with or without padding (as browsers hand
// out) and standard base64.
func decodeB64(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	if b, err := base64.RawURLEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.RawStdEncoding.DecodeString(s)
}
