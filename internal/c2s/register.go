package c2s

import (
	"context"
	"errors"

	"bluetick/internal/auth"
	"bluetick/internal/jid"
	"bluetick/internal/server"
	"bluetick/internal/stanza"
	"bluetick/internal/store"
	"bluetick/internal/xmlstream"
)

// register answers XEP-0077 in-band registration before authentication,
// offered only when registration = "open".
func (st *stream) register(iq *xmlstream.Element) error {
	q := iq.Child(server.NSRegister, "query")
	reply := func(payload *xmlstream.Element, e *stanza.Error) error {
		if e != nil {
			return st.t.Write([]*xmlstream.Element{stanza.ErrorReply(iq, e)})
		}
		r := xmlstream.New(xmlstream.NSClient, "iq", "type", "result", "id", iq.Attr("id"))
		r.Append(payload)
		return st.t.Write([]*xmlstream.Element{r})
	}
	if q == nil {
		return reply(nil, stanza.NewError("not-authorized", "authenticate or register first"))
	}
	switch iq.Attr("type") {
	case "get":
		form := xmlstream.New(server.NSRegister, "query")
		form.Append(xmlstream.New(server.NSRegister, "instructions").AppendText("Choose a username and password."))
		form.Append(xmlstream.New(server.NSRegister, "username"), xmlstream.New(server.NSRegister, "password"))
		return reply(form, nil)
	case "set":
	default:
		return reply(nil, stanza.ErrBadRequest)
	}
	if ip := st.t.Remote().String(); !st.svc.exempt(ip) && !st.svc.auth.Allow(ip) {
		return reply(nil, stanza.NewError("resource-constraint", "too many attempts from this address; wait a minute"))
	}
	name, pw := q.ChildText(server.NSRegister, "username"), q.ChildText(server.NSRegister, "password")
	if name == "" || pw == "" {
		return reply(nil, stanza.NewError("not-acceptable", "username and password are required"))
	}
	user, err := jid.PrepareLocal(name)
	if err != nil {
		return reply(nil, stanza.NewError("jid-malformed", "the username is not a valid JID localpart"))
	}
	creds, err := auth.NewCredentials(pw, auth.DefaultIterations)
	if err != nil {
		return reply(nil, stanza.NewError("not-acceptable", "the password is not acceptable"))
	}
	err = st.svc.im.Store().CreateUser(context.Background(), user, creds)
	if errors.Is(err, store.ErrExists) {
		return reply(nil, stanza.NewError("conflict", "the username is taken"))
	}
	if err != nil {
		st.log.Error("register", "err", err)
		return reply(nil, stanza.ErrInternal)
	}
	st.log.Info("account registered in-band", "user", user)
	return reply(nil, nil)
}
