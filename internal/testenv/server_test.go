package testenv_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate-dev/tollgate/internal/testenv"
)

// TestPrivateRedisKillRestart shows the life cycle a resilience test uses:
// a private server, killed like a crash, started again on the same port.
func TestPrivateRedisKillRestart(t *testing.T) {
	s := testenv.StartRedis(t)
	opt, err := redis.ParseURL(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	checkRedis(t, opt)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opt.MaxRetries = -1 // see failures as they happen
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}

	pid := s.PID()
	s.Kill()
	if s.Running() || s.PID() != 0 {
		t.Fatalf("still running after Kill (pid was %d)", pid)
	}
	if err := rdb.Ping(ctx).Err(); err == nil {
		t.Fatal("PING succeeded with the server killed")
	}

	start := time.Now()
	s.Start()
	t.Logf("redis restart took %v", time.Since(start))
	if s.PID() == pid || s.PID() == 0 {
		t.Fatalf("pid after restart = %d (was %d)", s.PID(), pid)
	}
	// go-redis reconnects by itself; the data is gone (no persistence).
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING after restart: %v", err)
	}
	if err := rdb.Get(ctx, "k").Err(); err != redis.Nil {
		t.Fatalf("GET after restart: err = %v, want redis.Nil", err)
	}

	start = time.Now()
	s.Stop()
	t.Logf("redis graceful stop took %v", time.Since(start))
	s.Stop() // idempotent
}

func TestPrivateClickHouseRestart(t *testing.T) {
	s := testenv.StartClickHouse(t)
	checkClickHouse(t, s.Addr())

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn := openClickHouse(t, s.Addr())
	for _, q := range []string{
		"CREATE DATABASE keep",
		"CREATE TABLE keep.t (n UInt32) ENGINE = MergeTree ORDER BY n",
		// Not "INSERT … VALUES (…)" through Exec: against 18.16 it hangs
		// until the context expires. INSERT … SELECT and batches work.
		"INSERT INTO keep.t (n) SELECT toUInt32(number + 1) FROM system.numbers LIMIT 3",
	} {
		if err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	count := func() (uint64, error) {
		var n uint64
		err := conn.QueryRow(ctx, "SELECT count() FROM keep.t").Scan(&n)
		return n, err
	}

	// A crash: data written before it is still there after a restart.
	s.Kill()
	if _, err := count(); err == nil {
		t.Fatal("query succeeded with the server killed")
	}
	start := time.Now()
	s.Start()
	t.Logf("clickhouse start after kill took %v", time.Since(start))
	if n, err := retry(ctx, count); err != nil || n != 3 {
		t.Fatalf("count after restart = %d, %v; want 3", n, err)
	}

	start = time.Now()
	s.Stop()
	t.Logf("clickhouse graceful stop took %v", time.Since(start))
	if s.Running() {
		t.Fatal("running after Stop")
	}
	// The port is free again at once: nothing is listening.
	if c, err := net.DialTimeout("tcp", s.Addr(), time.Second); err == nil {
		c.Close()
		t.Fatalf("%s still accepts connections after Stop", s.Addr())
	}
	s.Start()
	if n, err := retry(ctx, count); err != nil || n != 3 {
		t.Fatalf("count after graceful restart = %d, %v; want 3", n, err)
	}

	// A hung server: connections stay open but nothing answers.
	s.Pause()
	short, cancelShort := context.WithTimeout(ctx, 500*time.Millisecond)
	var n uint64
	err := conn.QueryRow(short, "SELECT count() FROM keep.t").Scan(&n)
	cancelShort()
	if err == nil {
		t.Fatal("query answered while the server was paused")
	}
	s.Resume()
	if n, err := retry(ctx, count); err != nil || n != 3 {
		t.Fatalf("count after resume = %d, %v; want 3", n, err)
	}
}

// retry absorbs the first failures of a pool whose connections the restart
// broke; clickhouse-go drops a bad connection and dials anew.
func retry[T any](ctx context.Context, f func() (T, error)) (T, error) {
	var (
		v   T
		err error
	)
	for range 20 {
		if v, err = f(); err == nil {
			return v, nil
		}
		select {
		case <-ctx.Done():
			return v, err
		case <-time.After(100 * time.Millisecond):
		}
	}
	return v, err
}

// fakeTB records what the accessors do when a variable is missing, instead
// of ending the test.
type fakeTB struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Skipf(format string, args ...any) {
	f.skipped, f.msg = true, fmt.Sprintf(format, args...)
}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed, f.msg = true, fmt.Sprintf(format, args...)
}

func TestMissingServerSkipsOrFails(t *testing.T) {
	t.Setenv(testenv.EnvRedis, "")

	t.Setenv(testenv.EnvRequireServers, "")
	f := &fakeTB{TB: t}
	if got := testenv.RedisURL(f); got != "" || !f.skipped || f.failed {
		t.Errorf("without require: got %q skipped=%v failed=%v", got, f.skipped, f.failed)
	}
	if !strings.Contains(f.msg, "make test") {
		t.Errorf("skip message %q does not tell to run make test", f.msg)
	}

	t.Setenv(testenv.EnvRequireServers, "1")
	f = &fakeTB{TB: t}
	if got := testenv.RedisAddr(f); got != "" || f.skipped || !f.failed {
		t.Errorf("with require: got %q skipped=%v failed=%v", got, f.skipped, f.failed)
	}
}

func TestAddrParsing(t *testing.T) {
	t.Setenv(testenv.EnvClickHouse, "clickhouse://127.0.0.1:19000")
	t.Setenv(testenv.EnvRedis, "redis://127.0.0.1:16379")
	if got := testenv.ClickHouseAddr(t); got != "127.0.0.1:19000" {
		t.Errorf("ClickHouseAddr = %q", got)
	}
	if got := testenv.RedisAddr(t); got != "127.0.0.1:16379" {
		t.Errorf("RedisAddr = %q", got)
	}

	t.Setenv(testenv.EnvClickHouse, "127.0.0.1") // no scheme, no port
	f := &fakeTB{TB: t}
	testenv.ClickHouseAddr(f)
	if !f.failed {
		t.Error("malformed TOLLGATE_TEST_CLICKHOUSE accepted")
	}
}
