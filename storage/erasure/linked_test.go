package erasure_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/testenv"
	"github.com/tollgate-dev/tollgate/storage/chstore"
	"github.com/tollgate-dev/tollgate/storage/erasure"
)

// TestLinkedRowsErasedAfterRequestsGone: the feedback mutation of an
// erasure runs only after the subject's requests rows are already gone
// (as on a shard whose mutation runs late in cluster mode, after another
// shard's requests deletion); it still removes the subject's feedback,
// since it names the request ids rather than looking them up.
func TestLinkedRowsErasedAfterRequestsGone(t *testing.T) {
	url, db, conn := freshDB(t)
	ctx := context.Background()
	w := openWriter(t, url, t.TempDir(), nil)
	var ids []string
	for i := range 3 {
		r := rec("a", "u1", i, time.Now().UTC().Add(-time.Hour))
		ids = append(ids, r.RequestID)
		w.Write(r)
	}
	closeWriter(t, w)
	for _, id := range ids {
		if err := chstore.InsertFeedback(ctx, conn, db, chstore.Feedback{RequestID: id, Tenant: "a", Rating: true}); err != nil {
			t.Fatal(err)
		}
	}
	store := erasure.NewStore(conn, db, nil)
	e, err := store.Request(ctx, "a", erasure.Subject{Kind: erasure.User, Value: "u1"}, "test")
	if err != nil {
		t.Fatal(err)
	}
	exec := func(q string) {
		t.Helper()
		if err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	// The feedback mutation is held back: started, not run.
	exec(fmt.Sprintf("SYSTEM STOP MERGES %s.feedback", db))
	runner := erasure.NewRunner(erasure.Options{Conn: conn, DB: db, Now: func() time.Time { return time.Now().Add(time.Hour) }})
	if err := runner.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := store.Get(ctx, "a", e.ID); err != nil || got.Step != "linked" {
		t.Fatalf("after the first pass: %+v, %v; want step linked", got, err)
	}
	// Meanwhile the requests rows go (another shard's requests mutation).
	exec(fmt.Sprintf("ALTER TABLE %s.requests DELETE WHERE tenant = 'a' AND user_id = 'u1'", db))
	testenv.WaitFor(t, 30*time.Second, "requests rows deleted", func() bool {
		return count(t, conn, fmt.Sprintf("SELECT count() FROM %s.requests WHERE user_id = 'u1'", db)) == 0
	})
	exec(fmt.Sprintf("SYSTEM START MERGES %s.feedback", db))
	testenv.Eventually(t, 60*time.Second, func() error {
		if err := runner.Pass(ctx); err != nil {
			return err
		}
		if got, err := store.Get(ctx, "a", e.ID); err != nil || got.Status != erasure.Done {
			return fmt.Errorf("%+v %v", got, err)
		}
		return nil
	})
	if n := count(t, conn, fmt.Sprintf("SELECT count() FROM %s.feedback WHERE request_id IN (%s)", db, quoted(ids))); n != 0 {
		t.Errorf("%d feedback rows of u1 left", n)
	}
}
