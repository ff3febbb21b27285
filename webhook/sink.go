package webhook

import (
	"context"
	"errors"

	"github.com/tollgate-dev/tollgate/record"
)

// Sink passes every record to next and submits it to the dispatcher first:
// the hook where a call is finished, the same for proxied calls and those
// logged through the API. Close closes next and drains the webhooks at the
// same time, both within ctx.
type Sink struct {
	next record.Sink
	d    *Dispatcher
}

// Tee returns next itself when d is nil (no destinations configured).
func Tee(next record.Sink, d *Dispatcher) record.Sink {
	if d == nil {
		return next
	}
	return &Sink{next: next, d: d}
}

// Write submits r (without waiting) before next takes ownership of it.
func (s *Sink) Write(r *record.Record) {
	s.d.Submit(r)
	s.next.Write(r)
}

func (s *Sink) Flush(ctx context.Context) error { return s.next.Flush(ctx) }

func (s *Sink) Close(ctx context.Context) error {
	hooks := make(chan error, 1)
	go func() { hooks <- s.d.Close(ctx) }()
	err := s.next.Close(ctx)
	return errors.Join(err, <-hooks)
}
