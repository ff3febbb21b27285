package erasure

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"

	"github.com/tollgate-dev/tollgate/storage/chschema"
)

// Store reads and writes the audit log, the erasures table.
type Store struct {
	conn driver.Conn
	db   string
	now  func() time.Time
}

// NewStore uses conn (not bound to a database) and database db. now nil:
// time.Now.
func NewStore(conn driver.Conn, db string, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{conn: conn, db: db, now: now}
}

func (s *Store) table() string { return s.db + "." + chschema.ErasuresTable }

// Request records a pending erasure of sub in tenant, asked for by by,
// and returns it. Its cutoff is now, rounded up to the second: every
// record created before the request is covered.
func (s *Store) Request(ctx context.Context, tenant string, sub Subject, by string) (*Erasure, error) {
	if err := sub.Validate(); err != nil {
		return nil, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	e := &Erasure{ID: id.String(), Tenant: tenant, Subject: sub, RequestedBy: by,
		RequestedAt: now.Truncate(time.Second).Add(time.Second), Status: Pending, Step: stepWait}
	if err := s.save(ctx, e); err != nil {
		return nil, err
	}
	return e, nil
}

// Get returns tenant's erasure id; nil, nil when there is none (another
// tenant's is none).
func (s *Store) Get(ctx context.Context, tenant, id string) (*Erasure, error) {
	list, err := s.query(ctx, "WHERE tenant = ? AND id = ?", tenant, id)
	if err != nil || len(list) == 0 {
		return nil, err
	}
	return list[0], nil
}

// PendingCount is how many of tenant's erasures are not done yet.
func (s *Store) PendingCount(ctx context.Context, tenant string) (uint64, error) {
	var n uint64
	err := s.conn.QueryRow(ctx, "SELECT count() FROM "+s.table()+" FINAL WHERE tenant = ? AND status != ?", tenant, Done).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("erasures: %w", err)
	}
	return n, nil
}

// Counts are how many of tenant's erasures are not done yet, and how
// many were asked for in the last 24 hours (the API's limits).
func (s *Store) Counts(ctx context.Context, tenant string) (pending, lastDay uint64, err error) {
	err = s.conn.QueryRow(ctx, fmt.Sprintf("SELECT countIf(status != ?), countIf(requested_at > toDateTime(%d)) FROM %s FINAL WHERE tenant = ?",
		s.now().Add(-24*time.Hour).Unix(), s.table()), Done, tenant).Scan(&pending, &lastDay)
	if err != nil {
		return 0, 0, fmt.Errorf("erasures: %w", err)
	}
	return pending, lastDay, nil
}

// pending lists the erasures not done, taking the tenants in turn: each
// tenant's oldest, then each one's second oldest, and so on, so a tenant
// with many pending erasures does not hold back another's in a pass that
// runs out of time.
func (s *Store) pending(ctx context.Context) ([]*Erasure, error) {
	list, err := s.query(ctx, "WHERE status != ? ORDER BY requested_at, id", Done)
	if err != nil {
		return nil, err
	}
	return roundRobin(list), nil
}

// roundRobin orders list (oldest first) by rank within its tenant, then
// by age.
func roundRobin(list []*Erasure) []*Erasure {
	rank := map[string]int{}
	ranks := make([]int, len(list))
	for i, e := range list {
		ranks[i] = rank[e.Tenant]
		rank[e.Tenant]++
	}
	idx := make([]int, len(list))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return ranks[a] - ranks[b] })
	out := make([]*Erasure, len(list))
	for i, j := range idx {
		out[i] = list[j]
	}
	return out
}

const erasureCols = "id, tenant, kind, subject, subject_key, requested_by, requested_at, status, step, detail, completed_at, version"

func (s *Store) query(ctx context.Context, where string, args ...any) ([]*Erasure, error) {
	rows, err := s.conn.Query(ctx, "SELECT "+erasureCols+" FROM "+s.table()+" FINAL "+where, args...)
	if err != nil {
		return nil, fmt.Errorf("erasures: %w", err)
	}
	defer rows.Close()
	var out []*Erasure
	for rows.Next() {
		e := &Erasure{}
		var kind string
		if err := rows.Scan(&e.ID, &e.Tenant, &kind, &e.Subject.Value, &e.Subject.Key, &e.RequestedBy,
			&e.RequestedAt, &e.Status, &e.Step, &e.Detail, &e.CompletedAt, &e.version); err != nil {
			return nil, fmt.Errorf("erasures: %w", err)
		}
		e.Subject.Kind = Kind(kind)
		e.RequestedAt, e.CompletedAt = e.RequestedAt.UTC(), e.CompletedAt.UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

// save writes e as its newest row (a higher version replaces the older
// under FINAL).
func (s *Store) save(ctx context.Context, e *Erasure) error {
	e.version = max(e.version+1, uint64(s.now().UnixNano()))
	batch, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.table()+" ("+erasureCols+")")
	if err != nil {
		return fmt.Errorf("erasures: %w", err)
	}
	defer batch.Close()
	completed := e.CompletedAt
	if completed.IsZero() {
		completed = time.Unix(0, 0)
	}
	if err := batch.Append(e.ID, e.Tenant, string(e.Subject.Kind), e.Subject.Value, e.Subject.Key, e.RequestedBy,
		e.RequestedAt, e.Status, e.Step, e.Detail, completed.UTC(), e.version); err != nil {
		return fmt.Errorf("erasures: %w", err)
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("erasures: %w", err)
	}
	return nil
}

// isUnknownTable tells whether err is ClickHouse's UNKNOWN_TABLE (60):
// the schema predates the erasures table.
func isUnknownTable(err error) bool {
	var ex *clickhouse.Exception
	return errors.As(err, &ex) && ex.Code == 60
}
