package redisstore

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// coalescer sends the request path's commands (one per call: the admit
// script, or a GET) so that concurrent calls share network writes and
// reads. Up to maxBusy commands are in flight at once, each sent by its own
// caller exactly as without a coalescer; a call that arrives when all are
// busy queues, and when a round trip ends everything queued by then goes
// out as one pipeline, written by the first of them (the leader), which
// wakes the others with their replies. Each call still costs one round
// trip — a pipeline is one write and one read for all of its calls — and
// each command is the same single atomic script, so limits stay exact
// across replicas.
//
// No timer and no goroutine of its own: at low load no call waits for
// another; under a burst (a GC pause releasing many streams at once) the
// queue bounds the connections, system calls and wake-ups a burst costs.
type coalescer struct {
	c        redis.UniversalClient
	maxBusy  int
	maxBatch int
	shared   *atomic.Uint64 // counts the calls a pipeline carried beyond one

	mu    sync.Mutex
	busy  int       // round trips in flight (single commands or pipelines)
	queue []*waiter // calls waiting for one of them to end
}

// waiter is a queued call.
type waiter struct {
	ctx context.Context
	cmd redis.Cmder
	// wake receives the batch to send when this call leads it, or nil when
	// its batch was sent by another (cmd then holds the reply).
	wake  chan []*waiter
	taken bool // in a batch (guarded by coalescer.mu)
	leads bool // and sends it
}

func newCoalescer(c redis.UniversalClient, maxBusy, maxBatch int, shared *atomic.Uint64) *coalescer {
	return &coalescer{c: c, maxBusy: max(maxBusy, 1), maxBatch: max(maxBatch, 1), shared: shared}
}

// do sends cmd and waits for its reply (or the end of ctx), like
// c.Process. The reply and any error are in cmd. settled is false only
// when the call left while its pipeline was on its way: cmd (and its
// arguments) may still be in use then.
func (q *coalescer) do(ctx context.Context, cmd redis.Cmder) (err error, settled bool) {
	q.mu.Lock()
	if q.busy < q.maxBusy {
		q.busy++
		q.mu.Unlock()
		err := q.c.Process(ctx, cmd)
		q.next()
		return err, true
	}
	w := &waiter{ctx: ctx, cmd: cmd, wake: make(chan []*waiter, 1)}
	q.queue = append(q.queue, w)
	q.mu.Unlock()

	select {
	case batch := <-w.wake:
		if batch != nil {
			q.send(batch)
		}
		return cmd.Err(), true
	case <-ctx.Done():
	}
	q.mu.Lock()
	taken, leads := w.taken, w.leads
	if !taken {
		// slices.Delete clears the vacated end: the queue's array keeps no
		// command (nor its reply) alive.
		if i := slices.Index(q.queue, w); i >= 0 {
			q.queue = slices.Delete(q.queue, i, i+1)
		}
	}
	q.mu.Unlock()
	if leads {
		// The others of the batch wait for it to be sent.
		q.send(<-w.wake)
	}
	// Any other member leaves at once; its reply, if any, is dropped.
	return ctx.Err(), !taken || leads
}

// send writes a batch as one pipeline, wakes its members, and passes the
// turn on.
func (q *coalescer) send(batch []*waiter) {
	ctx, cancel := batchContext(batch)
	if len(batch) == 1 {
		_ = q.c.Process(ctx, batch[0].cmd)
	} else {
		pipe := q.c.Pipeline()
		for _, w := range batch {
			_ = pipe.Process(ctx, w.cmd)
		}
		_, _ = pipe.Exec(ctx) // each command holds its own error
		q.shared.Add(uint64(len(batch) - 1))
	}
	cancel()
	for _, w := range batch[1:] {
		w.wake <- nil
	}
	q.next()
}

// next ends a round trip: the calls queued meanwhile go out together, sent
// by the first of them; with none, one fewer round trip is in flight.
func (q *coalescer) next() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.queue) == 0 {
		q.busy--
		return
	}
	n := min(len(q.queue), q.maxBatch)
	batch := slices.Clone(q.queue[:n])
	q.queue = slices.Delete(q.queue, 0, n)
	for _, w := range batch {
		w.taken = true
	}
	batch[0].leads = true
	batch[0].wake <- batch
}

// batchContext bounds a batch by the earliest deadline of the members
// still waiting: when Redis stalls, no call waits past its own deadline (a
// later one may give up a little early, with the rest). A member that has
// given up — the leader may have, it sends the batch anyway — neither
// cancels nor shortens the others' commands.
func batchContext(batch []*waiter) (context.Context, context.CancelFunc) {
	var end time.Time
	for _, w := range batch {
		if w.ctx.Err() != nil {
			continue
		}
		if d, ok := w.ctx.Deadline(); ok && (end.IsZero() || d.Before(end)) {
			end = d
		}
	}
	ctx := context.WithoutCancel(batch[0].ctx)
	if end.IsZero() {
		return ctx, func() {}
	}
	return context.WithDeadline(ctx, end)
}
