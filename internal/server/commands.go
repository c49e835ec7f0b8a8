package server

import (
	"context"

	"bluetick/internal/jid"
	"bluetick/internal/stanza"
	"bluetick/internal/xmlstream"
)

// NSCommands is XEP-0050 ad-hoc commands.
const NSCommands = "http://jabber.org/protocol/commands"

// CommandHandler runs one stage of an ad-hoc command: it gets the
// requester's full JID and the <command/> of the IQ set, and returns the
// <command/> to answer with, or an error that becomes the stanza error.
type CommandHandler func(ctx context.Context, from jid.JID, cmd *xmlstream.Element) (*xmlstream.Element, error)

type command struct {
	node, name string
	h          CommandHandler
	// allow, if set, says who may see and run the command (XEP-0133's
	// admin commands); others do not find it in disco and get forbidden.
	allow func(jid.JID) bool
}

func (c *command) allowed(from jid.JID) bool { return c.allow == nil || c.allow(from) }

// Command offers an XEP-0050 command on the server's domain, where clients
// look for the server's commands: it is listed in disco#items of the node
// http://jabber.org/protocol/commands, described by disco#info on its own
// node, and executed by IQ sets of <command node=.../> to the domain.
// Every command runs on behalf of the requesting account. Register
// commands at startup, before the server takes sessions.
func (m *Mux) Command(node, name string, h CommandHandler) {
	m.restrictedCommand(node, name, nil, h)
}

// restrictedCommand is Command for the requesters allow accepts only.
func (m *Mux) restrictedCommand(node, name string, allow func(jid.JID) bool, h CommandHandler) {
	if len(m.commands) == 0 {
		m.Handle("set", NSCommands, "command", ToServer, NSCommands, m.execute)
	}
	m.commands = append(m.commands, command{node, name, h, allow})
}

func (m *Mux) command(node string) *command {
	for i := range m.commands {
		if m.commands[i].node == node {
			return &m.commands[i]
		}
	}
	return nil
}

func (m *Mux) execute(ctx context.Context, iq *IQ) (*xmlstream.Element, error) {
	c := m.command(iq.Payload.Attr("node"))
	if c == nil {
		return nil, stanza.NewError("item-not-found", "no such command")
	}
	if !c.allowed(iq.From) {
		return nil, stanza.NewError("forbidden", "only the server's administrators may run this command")
	}
	return c.h(ctx, iq.From, iq.Payload)
}

// commandItems answers disco#items of the commands node (XEP-0050 §2.2).
func (m *Mux) commandItems(domain, from jid.JID) *xmlstream.Element {
	q := xmlstream.New(NSDiscoItems, "query", "node", NSCommands)
	for _, c := range m.commands {
		if !c.allowed(from) {
			continue
		}
		q.Append(xmlstream.New(NSDiscoItems, "item", "jid", domain.String(), "node", c.node, "name", c.name))
	}
	return q
}

// commandInfo answers disco#info of the commands node or of one command's
// node (XEP-0050 §2.2, §2.3), or returns nil for any other node and for
// a command from may not see.
func (m *Mux) commandInfo(node string, from jid.JID) *xmlstream.Element {
	q := xmlstream.New(NSDiscoInfo, "query", "node", node)
	switch c := m.command(node); {
	case node == NSCommands && len(m.commands) > 0:
		q.Append(xmlstream.New(NSDiscoInfo, "identity", "category", "automation", "type", "command-list", "name", "Commands"))
	case c != nil && c.allowed(from):
		q.Append(xmlstream.New(NSDiscoInfo, "identity", "category", "automation", "type", "command-node", "name", c.name))
		q.Append(xmlstream.New(NSDiscoInfo, "feature", "var", NSCommands))
		q.Append(xmlstream.New(NSDiscoInfo, "feature", "var", "jabber:x:data"))
	default:
		return nil
	}
	return q
}
