package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tollgate-dev/tollgate/policies/gate"
	"github.com/tollgate-dev/tollgate/storage/chschema"
	"github.com/tollgate-dev/tollgate/storage/memstore"
	"github.com/tollgate-dev/tollgate/storage/redisstore"
)

// The servers of the test environment (scripts/testenv.sh exports them;
// `make bench` runs under it).
const (
	envRedis      = "TOLLGATE_TEST_REDIS"      // redis://127.0.0.1:PORT
	envClickHouse = "TOLLGATE_TEST_CLICKHOUSE" // clickhouse://127.0.0.1:PORT
)

// Log sinks (-sink) and gate stores (-store).
const (
	sinkClickHouse = "clickhouse"
	sinkFile       = "file"
	sinkDiscard    = "discard"

	storeRedis  = "redis"
	storeMemory = "memory"
	storeNone   = "none"
)

var (
	sinkKinds  = []string{sinkClickHouse, sinkFile, sinkDiscard}
	storeKinds = []string{storeRedis, storeMemory, storeNone}
)

// backends is what every Tollgate target of one benchmark plugs into.
type backends struct {
	sink     string
	store    string
	redisURL string      // store == redis
	chURL    string      // sink == clickhouse: the bench run's database
	logs     *logCounter // the writer's and the store's warnings, counted
	prefixes atomic.Uint64
}

func (be *backends) logger() *slog.Logger {
	if be.logs == nil {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(be.logs)
}

// openGate builds the cache / rate-limit gate of one Tollgate target on a
// store of its own: a fresh memstore, or Redis under a key prefix no other
// run uses (its keys are deleted by closeStore). trips is nil when the
// store's round trips cannot be counted.
func openGate(be *backends) (g *gate.Gate, closeStore func() error, trips func() uint64, err error) {
	switch be.store {
	case storeNone, "":
		return nil, func() error { return nil }, nil, nil
	case storeMemory:
		st := memstore.New(memstore.Options{})
		return gate.New(gate.Options{Store: st, Logger: be.logger()}), func() error { return nil }, nil, nil
	case storeRedis:
		prefix := fmt.Sprintf("tollgate-bench-%d-%d-%d:", os.Getpid(), time.Now().UnixNano()%1e9, be.prefixes.Add(1))
		st, err := redisstore.Open(be.redisURL, redisstore.Options{Prefix: prefix})
		if err != nil {
			return nil, nil, nil, fmt.Errorf("redis: %w", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := st.Ping(ctx); err != nil {
			st.Close()
			return nil, nil, nil, fmt.Errorf("redis: %w", err)
		}
		closeStore = func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			return errors.Join(deleteRedisPrefix(ctx, st, prefix), st.Close())
		}
		return gate.New(gate.Options{Store: st, Logger: be.logger()}), closeStore, st.RoundTrips, nil
	}
	return nil, nil, nil, fmt.Errorf("unknown store %q", be.store)
}

// deleteRedisPrefix removes a run's cache entries and buckets, so the
// shared test Redis does not keep thousands of week-long entries. (Single
// node or Sentinel: SCAN sees every key; on a Cluster only one node's.)
func deleteRedisPrefix(ctx context.Context, st *redisstore.Store, prefix string) error {
	c := st.Client()
	it := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var keys []string
	var errs []error
	flush := func() {
		if len(keys) > 0 {
			if err := c.Unlink(ctx, keys...).Err(); err != nil {
				errs = append(errs, err)
			}
			keys = keys[:0]
		}
	}
	for it.Next(ctx) {
		keys = append(keys, it.Val())
		if len(keys) == 1000 {
			flush()
		}
	}
	flush()
	return errors.Join(append(errs, it.Err())...)
}

// benchDatabase creates and migrates a database of its own on the
// ClickHouse at base (clickhouse://host:port) and returns its URL and a
// function that drops it.
func benchDatabase(ctx context.Context, base, what string, log *slog.Logger) (url, db string, drop func() error, err error) {
	db = fmt.Sprintf("tollgate_bench_%s_%d_%04x", what, time.Now().Unix(), rand.N(1<<16))
	url = strings.TrimSuffix(base, "/") + "/" + db
	if b, query, ok := strings.Cut(base, "?"); ok { // ?cluster=… (ingest-cluster)
		url = strings.TrimSuffix(b, "/") + "/" + db + "?" + query
	}
	drop = func() error {
		conn, _, err := chschema.Connect(url)
		if err != nil {
			return err
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		return conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db)
	}
	mctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := chschema.Migrate(mctx, url, log); err != nil {
		return "", "", nil, errors.Join(fmt.Errorf("clickhouse: migrating %s: %w", db, err), drop())
	}
	return url, db, drop, nil
}

func slogTo(l *logCounter) *slog.Logger { return slog.New(l) }
