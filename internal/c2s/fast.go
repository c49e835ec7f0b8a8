package c2s

import (
	"context"
	"slices"

	"bluetick/internal/auth"
	"bluetick/internal/fast"
	"bluetick/internal/xmlstream"
)

// EnableFAST offers XEP-0484 FAST on SASL2 with the token service svc
// (docs/devices.md): the HT mechanisms in <inline/>, token logins, and a
// token in <success/> when the client asks for one or its token is due
// for rotation. Call it before serving; a disabled service adds nothing.
func (s *Service) EnableFAST(svc *fast.Service) {
	if svc.Enabled() {
		s.addSASL2Extension(&fastExtension{svc: svc})
	}
}

type fastExtension struct{ svc *fast.Service }

// offered lists the HT mechanisms this connection can run (the channel
// bound ones need its binding data).
func (x *fastExtension) offered(st *stream) []string {
	return x.svc.Mechanisms(st.confidential(), st.channelBinding().Types...)
}

func (x *fastExtension) inline(st *stream) *xmlstream.Element {
	return x.svc.Feature(st.confidential(), st.channelBinding().Types...)
}

// confidential says a token may cross this connection: TLS, or loopback
// unless tls.require_starttls = "always" (the rule passwords follow: on
// loopback nothing crosses a network). Bluetick Web opened at
// http://localhost:5280/ keeps a token instead of asking for the password
// on every reload.
func (st *stream) confidential() bool {
	return st.t.Secure() || (st.svc.cfg.TLS.RequireSTARTTLS != "always" && st.t.Remote().IsLoopback())
}

// negotiator checks FAST's own children of every <authenticate/> (a bad
// <fast/> or <request-token/> fails it, whatever the mechanism) and runs
// token logins. A token cannot be guessed (256 random bits), so token
// logins are not counted by the per-account password throttle, which
// would slow the owner's own devices during an attack on the password;
// their failures still get the failure delay, count towards the stream's
// failure limit and go through the per-address limit.
func (x *fastExtension) negotiator(st *stream, req *sasl2Request, _ auth.Config) (auth.Negotiator, error) {
	in, err := fast.ParseInline(req.el)
	if err != nil {
		return nil, &auth.Failure{Condition: "malformed-request", Text: err.Error()}
	}
	if in.RequestToken != "" && !slices.Contains(x.offered(st), in.RequestToken) {
		return nil, &auth.Failure{Condition: "malformed-request", Text: "<request-token/> names a mechanism not offered on this connection"}
	}
	if !fast.IsMechanism(req.mechanism) {
		return nil, nil
	}
	if !slices.Contains(x.offered(st), req.mechanism) {
		return nil, &auth.Failure{Condition: "invalid-mechanism", Text: "mechanism " + req.mechanism + " is not offered on this connection"}
	}
	if req.ua == nil || req.ua.id == "" {
		return nil, &auth.Failure{Condition: "malformed-request", Text: "a token login needs <user-agent id='...'/>"}
	}
	var cbData []byte
	if typ := fast.ChannelBinding(req.mechanism); typ != "" {
		if cbData, err = st.channelBinding().Data(typ); err != nil {
			return nil, &auth.Failure{Condition: "invalid-mechanism", Text: "channel binding " + typ + " is not available on this connection"}
		}
	}
	return x.svc.NewNegotiator(req.mechanism, fast.Params{AgentID: req.ua.id, CBData: cbData, Count: in.Count, Invalidate: in.Invalidate})
}

// success issues the token due, if any: asked for with <request-token/>,
// or the rotation of one close to expiry. A token needs the client's
// <user-agent id/>, which binds it to the device.
func (x *fastExtension) success(ctx context.Context, st *stream, req *sasl2Request) []*xmlstream.Element {
	if req.ua == nil || req.ua.id == "" {
		return nil
	}
	in, _ := fast.ParseInline(req.el) // checked by negotiator
	n, _ := req.neg.(*fast.Negotiator)
	tok, err := x.svc.TokenAfterSuccess(ctx, st.user, fast.Client{AgentID: req.ua.id, Software: req.ua.software, Device: req.ua.device}, in, n)
	if err != nil {
		st.log.Warn("FAST: no token issued", "user", st.user, "err", err)
		return nil
	}
	if tok == nil {
		return nil
	}
	return []*xmlstream.Element{tok.Element()}
}
