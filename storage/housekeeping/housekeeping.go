// Package housekeeping runs the periodic data jobs — carrying out erasures
// (storage/erasure) and applying retention (storage/retention) — on a
// timer, in one process at a time, never on a request's path.
package housekeeping

import (
	"context"
	"errors"
	"fmt"
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
	// LeaseTTL is how long the lease is held per take or renewal. A pass
	// may take longer (up to a minute), so the lease is renewed every
	// LeaseTTL/3 while it runs, and the pass is cancelled if a renewal
	// fails: two processes never run the job at once.
	LeaseTTL time.Duration
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
	if job.Lease == nil || job.LeaseTTL <= 0 {
		return job.Pass(pctx)
	}
	lost := make(chan error, 1)
	stop := make(chan struct{})
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		t := time.NewTicker(job.LeaseTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			ok, err := job.Lease(pctx)
			if err == nil && !ok {
				err = errors.New("the lease went to another process")
			}
			if err != nil {
				lost <- err
				cancel() // stop before the lease expires
				return
			}
		}
	}()
	err := job.Pass(pctx)
	close(stop)
	<-renewed
	select {
	case l := <-lost:
		if err == nil {
			return fmt.Errorf("lease lost during the pass: %w", l)
		}
		return fmt.Errorf("lease lost during the pass (%w); it was stopped: %w", l, err)
	default:
	}
	return err
}
