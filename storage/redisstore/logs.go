package redisstore

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
	"github.com/tollgate-dev/tollgate/internal/throttle"
)

// RouteLogs sends go-redis's own log lines (dial failures, pool trouble) to
// l at Warn, at most one a second: during a Redis outage go-redis would
// otherwise print a line per failed dial, at the request rate. go-redis
// keeps one logger per process, so this is process-wide; call it once at
// start-up.
func RouteLogs(l *slog.Logger) {
	redis.SetLogger(&throttledLogger{l: l})
}

type throttledLogger struct {
	l     *slog.Logger
	every throttle.PerSecond
	lost  atomic.Int64 // lines dropped since the last one written
}

func (t *throttledLogger) Printf(ctx context.Context, format string, v ...any) {
	if !t.every.Allow() {
		t.lost.Add(1)
		return
	}
	t.l.WarnContext(ctx, "redis client", "detail", fmt.Sprintf(format, v...), "suppressed", t.lost.Swap(0))
}
