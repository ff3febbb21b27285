package chstore

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/tollgate-dev/tollgate/record"
)

// Erasures is what the writer asks before every insert: whether a record
// belongs to a subject someone asked to erase (package storage/erasure).
// Records wait in memory, in the write-ahead log and in the spool (for as
// long as ClickHouse is down); an erasure's ClickHouse mutation cannot
// reach them, so the writer drops them instead, at insert and at replay.
type Erasures interface {
	// Sync brings the list up to date (it reads ClickHouse). A database
	// without the list yet (an older schema) is an empty list, not an
	// error.
	Sync(ctx context.Context) error
	// Erased reports whether r is covered by an erasure. Called with r
	// normalized (its request id a UUID, its created_at in UTC).
	Erased(r *record.Record) bool
}

// ErasureStaleness is the oldest list an insert may use: the writer syncs
// before an insert when its last sync is older. An erasure waits
// ErasureGrace before its ClickHouse mutation runs, so every record of the
// subject inserted with a list from before the erasure has landed by
// then (an insert takes at most insertTimeout) and the mutation removes
// it; every insert after that sees the erasure and drops the records.
const ErasureStaleness = 5 * time.Second

// ErasureGrace: see ErasureStaleness.
const ErasureGrace = ErasureStaleness + insertTimeout + 10*time.Second

// erasureSync remembers when the list was last synced.
type erasureSync struct {
	mu   sync.Mutex
	last time.Time
}

// dropErased syncs the erasure list when it is stale and returns recs
// without the erased records (recs itself when none is). An error (the
// list cannot be read) fails the insert: the records stay in the spool
// until the list can be read, never inserted past an erasure.
func (w *Writer) dropErased(ctx context.Context, recs []*record.Record) ([]*record.Record, error) {
	e := w.o.Erasures
	if e == nil || len(recs) == 0 {
		return recs, nil
	}
	w.erasure.mu.Lock()
	if time.Since(w.erasure.last) > ErasureStaleness {
		start := time.Now()
		if err := e.Sync(ctx); err != nil {
			w.erasure.mu.Unlock()
			return nil, fmt.Errorf("erasure list: %w", err)
		}
		w.erasure.last = start
	}
	w.erasure.mu.Unlock()
	var out []*record.Record
	for i, r := range recs {
		if !e.Erased(r) {
			if out != nil {
				out = append(out, r)
			}
			continue
		}
		if out == nil {
			out = make([]*record.Record, i, len(recs))
			copy(out, recs[:i])
		}
	}
	if out == nil {
		return recs, nil
	}
	w.log.Info("clickhouse log: records of erased subjects dropped before insert", "rows", len(recs)-len(out))
	return out, nil
}
