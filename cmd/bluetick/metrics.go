package main

import (
	"io"
	"net/http"
)

// metrics serves /metrics on the HTTP listener: the counters of every part
// that keeps some, in the Prometheus text format. Parts add their writers
// while the server is wired, before the listener opens.
type metrics struct {
	writers []func(io.Writer)
}

func (m *metrics) add(w ...func(io.Writer)) { m.writers = append(m.writers, w...) }

func (m *metrics) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	for _, f := range m.writers {
		f(w)
	}
}
