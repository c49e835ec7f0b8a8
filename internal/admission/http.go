package admission

import (
	"io"
	"log/slog"
	"net/http"
	"time"

	"bluetick/internal/config"
)

// Server returns an HTTP server for h with a timeout for every state of a
// connection: idle keep-alive (limits.http_idle_timeout), slow headers
// and slow bodies (limits.http_read_timeout), slow reads of responses
// (limits.write_timeout). Bodies and responses are timed by progress, not
// as a whole, so a 100 MB upload on a slow link and a BOSH request held
// for a minute are fine while a client that stops sending or reading is
// cut. Serve it on a listener from Gate.Listener.
func Server(h http.Handler, l config.Limits, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           Deadlines(h, l.HTTPReadTimeout.Duration, l.WriteTimeout.Duration),
		ReadHeaderTimeout: min(10*time.Second, l.HTTPReadTimeout.Duration),
		IdleTimeout:       l.HTTPIdleTimeout.Duration,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// Deadlines gives each read of a request's body read more time, and each
// write of its response write more time.
func Deadlines(h http.Handler, read, write time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		// A deadline left by the connection's previous response must not
		// cut this one while it waits (a BOSH poll writes after a minute).
		rc.SetWriteDeadline(time.Time{})
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = &progressBody{ReadCloser: r.Body, rc: rc, d: read}
		}
		h.ServeHTTP(&progressWriter{ResponseWriter: w, rc: rc, d: write}, r)
		rc.SetWriteDeadline(time.Now().Add(write)) // the final flush
	})
}

type progressBody struct {
	io.ReadCloser
	rc *http.ResponseController
	d  time.Duration
}

func (b *progressBody) Read(p []byte) (int, error) {
	b.rc.SetReadDeadline(time.Now().Add(b.d))
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		// The body is in: the connection's background read (which
		// notices a client that went away) must not time out while the
		// handler works or waits.
		b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

type progressWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
	d  time.Duration
}

func (w *progressWriter) Write(p []byte) (int, error) {
	w.rc.SetWriteDeadline(time.Now().Add(w.d))
	return w.ResponseWriter.Write(p)
}

func (w *progressWriter) Flush() {
	w.rc.SetWriteDeadline(time.Now().Add(w.d))
	w.rc.Flush()
}

// Unwrap lets http.ResponseController and WebSocket's hijack reach the
// server's writer.
func (w *progressWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
