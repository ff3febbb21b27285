package chstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"

	"github.com/tollgate-dev/tollgate/storage/chschema"
)

// Feedback is one row of the feedback table.
type Feedback struct {
	RequestID string    // a UUID (the request's Helicone-Id)
	Tenant    string    // the tenant that owns the request
	Rating    bool      // true = good (stored as 1), false = bad (0)
	CreatedAt time.Time // zero: now
}

// InsertFeedback stores ratings synchronously (the API answers only once
// the row is in ClickHouse). The table keeps the newest rating per
// request_id; read it with FINAL:
//
//	SELECT rating FROM tollgate.feedback FINAL WHERE request_id = ?
func InsertFeedback(ctx context.Context, conn driver.Conn, database string, fb ...Feedback) error {
	if len(fb) == 0 {
		return nil
	}
	if !chschema.ValidDatabase(database) {
		return fmt.Errorf("clickhouse feedback: bad database name %q", database)
	}
	batch, err := conn.PrepareBatch(ctx, fmt.Sprintf(
		"INSERT INTO %s.%s (request_id, created_at, rating, tenant)", database, chschema.FeedbackTable))
	if err != nil {
		return fmt.Errorf("clickhouse feedback: %w", err)
	}
	defer batch.Close()
	now := time.Now().UTC()
	for _, f := range fb {
		id, err := uuid.Parse(f.RequestID)
		if err != nil {
			return fmt.Errorf("clickhouse feedback: request id %q is not a UUID", f.RequestID)
		}
		at := f.CreatedAt
		if at.IsZero() {
			at = now
		}
		var rating int8
		if f.Rating {
			rating = 1
		}
		if err := batch.Append(id, at.UTC(), rating, f.Tenant); err != nil {
			return fmt.Errorf("clickhouse feedback: %w", err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("clickhouse feedback: %w", err)
	}
	return nil
}

// InsertFeedback stores ratings through the writer's connection pool (see
// the package-level InsertFeedback). It does not go through the spool: a
// failure is returned, for the API to answer 503.
func (w *Writer) InsertFeedback(ctx context.Context, fb ...Feedback) error {
	if w.conn == nil {
		return errors.New("clickhouse feedback: writer has no ClickHouse connection")
	}
	return InsertFeedback(ctx, w.conn, w.db, fb...)
}

// Database is the database the writer inserts into.
func (w *Writer) Database() string { return w.db }
