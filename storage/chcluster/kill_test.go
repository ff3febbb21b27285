package chcluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

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

	checkExactlyOnce(t, c, url, db, sent)
}

// checkExactlyOnce: once the replicas of each shard hold the same rows
// (a replica killed with its whole shard may still be fetching parts
// after SYSTEM SYNC REPLICA returns on 18.16), the burst tenant's calls
// are each there once under FINAL.
func checkExactlyOnce(t *testing.T, c *testenv.ClickHouseCluster, url, db string, sent uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var total uint64
	testenv.Eventually(t, 2*time.Minute, func() error {
		total = 0
		for s := range c.Shards {
			var counts []uint64
			for r := range c.Replicas {
				var n uint64
				if err := nodeConn(t, c.Node(s, r)).QueryRow(ctx, fmt.Sprintf("SELECT count() FROM %s.%s%s FINAL",
					db, chschema.RequestsTable, chschema.LocalSuffix)).Scan(&n); err != nil {
					return err
				}
				counts = append(counts, n)
			}
			for _, n := range counts[1:] {
				if n != counts[0] {
					return fmt.Errorf("shard %d: its replicas hold %v rows", s+1, counts)
				}
			}
			total += counts[0]
		}
		return nil
	})
	if total != sent {
		t.Errorf("the shards hold %d rows together, want %d", total, sent)
	}
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
		t.Errorf("after the kill: %d rows under FINAL, %d distinct ids; sent %d", final, distinct, sent)
	}
}

// testKillShard sends a burst through the real log writer and SIGKILLs
// both replicas of the second shard a third of the way through: inserts
// touching that shard cannot fail over, so the writer spools them. The
// replicas are started again at two thirds; the writer replays its spool,
// and every call is there exactly once under FINAL.
func testKillShard(t *testing.T, c *testenv.ClickHouseCluster) {
	url, db := clusterDB(t, c, "shard")
	migrate(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	reg := prometheus.NewRegistry()
	w, err := chstore.Open(ctx, chstore.Options{URL: url, SpoolDir: t.TempDir(),
		BatchSize: 40, FlushInterval: 10 * time.Millisecond, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	shard := []*testenv.ClickHouseServer{c.Node(1, 0), c.Node(1, 1)} // the writer talks to the other shard
	const sent = 1500
	start := time.Now().UTC().Add(-time.Hour)
	for i := range sent {
		switch i {
		case sent / 3:
			for _, n := range shard {
				n.Kill()
			}
		case 2 * sent / 3:
			// Everything so far is inserted or spooled: with the shard
			// down, that is the spool.
			if err := w.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			// Down for longer than their ZooKeeper sessions, as in a
			// real outage: a replica started while its killed session
			// still holds its "is_active" mark stays read-only until
			// 18.16's restarting thread retries, tens of seconds later.
			for r := range c.Replicas {
				active := fmt.Sprintf("/clickhouse/tables/%s/02/%s/%s%s/replicas/s2r%d", c.Name, db, chschema.RequestsTable, chschema.LocalSuffix, r+1)
				testenv.WaitFor(t, time.Minute, "the killed replicas' sessions to expire", func() bool {
					var n uint64
					err := nodeConn(t, c.Nodes[0]).QueryRow(ctx, "SELECT count() FROM system.zookeeper WHERE path = ? AND name = 'is_active'", active).Scan(&n)
					return err == nil && n == 0
				})
			}
			for _, n := range shard {
				n.Start()
			}
		}
		w.Write(&record.Record{RequestID: fmt.Sprintf("00000000-0000-4000-a000-%012d", i), Tenant: "burst",
			CreatedAt: start.Add(time.Duration(i) * time.Millisecond), Model: "gpt-4o", Status: 200, CostUSD: 1})
		if i%40 == 39 {
			time.Sleep(5 * time.Millisecond)
		}
	}
	// The restarted replicas take inserts again once their killed
	// sessions have expired in ZooKeeper; until then the writer's replays
	// fail and it would give up at Close.
	for _, n := range shard {
		testenv.WaitFor(t, 2*time.Minute, "the restarted replica to take inserts", func() bool {
			var ro uint8
			err := nodeConn(t, n).QueryRow(ctx, "SELECT is_readonly FROM system.replicas WHERE database = ? AND table = ?",
				db, chschema.RequestsTable+chschema.LocalSuffix).Scan(&ro)
			return err == nil && ro == 0
		})
	}
	if err := w.Close(ctx); err != nil {
		t.Fatalf("close the writer (everything inserted): %v", err)
	}
	if spooled := counter(t, reg, "tollgate_log_rows_spooled_total"); spooled == 0 {
		t.Error("nothing was spooled while a whole shard was down")
	}
	if replayed := counter(t, reg, "tollgate_log_rows_replayed_total"); replayed == 0 {
		t.Error("nothing was replayed from the spool")
	}
	syncReplicas(t, c, db)
	checkExactlyOnce(t, c, url, db, sent)
}

// counter is the value of the writer's counter name in reg.
func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			var sum float64
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
			return sum
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
