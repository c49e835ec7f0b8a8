package main

import (
	"context"
	"log/slog"
	"time"

	"bluetick/internal/config"
	"bluetick/internal/fast"
	"bluetick/internal/server"
	"bluetick/internal/store"
)

// startFast wires XEP-0484 login tokens (docs/devices.md): the service
// over the shared store, its ad-hoc commands on the domain (listing and
// logging out linked devices, which disconnects their sessions), and the
// sweeper of long-expired tokens. The SASL2 layer takes the returned
// service to offer the HT mechanisms and issue tokens.
func startFast(ctx context.Context, cfg config.Config, st store.Store, im *server.Server, log *slog.Logger) *fast.Service {
	svc := fast.New(fast.Config{Fast: cfg.Fast}, st, log)
	svc.Kick = im.KickDevice
	for _, c := range svc.Commands() {
		im.Mux().Command(c.Node, c.Name, c.Handle)
	}
	go svc.Sweep(ctx, time.Hour)
	return svc
}
