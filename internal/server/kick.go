package server

import (
	"context"

	"bluetick/internal/jid"
)

// UserAgentSession is a session that knows the XEP-0388 <user-agent id/>
// its client authenticated with. Sessions that implement it can be ended
// per device by KickDevice; the others only with all of the account's.
type UserAgentSession interface {
	UserAgentID() string
}

// KickDevice ends the sessions, on every node, of user's client agentID
// (all of user's sessions if agentID is ""), except the session except
// (zero: none), with a not-authorized stream error, and returns how many
// it ended. It is the hook package fast calls after revoking a device's
// tokens. A session that does not implement UserAgentSession is never
// taken for a given agentID.
func (s *Server) KickDevice(ctx context.Context, user, agentID string, except jid.JID) int {
	bare, err := jid.New(user, s.Domain.Domain(), "")
	if err != nil {
		return 0
	}
	n := 0
	for _, r := range s.Router.Resources(bare) {
		if r.JID() == except {
			continue
		}
		if agentID != "" {
			a, ok := r.(UserAgentSession)
			if !ok || a.UserAgentID() != agentID {
				continue
			}
		}
		r.Kick("not-authorized", "this device was logged out")
		n++
	}
	return n
}
