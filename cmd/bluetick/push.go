package main

import (
	"context"
	"log/slog"

	"bluetick/internal/config"
	"bluetick/internal/jid"
	"bluetick/internal/muc"
	"bluetick/internal/push"
	"bluetick/internal/push/gateway"
	"bluetick/internal/server"
	"bluetick/internal/xmlstream"
)

// startPush wires XEP-0357 and the built-in push gateway (push.<domain>)
// into the server when [push] is enabled, and adds their counters to
// /metrics; group messages to members who are not in the room notify them
// too. The returned stop ends the push workers.
func startPush(cfg config.Config, im *server.Server, groups *muc.Service, mets *metrics, log *slog.Logger) (stop func(), err error) {
	if !cfg.Push.Enabled {
		return func() {}, nil
	}
	gw, err := gateway.FromConfig(cfg, im.Store(), log.With("component", "push-gateway"))
	if err != nil {
		return nil, err
	}
	ps := push.New(cfg.Push, cfg.Domain, im.Store(), map[string]push.AppServer{gw.JID().String(): gw}, log.With("component", "push"))
	ps.Register(im.Mux())
	im.AddComponent(gw.JID().String(), "Push notifications", gw)
	im.Router.OnUndelivered = ps.Notify
	if groups != nil {
		groups.Push = func(room jid.JID, msg *xmlstream.Element, offline []jid.JID) {
			for _, m := range offline {
				ps.Notify(context.Background(), m, msg)
			}
		}
	}
	ps.Start()
	mets.add(ps.Metrics.Collectors()...)
	mets.add(gw.Metrics())
	log.Info("push notifications enabled", "app_server", gw.JID().String())
	return ps.Stop, nil
}
