package turn

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// slogFactory routes pion's logs into the server's slog logger, so TURN
// events land in the same log with the same levels (pion's trace folds
// into debug).
type slogFactory struct{ log *slog.Logger }

func (f slogFactory) NewLogger(scope string) logging.LeveledLogger {
	return slogLogger{f.log.With("component", "turn", "scope", scope)}
}

type slogLogger struct{ l *slog.Logger }

func (l slogLogger) at(lvl slog.Level, msg string) { l.l.Log(context.Background(), lvl, msg) }

func (l slogLogger) Trace(msg string)          { l.at(slog.LevelDebug, msg) }
func (l slogLogger) Tracef(f string, a ...any) { l.at(slog.LevelDebug, fmt.Sprintf(f, a...)) }
func (l slogLogger) Debug(msg string)          { l.at(slog.LevelDebug, msg) }
func (l slogLogger) Debugf(f string, a ...any) { l.at(slog.LevelDebug, fmt.Sprintf(f, a...)) }
func (l slogLogger) Info(msg string)           { l.at(slog.LevelInfo, msg) }
func (l slogLogger) Infof(f string, a ...any)  { l.at(slog.LevelInfo, fmt.Sprintf(f, a...)) }
func (l slogLogger) Warn(msg string)           { l.at(slog.LevelWarn, msg) }
func (l slogLogger) Warnf(f string, a ...any)  { l.at(slog.LevelWarn, fmt.Sprintf(f, a...)) }
func (l slogLogger) Error(msg string)          { l.at(slog.LevelError, msg) }
func (l slogLogger) Errorf(f string, a ...any) { l.at(slog.LevelError, fmt.Sprintf(f, a...)) }
