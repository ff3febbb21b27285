package chquery

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/tollgate-dev/tollgate/storage/chschema"
)

// Score is one named score of a request. A boolean score is stored as 1 or
// 0 with Bool set, so it can be answered as a boolean again.
type Score struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Bool  bool    `json:"boolean,omitempty"`
}

// Exists reports whether request id is in tenant's log. Feedback and scores
// may only be given to a request of the caller's own tenant; another
// tenant's request is as unknown as one never made.
//
// The id alone does not narrow the table's sort key (tenant, created_at,
// request_id), and no time can be inferred from it: a UUIDv7's time is
// not created_at for ids clients mint themselves or for calls logged
// afterwards through the logging API. So the tenant's request_id column is
// read in full.
func (q *Requests) Exists(ctx context.Context, id, tenant string) (bool, error) {
	var n uint64
	err := q.conn.QueryRow(ctx, fmt.Sprintf("SELECT count() FROM %s WHERE tenant = ? AND request_id = toUUID(?)",
		q.table(chschema.RequestsTable)), tenant, id).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("look up request: %w", err)
	}
	return n > 0, nil
}

// InsertScores stores scores of request id in tenant, synchronously (the
// API answers once they are in ClickHouse). A name scored again replaces
// its earlier value: the scores table keeps the newest row per (tenant,
// request, name).
func (q *Requests) InsertScores(ctx context.Context, tenant, id string, at time.Time, scores []Score) error {
	if len(scores) == 0 {
		return nil
	}
	rid, err := uuid.Parse(id)
	if err != nil {
		return errors.New("insert scores: request id is not a UUID")
	}
	batch, err := q.conn.PrepareBatch(ctx, fmt.Sprintf(
		"INSERT INTO %s (tenant, request_id, name, value, value_type, created_at)", q.table(chschema.ScoresTable)))
	if err != nil {
		return fmt.Errorf("insert scores: %w", err)
	}
	defer batch.Close()
	for _, s := range scores {
		typ := "number"
		if s.Bool {
			typ = "boolean"
		}
		if err := batch.Append(tenant, rid, s.Name, s.Value, typ, at.UTC()); err != nil {
			return fmt.Errorf("insert scores: %w", err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("insert scores: %w", err)
	}
	return nil
}
