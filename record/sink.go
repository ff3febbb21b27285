package record

import "context"

// Sink receives finished records. Write is called on the request path: it
// must never block on I/O to a remote store, and it takes ownership of r.
type Sink interface {
	Write(r *Record)
	// Flush pushes everything written so far to its destination.
	Flush(ctx context.Context) error
	// Close flushes and releases the sink; Write must not be called after.
	Close(ctx context.Context) error
}

// Discard drops every record (tests, benchmarks of other parts).
type Discard struct{}

func (Discard) Write(*Record)               {}
func (Discard) Flush(context.Context) error { return nil }
func (Discard) Close(context.Context) error { return nil }
