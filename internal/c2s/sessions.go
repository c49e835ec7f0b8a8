package c2s

import (
	"net/netip"
	"slices"
	"strings"
	"time"

	"bluetick/internal/jid"
)

// SessionInfo is one client session of this node, as the metrics count
// them and the admin socket lists them (`bluetick user list --online`).
type SessionInfo struct {
	JID jid.JID // the bound full JID
	// Transport is tcp (no TLS), tls (STARTTLS or direct TLS), websocket
	// or bosh; none while hibernated.
	Transport string
	// State is active, inactive (XEP-0352) or hibernated (connection
	// lost, waiting for a XEP-0198 resumption).
	State  string
	Remote netip.Addr // the client's address; zero while hibernated
	Since  time.Time  // when the resource was bound on this node
}

// Sessions lists the node's sessions, attached or hibernated, sorted by
// JID.
func (s *Service) Sessions() []SessionInfo {
	s.rmu.Lock()
	out := make([]SessionInfo, 0, len(s.sessions))
	for _, o := range s.sessions {
		si := SessionInfo{JID: o.sess.JID(), Transport: "none", State: "hibernated", Since: o.since}
		if o.owner != nil {
			si.Transport, si.State, si.Remote = o.owner.t.Kind(), "active", o.owner.t.Remote()
			if o.sess.Inactive() {
				si.State = "inactive"
			}
		}
		out = append(out, si)
	}
	s.rmu.Unlock()
	slices.SortFunc(out, func(a, b SessionInfo) int { return strings.Compare(a.JID.String(), b.JID.String()) })
	return out
}
