// Package housekeeping runs the periodic data jobs — carrying out erasures
// (storage/erasure) and applying retention (storage/retention) — on a
// timer, in one process at a time, never on a request's path.
package housekeeping

import (
	"context"
	"log/slog"
	"time"
)

// Lease tells whether this process may run a job now: it takes or renews
// a lease (redisstore.TryLease, held a few intervals) and says whether it
// holds it. Nil: always (one process, or a job whose steps are
// idempotent, so two at once only repeat each other's work).
type Lease func(ctx context.Context) (bool, error)

// Job is one periodic job.
type Job struct {
	Name     string
	Interval time.Duration
	Lease    Lease
	Pass     func(ctx context.Context) error
}

// Run runs job.Pass every job.Interval while this process holds the
// lease, until ctx ends. Failures are logged, at most one line a minute
// (a ClickHouse outage must not fill the log), and retried next time.
func Run(ctx context.Context, job Job, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := time.NewTicker(job.Interval)
	defer t.Stop()
	var lastLog time.Time
	for {
		if err := once(ctx, job); err != nil && ctx.Err() == nil && time.Since(lastLog) > time.Minute {
			lastLog = time.Now()
			log.Warn("housekeeping job failed; retried on the next pass", "job", job.Name, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func once(ctx context.Context, job Job) error {
	if job.Lease != nil {
		ok, err := job.Lease(ctx)
		if err != nil || !ok {
			return err
		}
	}
	pctx, cancel := context.WithTimeout(ctx, max(job.Interval, time.Minute))
	defer cancel()
	return job.Pass(pctx)
}
