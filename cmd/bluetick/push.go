package main

import (
	"log/slog"
	"net/http"

	"bluetick/internal/config"
	"bluetick/internal/push"
	"bluetick/internal/push/gateway"
	"bluetick/internal/server"
)

// startPush wires XEP-0357 and the built-in push gateway (push.<domain>)
// into the server when [push] is enabled, and serves their counters at
// /metrics on the HTTP mux. The returned stop ends the push workers.
func startPush(cfg config.Config, im *server.Server, mux *http.ServeMux, log *slog.Logger) (stop func(), err error) {
	if !cfg.Push.Enabled {
		return func() {}, nil
	}
	gw, err := gateway.FromConfig(cfg, im.Store(), log.With("component", "push-gateway"))
	if err != nil {
		return nil, err
	}
	ps := push.New(cfg.Push, cfg.Domain, im.Store(), map[string]push.AppServer{gw.JID().String(): gw}, log.With("component", "push"))
	ps.Register(im.Mux())
	im.AddComponent(gw.JID().String(), gw)
	im.Router.OnUndelivered = ps.Notify
	ps.Start()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		ps.Metrics.WritePrometheus(w)
		gw.Metrics().WritePrometheus(w)
	})
	log.Info("push notifications enabled", "app_server", gw.JID().String())
	return ps.Stop, nil
}
