package main

import (
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"
)

// metrics serves /metrics on listen.metrics, off the public port: the Go
// runtime, the process and the parts that are client_golang collectors,
// then the counters other parts keep by hand, all in the Prometheus text
// format. Parts are added while the server is wired, before it serves.
type metrics struct {
	reg     *prometheus.Registry
	writers []func(io.Writer)
}

func newMetrics(cs ...prometheus.Collector) *metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(cs...)
	return &metrics{reg: reg}
}

func (m *metrics) add(w ...func(io.Writer)) { m.writers = append(m.writers, w...) }

func (m *metrics) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f := expfmt.NewFormat(expfmt.TypeTextPlain)
	w.Header().Set("Content-Type", string(f))
	if m.reg != nil {
		mfs, err := m.reg.Gather()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		enc := expfmt.NewEncoder(w, f)
		for _, mf := range mfs {
			enc.Encode(mf)
		}
	}
	for _, f := range m.writers {
		f(w)
	}
}

// server returns the metrics listener's HTTP server.
func (m *metrics) server(log *slog.Logger) *http.Server {
	mux := http.NewServeMux()
	mux.Handle("/metrics", m)
	return &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
}
