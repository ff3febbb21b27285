package chstore

import (
	"context"
	"errors"
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

// ErasureStaleness is how old the list may get before the writer syncs
// it again (before an insert, at most once per ErasureStaleness, each
// attempt bounded by erasureSyncTimeout).
const ErasureStaleness = 5 * time.Second

// ErasureMaxStale is the oldest list an insert may use: when a sync fails
// or is slow, inserts go on with the last good list until it is this old,
// then stop (the records wait in the spool, never inserted unfiltered)
// until a sync succeeds. A slow or failing read of the list thus does not
// stall the log at once, and an erasure still reaches every insert within
// this bound.
const ErasureMaxStale = 5 * time.Minute

// erasureSyncTimeout bounds one sync of the list.
const erasureSyncTimeout = 10 * time.Second

// ErasureGrace is how long an erasure waits after its cutoff before its
// ClickHouse mutations run: every insert made with a list from before the
// erasure was made within ErasureMaxStale (plus one sync attempt) of the
// cutoff and has landed within insertTimeout; the mutations remove those
// rows, and every later insert drops the subject's records.
const ErasureGrace = ErasureMaxStale + erasureSyncTimeout + insertTimeout + 10*time.Second

// erasureSync remembers when the list was last synced (good) and last
// tried.
type erasureSync struct {
	mu          sync.Mutex
	last, tried time.Time
	err         error // of the last attempt
}

// dropErased syncs the erasure list when it is stale and returns recs
// without the erased records (recs itself when none is). A list that
// cannot be read is used while younger than ErasureMaxStale; after that
// the insert fails with the sync's error: the records stay in the spool
// until the list can be read, never inserted past an erasure.
func (w *Writer) dropErased(ctx context.Context, recs []*record.Record) ([]*record.Record, error) {
	e := w.o.Erasures
	if e == nil || len(recs) == 0 {
		return recs, nil
	}
	w.erasure.mu.Lock()
	if now := time.Now(); now.Sub(w.erasure.last) > ErasureStaleness && now.Sub(w.erasure.tried) > ErasureStaleness {
		w.erasure.tried = now
		sctx, cancel := context.WithTimeout(ctx, erasureSyncTimeout)
		prev := w.erasure.err
		w.erasure.err = e.Sync(sctx)
		cancel()
		if w.erasure.err == nil {
			w.erasure.last = now
		} else if prev == nil && !w.erasure.last.IsZero() { // logged once per outage of the list
			w.log.Warn("clickhouse log: cannot read the erasure list; inserting with the last one read",
				"age", time.Since(w.erasure.last).Round(time.Second), "max_age", ErasureMaxStale, "err", w.erasure.err)
		}
	}
	if time.Since(w.erasure.last) > ErasureMaxStale {
		err := w.erasure.err
		w.erasure.mu.Unlock()
		if err == nil {
			err = errors.New("not read recently")
		}
		return nil, fmt.Errorf("erasure list: %w", err)
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
