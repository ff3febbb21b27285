package chstore

import (
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// connState is what the writer knows of ClickHouse: up or down, since
// when, how long to wait before the next ping, and when it last said so
// in the log. down is read by the pump (while ClickHouse is down new
// batches go to the spool) and set by failing jobs; the rest belongs to
// the sender loop.
type connState struct {
	down  atomic.Bool
	up    prometheus.Gauge // tollgate_log_clickhouse_up
	log   *slog.Logger
	spool *spool // its figures go into the log lines

	// Sender loop only.
	backoff    backoff
	downSince  time.Time
	lastErrLog time.Time
	behind     bool // the last failure was the schema's (schemagate.go)
}

func (c *connState) isDown() bool { return c.down.Load() }

// markDown is the immediate part of a failure (the sender loop logs it).
func (c *connState) markDown() {
	c.down.Store(true)
	c.up.Set(0)
}

// markUp: a ping answered. Not logged: the first insert that works is.
func (c *connState) markUp() {
	c.down.Store(false)
	c.up.Set(1)
}

// logFailure logs a failed attempt (sender loop only): the first at warn
// level (error when the schema is behind: schemagate.go), repeats at most
// every logEvery, and at once when the cause changes between an outage
// and a schema that is behind.
func (c *connState) logFailure(op string, err error) {
	now := time.Now()
	first := c.downSince.IsZero()
	behind := isSchemaBehind(err)
	news := first || behind != c.behind
	c.behind = behind
	if !news && now.Sub(c.lastErrLog) < logEvery {
		c.log.Debug("clickhouse log: attempt failed", "op", op, "err", err)
		return
	}
	if first {
		c.downSince = now
	}
	c.lastErrLog = now
	files, bytes := c.spool.stats()
	switch {
	case logSchemaBehind(c.log, err, !news, files, bytes):
	case news:
		c.log.Warn("clickhouse log: ClickHouse unavailable; records go to the spool until it is back",
			"op", op, "err", err, "spool_files", files, "spool_bytes", bytes)
	default:
		c.log.Warn("clickhouse log: ClickHouse still unavailable", "op", op, "err", err,
			"for", now.Sub(c.downSince).Round(time.Second), "spool_files", files, "spool_bytes", bytes)
	}
}

// succeeded: ClickHouse took an insert (sender loop only). The back-off
// starts again from its minimum.
func (c *connState) succeeded() {
	c.backoff.reset()
	c.up.Set(1)
	if !c.downSince.IsZero() {
		files, bytes := c.spool.stats()
		c.log.Info("clickhouse log: ClickHouse is back; replaying the spool",
			"after", time.Since(c.downSince).Round(time.Millisecond), "spool_files", files, "spool_bytes", bytes)
		c.downSince = time.Time{}
	}
	c.behind = false
}

// markDown records a failure at once: from now on the pump sends new
// batches to the spool, and it is woken to do so.
func (w *Writer) markDown() {
	w.clickhouse.markDown()
	w.kickPump()
}

// noteFailure is a failed attempt as the sender loop sees it.
func (w *Writer) noteFailure(op string, err error) {
	w.markDown()
	w.clickhouse.logFailure(op, err)
}

// backoff: exponential from backoffMin to backoffMax, with jitter (each
// delay is drawn from [d/2, d]) so that many processors do not hammer a
// recovering ClickHouse in step.
type backoff struct{ n int }

func (b *backoff) next() time.Duration {
	d := backoffMax
	if b.n < 16 {
		d = min(backoffMin<<b.n, backoffMax)
	}
	b.n++
	half := d / 2
	return half + rand.N(half+1)
}

func (b *backoff) reset() { b.n = 0 }
