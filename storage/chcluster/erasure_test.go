package chcluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/testenv"
	"github.com/tollgate-dev/tollgate/record"
	"github.com/tollgate-dev/tollgate/storage/chschema"
	"github.com/tollgate-dev/tollgate/storage/chstore"
	"github.com/tollgate-dev/tollgate/storage/erasure"
	"github.com/tollgate-dev/tollgate/storage/retention"
)

// testErasureAndRetention: on the cluster, an erasure is done only once
// its mutations have run on every replica of every shard — even when an
// earlier attempt's ON CLUSTER ALTER reached one shard only, and never
// while a replica is down — so when it is first seen done, no node holds the subject's calls or their
// feedback (another user's stay); and the retention drops an old month
// on every shard.
func testErasureAndRetention(t *testing.T, c *testenv.ClickHouseCluster) {
	url, db := clusterDB(t, c, "erase")
	migrate(t, url)
	ctx := context.Background()
	w, err := chstore.Open(ctx, chstore.Options{URL: url, SpoolDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	var erased []string
	recent := time.Now().UTC().Add(-time.Hour)
	for i := range 24 {
		user, at := []string{"u1", "u2", "old"}[i%3], recent
		if user == "old" {
			at = time.Date(2026, 5, 10, 12, 0, 0, 0, time.UTC)
		}
		r := &record.Record{RequestID: seedID(1000 + i), CreatedAt: at, Tenant: "a", UserID: user, Status: 200}
		if user == "u1" {
			erased = append(erased, r.RequestID)
		}
		w.Write(r)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := w.Close(cctx); err != nil {
		t.Fatal(err)
	}
	conn, _, err := chschema.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, id := range erased {
		if err := chstore.InsertFeedback(ctx, conn, db, chstore.Feedback{RequestID: id, Tenant: "a", Rating: true}); err != nil {
			t.Fatal(err)
		}
	}
	count := func(q string) uint64 {
		var n uint64
		if err := conn.QueryRow(ctx, fmt.Sprintf(q, db)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count("SELECT count() FROM %s.requests WHERE user_id = 'u1'"); n != 8 {
		t.Fatalf("%d rows of u1 before, want 8", n)
	}

	store := erasure.NewStore(conn, db, nil)
	e, err := store.Request(ctx, "a", erasure.Subject{Kind: erasure.User, Value: "u1"}, "test")
	if err != nil {
		t.Fatal(err)
	}
	// Every node's local rows of u1 (requests) and of tenant a (feedback).
	local := func(n *testenv.ClickHouseServer) (req, fb uint64) {
		nc := nodeConn(t, n)
		if err := nc.QueryRow(ctx, fmt.Sprintf("SELECT count() FROM %s.requests_local WHERE user_id = 'u1'", db)).Scan(&req); err != nil {
			t.Fatal(err)
		}
		if err := nc.QueryRow(ctx, fmt.Sprintf("SELECT count() FROM %s.feedback_local", db)).Scan(&fb); err != nil {
			t.Fatal(err)
		}
		return req, fb
	}
	if req, fb := local(c.Node(1, 0)); req == 0 || fb == 0 {
		t.Fatalf("the second shard holds %d rows of u1 and %d feedback rows; the test needs some", req, fb)
	}
	// A first attempt whose ON CLUSTER ALTERs timed out beyond the first
	// shard: the erasure's mutations (its tags) run on that shard only,
	// as the connected node's system.mutations shows them.
	first := nodeConn(t, c.Node(0, 0))
	for _, q := range []string{
		"ALTER TABLE %s.feedback_local DELETE WHERE tenant = 'a' AND notEmpty('erasure:%s/0')",
		"ALTER TABLE %s.requests_local DELETE WHERE tenant = 'a' AND user_id = 'u1' AND notEmpty('erasure:%s')",
	} {
		if err := first.Exec(ctx, fmt.Sprintf(q, db, e.ID)); err != nil {
			t.Fatal(err)
		}
	}
	runner := erasure.NewRunner(erasure.Options{Conn: conn, DB: db, Cluster: c.Name, Now: func() time.Time { return time.Now().Add(time.Hour) }})
	// A replica that cannot be read keeps the erasure pending: its
	// mutations cannot be known to be done.
	down := c.Node(1, 1)
	down.Kill()
	for range 2 {
		if err := runner.Pass(ctx); err == nil {
			t.Error("a pass with a replica down reported no error")
		}
		if got, err := store.Get(ctx, "a", e.ID); err != nil || got.Status == erasure.Done {
			t.Fatalf("with a replica down: %+v %v", got, err)
		}
	}
	down.Start()
	testenv.Eventually(t, 2*time.Minute, func() error {
		if err := runner.Pass(ctx); err != nil {
			return err
		}
		got, err := store.Get(ctx, "a", e.ID)
		if err != nil || got.Status != erasure.Done {
			return fmt.Errorf("%+v %v", got, err)
		}
		return nil
	})
	// Done, first seen: every replica of every shard is clean already.
	for i, n := range c.Nodes {
		if req, fb := local(n); req != 0 || fb != 0 {
			t.Errorf("node %d still holds %d rows of u1 and %d feedback rows when the erasure is done", i, req, fb)
		}
	}
	if n := count("SELECT count() FROM %s.requests WHERE user_id = 'u2'"); n != 8 {
		t.Errorf("%d rows of u2, want 8", n)
	}

	r := retention.New(retention.Options{Conn: conn, DB: db, Cluster: c.Name, Retention: 90 * 24 * time.Hour})
	testenv.Eventually(t, 2*time.Minute, func() error {
		if err := r.Pass(ctx); err != nil {
			return err
		}
		if n := count("SELECT count() FROM %s.requests WHERE user_id = 'old'"); n != 0 {
			return fmt.Errorf("%d old rows left", n)
		}
		return nil
	})
	if n := count("SELECT count() FROM %s.requests"); n != 8 {
		t.Errorf("%d rows after the retention, want u2's 8", n)
	}
}
