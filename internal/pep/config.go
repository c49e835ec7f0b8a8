package pep

import (
	"encoding/json"
	"slices"
	"strconv"

	"bluetick/internal/jid"
	"bluetick/internal/stanza"
	"bluetick/internal/xmlstream"
)

// Access models (XEP-0060 §4.5). "authorize" is not offered: it needs
// subscription approval, which implicit PEP subscriptions do not have.
const (
	AccessOpen      = "open"
	AccessPresence  = "presence"
	AccessRoster    = "roster"
	AccessWhitelist = "whitelist"
)

// When the last published item goes to a new subscriber or a newly
// available resource (pubsub#send_last_published_item).
const (
	SendNever            = "never"
	SendOnSub            = "on_sub"
	SendOnSubAndPresence = "on_sub_and_presence"
)

// MaxItemsLimit is the most items a node keeps: what pubsub#max_items
// "max" means here. Bookmarks (XEP-0402) keep one item per bookmark; a
// thousand is far beyond what any client sends and bounds what one account
// can store per node.
const MaxItemsLimit = 1000

// Config is a node's configuration, stored as JSON in the store.
type Config struct {
	Title        string   `json:"title,omitempty"`
	Access       string   `json:"access"`
	RosterGroups []string `json:"roster_groups,omitempty"`
	// MaxItems is how many items the node keeps; 0 means "max"
	// (MaxItemsLimit).
	MaxItems      int    `json:"max_items"`
	Persist       bool   `json:"persist"`
	SendLast      string `json:"send_last"`
	NotifyRetract bool   `json:"notify_retract"`
	// Members are the bare JIDs with affiliation member: on a whitelist
	// node, the only ones besides the owner who may see it.
	Members []string `json:"members,omitempty"`
}

// defaultConfig is a new node's configuration (XEP-0163 §4.1: presence
// access, one item, last item on subscription and presence).
func defaultConfig() Config {
	return Config{Access: AccessPresence, MaxItems: 1, Persist: true, SendLast: SendOnSubAndPresence, NotifyRetract: true}
}

// keep is the item limit to give the store.
func (c Config) keep() int {
	if c.MaxItems <= 0 || c.MaxItems > MaxItemsLimit {
		return MaxItemsLimit
	}
	return c.MaxItems
}

func (c Config) marshal() []byte {
	b, _ := json.Marshal(c)
	return b
}

func unmarshalConfig(b []byte) Config {
	c := defaultConfig()
	_ = json.Unmarshal(b, &c) // a broken config falls back to the defaults: presence access, never wider
	switch c.Access {
	case AccessOpen, AccessPresence, AccessRoster, AccessWhitelist:
	default:
		c.Access = AccessWhitelist
	}
	return c
}

// Form field names.
const (
	fTitle         = "pubsub#title"
	fAccess        = "pubsub#access_model"
	fRosterGroups  = "pubsub#roster_groups_allowed"
	fMaxItems      = "pubsub#max_items"
	fPersist       = "pubsub#persist_items"
	fSendLast      = "pubsub#send_last_published_item"
	fNotifyRetract = "pubsub#notify_retract"
	// Fixed: every node delivers notifications with payloads, and only
	// the owner publishes.
	fDeliverNotif    = "pubsub#deliver_notifications"
	fDeliverPayloads = "pubsub#deliver_payloads"
	fPublishModel    = "pubsub#publish_model"
	// Also fixed, and true of every node: deletion is notified, events
	// are headline messages, and only available resources get them.
	fNotifyDelete  = "pubsub#notify_delete"
	fNotifType     = "pubsub#notification_type"
	fPresenceBased = "pubsub#presence_based_delivery"
)

func boolString(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func parseBool(v string) (bool, bool) {
	switch v {
	case "1", "true":
		return true, true
	case "0", "false":
		return false, true
	}
	return false, false
}

// form renders the configuration as a XEP-0060 §8.2 node_config form.
func (c Config) form(typ string) *xmlstream.Element {
	x := xmlstream.New(NSData, "x", "type", typ)
	field(x, "hidden", "FORM_TYPE", NSNodeConfig)
	field(x, "text-single", fTitle, c.Title)
	listField(x, "list-single", fAccess, []string{AccessOpen, AccessPresence, AccessRoster, AccessWhitelist}, c.Access)
	field(x, "list-multi", fRosterGroups, c.RosterGroups...)
	max := "max"
	if c.MaxItems > 0 {
		max = strconv.Itoa(c.MaxItems)
	}
	field(x, "text-single", fMaxItems, max)
	field(x, "boolean", fPersist, boolString(c.Persist))
	listField(x, "list-single", fSendLast, []string{SendNever, SendOnSub, SendOnSubAndPresence}, c.SendLast)
	field(x, "boolean", fNotifyRetract, boolString(c.NotifyRetract))
	field(x, "boolean", fDeliverNotif, "1")
	field(x, "boolean", fDeliverPayloads, "1")
	listField(x, "list-single", fPublishModel, []string{"publishers"}, "publishers")
	field(x, "boolean", fNotifyDelete, "1")
	listField(x, "list-single", fNotifType, []string{"headline"}, "headline")
	field(x, "boolean", fPresenceBased, "1")
	return x
}

// setting is one parsed form field: apply writes it into a Config, equal
// compares it with one (for publish-options preconditions).
type setting struct {
	apply func(c *Config)
	equal func(c Config) bool
}

// parseSetting checks one field's values. An unknown field or a value the
// service cannot honour is an error: silently ignoring it would give the
// client a node that is not what it asked for (say, wider access).
func parseSetting(name string, vals []string) (setting, error) {
	one := func() (string, error) {
		if len(vals) != 1 {
			return "", stanza.NewError("not-acceptable", name+" takes exactly one value")
		}
		return vals[0], nil
	}
	bad := func(v string) error {
		return stanza.NewError("not-acceptable", "unsupported value "+strconv.Quote(v)+" for "+name)
	}
	switch name {
	case fTitle:
		v := ""
		if len(vals) > 0 {
			v = vals[0]
		}
		return setting{func(c *Config) { c.Title = v }, func(c Config) bool { return c.Title == v }}, nil
	case fAccess:
		v, err := one()
		if err != nil {
			return setting{}, err
		}
		switch v {
		case AccessOpen, AccessPresence, AccessRoster, AccessWhitelist:
		default:
			return setting{}, bad(v)
		}
		return setting{func(c *Config) { c.Access = v }, func(c Config) bool { return c.Access == v }}, nil
	case fRosterGroups:
		groups := slices.Clone(vals)
		slices.Sort(groups)
		groups = slices.Compact(groups)
		return setting{func(c *Config) { c.RosterGroups = groups }, func(c Config) bool {
			g := slices.Clone(c.RosterGroups)
			slices.Sort(g)
			return slices.Equal(g, groups)
		}}, nil
	case fMaxItems:
		v, err := one()
		if err != nil {
			return setting{}, err
		}
		n := 0
		if v != "max" {
			n, err = strconv.Atoi(v)
			if err != nil || n < 1 || n > MaxItemsLimit {
				return setting{}, bad(v)
			}
		}
		return setting{func(c *Config) { c.MaxItems = n }, func(c Config) bool { return c.keep() == (Config{MaxItems: n}).keep() }}, nil
	case fPersist, fNotifyRetract:
		v, err := one()
		if err != nil {
			return setting{}, err
		}
		b, ok := parseBool(v)
		if !ok {
			return setting{}, bad(v)
		}
		if name == fPersist {
			return setting{func(c *Config) { c.Persist = b }, func(c Config) bool { return c.Persist == b }}, nil
		}
		return setting{func(c *Config) { c.NotifyRetract = b }, func(c Config) bool { return c.NotifyRetract == b }}, nil
	case fSendLast:
		v, err := one()
		if err != nil {
			return setting{}, err
		}
		switch v {
		case SendNever, SendOnSub, SendOnSubAndPresence:
		default:
			return setting{}, bad(v)
		}
		return setting{func(c *Config) { c.SendLast = v }, func(c Config) bool { return c.SendLast == v }}, nil
	case fDeliverNotif, fDeliverPayloads, fNotifyDelete, fPresenceBased:
		v, err := one()
		if err != nil {
			return setting{}, err
		}
		if b, ok := parseBool(v); !ok || !b {
			return setting{}, bad(v)
		}
		return setting{func(*Config) {}, func(Config) bool { return true }}, nil
	case fPublishModel, fNotifType:
		v, err := one()
		if err != nil {
			return setting{}, err
		}
		if (name == fPublishModel && v != "publishers") || (name == fNotifType && v != "headline") {
			return setting{}, bad(v)
		}
		return setting{func(*Config) {}, func(Config) bool { return true }}, nil
	}
	return setting{}, stanza.NewError("not-acceptable", "unsupported node option "+name)
}

// settings parses a submitted form of the given FORM_TYPE into settings.
func settings(x *xmlstream.Element, formType string) ([]setting, error) {
	f, err := parseForm(x)
	if err != nil {
		return nil, err
	}
	if f.typ != "submit" {
		return nil, stanza.NewError("bad-request", "the form must be of type submit")
	}
	if ft := f.formType(); ft != formType {
		return nil, stanza.NewError("bad-request", "FORM_TYPE must be "+formType)
	}
	var out []setting
	for _, name := range f.order {
		if name == "FORM_TYPE" {
			continue
		}
		st, err := parseSetting(name, f.fields[name])
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// configure applies a node_config form to c.
func configure(c Config, x *xmlstream.Element) (Config, error) {
	ss, err := settings(x, NSNodeConfig)
	if err != nil {
		return c, err
	}
	for _, s := range ss {
		s.apply(&c)
	}
	return c, nil
}

// publishOptions parses <publish-options/>: the preconditions of a
// publish (XEP-0060 §7.1.5). An unknown field or impossible value fails
// the publish with precondition-not-met.
func publishOptions(po *xmlstream.Element) ([]setting, error) {
	x := po.Child(NSData, "x")
	if x == nil {
		return nil, nil // <publish-options/> without a form: no preconditions
	}
	ss, err := settings(x, NSPublishOpts)
	if err != nil {
		se := stanza.AsError(err)
		if se.Condition == "not-acceptable" {
			return nil, psError("conflict", "precondition-not-met", se.Text)
		}
		return nil, psError("bad-request", "invalid-options", se.Text)
	}
	return ss, nil
}

// member reports whether j (bare) is a member of the node.
func (c Config) member(j jid.JID) bool {
	return slices.Contains(c.Members, j.String())
}
