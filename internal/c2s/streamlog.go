package c2s

import (
	"context"
	"log/slog"
	"slices"
)

// lazyHandler keeps the attributes a stream's logger is given (With: the
// connection, its user, its JID) as they are, and formats them only when
// a record is logged.
//
// Why: slog's text and JSON handlers format With attributes at once into a
// buffer of their own and clone the handler, ~0.4 KiB that every
// connection kept for its whole life although an idle connection logs
// nothing. Kept unformatted, they cost a small slice of attributes whose
// strings the stream holds anyway.
type lazyHandler struct {
	h slog.Handler
	// conn, when set, gives the first attributes (conn, transport,
	// remote) from the stream itself at Handle time: nothing to keep.
	conn  *stream
	attrs []slog.Attr // never appended to in place: With copies
}

// newStreamLogger returns base with st's conn, transport and remote
// attributes, formatted only when used.
func newStreamLogger(base *slog.Logger, st *stream) *slog.Logger {
	return slog.New(&lazyHandler{h: base.Handler(), conn: st})
}

func (l *lazyHandler) Enabled(ctx context.Context, lv slog.Level) bool {
	return l.h.Enabled(ctx, lv)
}

// Handle formats the attributes now, in the order With gave them, before
// the record's own (as the wrapped handler would have).
func (l *lazyHandler) Handle(ctx context.Context, r slog.Record) error {
	return l.h.WithAttrs(l.all()).Handle(ctx, r)
}

func (l *lazyHandler) all() []slog.Attr {
	if l.conn == nil {
		return l.attrs
	}
	st := l.conn
	return append([]slog.Attr{slog.String("conn", st.id), slog.String("transport", st.t.Kind()),
		slog.String("remote", st.t.Remote().String())}, l.attrs...)
}

func (l *lazyHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return l
	}
	return &lazyHandler{h: l.h, conn: l.conn, attrs: slices.Concat(l.attrs, attrs)}
}

func (l *lazyHandler) WithGroup(name string) slog.Handler {
	return l.h.WithAttrs(l.all()).WithGroup(name)
}
