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
)

// testKillReplica sends a burst of calls through the real log writer
// (write-ahead log, spool, retries) into the Distributed requests table
// and SIGKILLs the first replica of the other shard a third of the way
// through, starting it again at two thirds. Once it is back and has caught
// up, every call is there exactly once under FINAL, and both replicas of
// each shard hold the same rows.
func testKillReplica(t *testing.T, c *testenv.ClickHouseCluster) {
	url, db := clusterDB(t, c, "kill")
	migrate(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	w, err := chstore.Open(ctx, chstore.Options{URL: url, SpoolDir: t.TempDir(),
		BatchSize: 40, FlushInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	victim := c.Node(1, 0) // the writer talks to shard 1's first node
	const sent = 3000
	start := time.Now().UTC().Add(-time.Hour)
	for i := range sent {
		switch i {
		case sent / 3:
			victim.Kill()
		case 2 * sent / 3:
			victim.Start()
		}
		w.Write(&record.Record{RequestID: fmt.Sprintf("00000000-0000-4000-9000-%012d", i), Tenant: "burst",
			CreatedAt: start.Add(time.Duration(i) * time.Millisecond), Model: "gpt-4o", Status: 200, CostUSD: 1})
		if i%40 == 39 {
			time.Sleep(5 * time.Millisecond) // a burst, not one enormous batch
		}
	}
	if err := w.Close(ctx); err != nil {
		t.Fatalf("close the writer (everything inserted): %v", err)
	}
	// The restarted replica rejoins once its killed session has expired
	// in ZooKeeper; SYSTEM SYNC REPLICA fails until then.
	testenv.WaitFor(t, 2*time.Minute, "the restarted replica to catch up", func() bool {
		return nodeConn(t, victim).Exec(ctx, fmt.Sprintf("SYSTEM SYNC REPLICA %s.%s%s", db, chschema.RequestsTable, chschema.LocalSuffix)) == nil
	})
	syncReplicas(t, c, db)

	conn, _, err := chschema.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var final, distinct uint64
	if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT count(), uniqExact(request_id) FROM %s.%s FINAL WHERE tenant = 'burst'",
		db, chschema.RequestsTable)).Scan(&final, &distinct); err != nil {
		t.Fatal(err)
	}
	if final != sent || distinct != sent {
		t.Errorf("after killing a replica mid-burst: %d rows under FINAL, %d distinct ids; sent %d", final, distinct, sent)
	}
	var total uint64
	for s := range c.Shards {
		var counts []uint64
		for r := range c.Replicas {
			var n uint64
			if err := nodeConn(t, c.Node(s, r)).QueryRow(ctx, fmt.Sprintf("SELECT count() FROM %s.%s%s FINAL",
				db, chschema.RequestsTable, chschema.LocalSuffix)).Scan(&n); err != nil {
				t.Fatal(err)
			}
			counts = append(counts, n)
		}
		for _, n := range counts[1:] {
			if n != counts[0] {
				t.Errorf("shard %d: its replicas hold %v rows", s+1, counts)
			}
		}
		total += counts[0]
	}
	if total != sent {
		t.Errorf("the shards hold %d rows together, want %d", total, sent)
	}
}
