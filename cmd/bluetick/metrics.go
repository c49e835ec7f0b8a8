package main

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics serves /metrics on listen.metrics, off the public port: the Go
// runtime, the process and every part's collectors, in one client_golang
// registry. Parts are added while the server is wired, before it serves.
type metrics struct {
	reg *prometheus.Registry
}

func newMetrics(cs ...prometheus.Collector) *metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &metrics{reg: reg}
	m.add(cs...)
	return m
}

// add registers cs; a conflict (two parts exporting one name differently)
// is a programming error caught by the first test that starts a server.
func (m *metrics) add(cs ...prometheus.Collector) { m.reg.MustRegister(cs...) }

// ServeHTTP answers a scrape.
func (m *metrics) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}).ServeHTTP(w, r)
}

// server returns the metrics listener's HTTP server.
func (m *metrics) server(log *slog.Logger) *http.Server {
	mux := http.NewServeMux()
	mux.Handle("/metrics", m)
	return &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
}
