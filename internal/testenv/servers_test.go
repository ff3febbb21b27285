package testenv_test

// Smoke tests against the shared servers of scripts/testenv.sh: they prove
// that `make test` really gives every package a working Redis and a
// ClickHouse that clickhouse-go v2 can use the way Tollgate will (native
// protocol, UUID / Nested / DateTime columns, batch inserts).

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/tollgate-dev/tollgate/internal/testenv"
)

func TestSharedRedis(t *testing.T) {
	opt, err := redis.ParseURL(testenv.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	checkRedis(t, opt)
}

func checkRedis(t *testing.T, opt *redis.Options) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rdb := redis.NewClient(opt)
	defer rdb.Close()

	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING %s: %v", opt.Addr, err)
	}
	info, err := rdb.Info(ctx, "server").Result()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("redis at %s: %s", opt.Addr, firstLineWith(info, "redis_version:"))

	// A per-run key: the shared server is used by all packages at once.
	key := "testenv:smoke:" + uuid.NewString()
	if err := rdb.Set(ctx, key, "hello", time.Minute).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	got, err := rdb.Get(ctx, key).Result()
	if err != nil || got != "hello" {
		t.Fatalf("GET = %q, %v; want hello", got, err)
	}
	if err := rdb.Del(ctx, key).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Get(ctx, key).Err(); err != redis.Nil {
		t.Fatalf("GET after DEL: err = %v, want redis.Nil", err)
	}
}

func TestSharedClickHouse(t *testing.T) {
	checkClickHouse(t, testenv.ClickHouseAddr(t))
}

func openClickHouse(t *testing.T, addr string) driver.Conn {
	t.Helper()
	conn, err := clickhouse.Open(&clickhouse.Options{
		// Native protocol: clickhouse-go's HTTP mode sends a setting that
		// 18.16 rejects.
		Protocol:    clickhouse.Native,
		Addr:        []string{addr},
		Auth:        clickhouse.Auth{Database: "default", Username: "default"},
		DialTimeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func checkClickHouse(t *testing.T, addr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn := openClickHouse(t, addr)
	if err := conn.Ping(ctx); err != nil {
		t.Fatalf("ping %s: %v", addr, err)
	}
	var version string
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&version); err != nil {
		t.Fatalf("SELECT version(): %v", err)
	}
	t.Logf("clickhouse at %s: version %s", addr, version)

	// A database of its own, so parallel packages never collide.
	db := "testenv_" + fmt.Sprintf("%x", time.Now().UnixNano())
	if err := conn.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		t.Fatalf("CREATE DATABASE: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db); err != nil {
			t.Errorf("DROP DATABASE: %v", err)
		}
	})

	// Column types Tollgate's request table uses, all present in 18.16.
	table := db + ".requests"
	if err := conn.Exec(ctx, `CREATE TABLE `+table+` (
		request_id UUID,
		created_at DateTime,
		model String,
		status Int32,
		cost_usd Float64,
		properties Nested(key String, value String)
	) ENGINE = MergeTree
	PARTITION BY toYYYYMM(created_at)
	ORDER BY (created_at, request_id)`); err != nil {
		t.Fatalf("CREATE TABLE: %v", err)
	}

	type row struct {
		id      uuid.UUID
		created time.Time
		model   string
		status  int32
		cost    float64
		keys    []string
		values  []string
	}
	base := time.Now().UTC().Truncate(time.Second) // DateTime has 1 s resolution
	want := []row{
		{uuid.New(), base, "gpt-4o-mini", 200, 0.00042, []string{"app", "env"}, []string{"chat", "test"}},
		{uuid.New(), base.Add(time.Second), "claude-3-5-haiku", -2, 0, []string{}, []string{}},
		{uuid.New(), base.Add(2 * time.Second), "gpt-4o", 429, 1.5, []string{"team"}, []string{"a"}},
	}

	// With 18.16 the column list is required: a bare "INSERT INTO t"
	// prepares a batch of zero columns there.
	batch, err := conn.PrepareBatch(ctx, `INSERT INTO `+table+
		` (request_id, created_at, model, status, cost_usd, properties.key, properties.value)`)
	if err != nil {
		t.Fatalf("PrepareBatch: %v", err)
	}
	for _, r := range want {
		if err := batch.Append(r.id, r.created, r.model, r.status, r.cost, r.keys, r.values); err != nil {
			t.Fatalf("Append: %v", err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatalf("Send: %v", err)
	}

	rows, err := conn.Query(ctx, `SELECT request_id, created_at, model, status, cost_usd,
		properties.key, properties.value FROM `+table+` ORDER BY created_at`)
	if err != nil {
		t.Fatalf("SELECT: %v", err)
	}
	defer rows.Close()
	var got []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.created, &r.model, &r.status, &r.cost, &r.keys, &r.values); err != nil {
			t.Fatalf("Scan: %v", err)
		}
		got = append(got, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("read %d rows, want %d", len(got), len(want))
	}
	for i := range want {
		w, g := want[i], got[i]
		if g.id != w.id || !g.created.Equal(w.created) || g.model != w.model ||
			g.status != w.status || g.cost != w.cost ||
			!slices.Equal(g.keys, w.keys) || !slices.Equal(g.values, w.values) {
			t.Errorf("row %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
}

func firstLineWith(text, prefix string) string {
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, prefix) {
			return strings.TrimSpace(line)
		}
	}
	return "(version unknown)"
}
