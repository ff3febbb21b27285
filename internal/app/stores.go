package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate-dev/tollgate/policies/gate"
	"github.com/tollgate-dev/tollgate/policies/prompt"
	"github.com/tollgate-dev/tollgate/record"
	"github.com/tollgate-dev/tollgate/storage/chschema"
	"github.com/tollgate-dev/tollgate/storage/chstore"
	"github.com/tollgate-dev/tollgate/storage/memstore"
	"github.com/tollgate-dev/tollgate/storage/redisstore"
)

// openGate builds the cache and rate-limit gate on Redis when configured,
// else on the in-process store (one process only: limits are not shared).
func openGate(cfg *Config, reg prometheus.Registerer, log *slog.Logger) (*gate.Gate, prompt.Store, io.Closer, error) {
	var store gate.Store
	var prompts prompt.Store
	var closer io.Closer = io.NopCloser(nil)
	if cfg.Redis != "" {
		rs, err := redisstore.Open(cfg.Redis, redisstore.Options{})
		if err != nil {
			return nil, nil, nil, fmt.Errorf("redis: %w", err)
		}
		redisstore.RouteLogs(log)
		store, prompts, closer = rs, rs.Prompts(0), rs
		log.Info("cache, rate limits and prompts in Redis")
	} else {
		store, prompts = memstore.New(memstore.Options{}), memstore.NewPromptStore(memstore.PromptOptions{})
		log.Info("cache, rate limits and prompts in process memory (no --redis)")
	}
	g := gate.New(gate.Options{
		Store:           store,
		FailClosed:      cfg.RateLimitFailClosed,
		Timeout:         cfg.RedisTimeout.Duration,
		CompleteTimeout: cfg.RedisWriteTimeout.Duration,
		Metrics:         gate.NewMetrics(reg),
		Logger:          log,
	})
	return g, prompts, closer, nil
}

// storeTimeout is the floor of redis-timeout and redis-write-timeout:
// below a millisecond no round trip could finish, and every call would
// fail open.
func storeTimeout(v time.Duration) error {
	if v < time.Millisecond {
		return errors.New("must be at least 1ms")
	}
	return nil
}

// belowMessage: the check's reply must come before Envoy stops waiting
// for it (message-timeout), or a slow Redis fails the call instead of
// letting it through.
func (c *Config) belowMessage(v time.Duration) error {
	if v >= c.MessageTimeout.Duration {
		return errors.New("must be below message-timeout (" + c.MessageTimeout.Duration.String() + "): Envoy waits no longer for the reply the check holds back")
	}
	return nil
}

// withinShutdown: the calls after the reply belong to the call still in
// flight, which shutdown-timeout bounds.
func (c *Config) withinShutdown(v time.Duration) error {
	if v > c.ShutdownTimeout.Duration {
		return errors.New("must not be above shutdown-timeout (" + c.ShutdownTimeout.Duration.String() + "), which in-flight calls finish within")
	}
	return nil
}

// promptLibraryOptions: the prompt folder, and the seen-version limits
// over the store of openGate.
func promptLibraryOptions(cfg *Config, store prompt.Store, reg prometheus.Registerer, log *slog.Logger) prompt.LibraryOptions {
	seenIDs := cfg.PromptSeenMaxIDs
	if seenIDs == 0 {
		seenIDs = -1 // prompt-seen-max-ids 0: no seen versioning (the library's 0 is its default)
	}
	return prompt.LibraryOptions{
		Store: store, Dir: cfg.PromptsDir,
		MaxSeenPrompts: seenIDs, MaxSeenVersions: cfg.PromptSeenMaxVersions, SeenTTL: cfg.PromptSeenTTL.Duration,
		Registerer: reg, Logger: log,
	}
}

// openSink picks where records go: ClickHouse when configured, else the
// embedded default, a JSON-lines file in the data folder.
func openSink(ctx context.Context, cfg *Config, reg prometheus.Registerer, log *slog.Logger) (record.Sink, error) {
	if cfg.ClickHouse == "" {
		path := filepath.Join(cfg.DataDir, "requests.jsonl")
		sink, err := record.OpenFileSink(path, cfg.LogFsyncInterval.Duration)
		if err != nil {
			return nil, err
		}
		log.Info("logging calls to a file", "path", path)
		return sink, nil
	}
	if cfg.Migrate {
		migrateAtStart(ctx, cfg.ClickHouse, log)
	}
	spool := cfg.SpoolDir
	if spool == "" {
		spool = filepath.Join(cfg.DataDir, "spool")
	}
	o := writerOptions(cfg)
	o.SpoolDir, o.Logger, o.Registerer = spool, log, reg
	// Whether it migrates or not, a serving process writes only to the
	// schema it knows (a --migrate that failed, or `tollgate migrate` not
	// yet run): records wait in the spool until then.
	o.RequireSchema = true
	o.NewErasures = erasureList // housekeeping.go
	w, err := chstore.Open(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: %w", err)
	}
	log.Info("logging calls to ClickHouse", "spool", spool)
	return w, nil
}

// sinkSchemaBehind is the ClickHouse writer's SchemaBehind, for /readyz;
// nil for the file sink.
func sinkSchemaBehind(sink record.Sink) func() error {
	if w, ok := sink.(*chstore.Writer); ok {
		return w.SchemaBehind
	}
	return nil
}

// writerOptions are the ClickHouse writer's settings; --log-fsync-interval
// 0 is an fsync per group write (the writer's zero interval is its default).
func writerOptions(cfg *Config) chstore.Options {
	return chstore.Options{
		URL:       cfg.ClickHouse,
		BatchSize: cfg.LogBatchSize, FlushInterval: cfg.LogFlushInterval.Duration,
		QueueSize: cfg.LogQueueSize, SpoolMaxBytes: cfg.SpoolMaxBytes,
		WALFsyncInterval: cfg.LogFsyncInterval.Duration, WALSyncEveryWrite: cfg.LogFsyncInterval.Duration == 0,
	}
}

// migrateFirstWait bounds the first migration attempt of a process run
// with --migrate, made before the writer starts so that its first schema
// check finds the tables (and does not log them missing).
const migrateFirstWait = 5 * time.Second

// migrateAtStart is --migrate (tollgate dev's default): one attempt before
// the writer starts, then, if that failed, retries in the background:
// ClickHouse being down must not stop calls (records wait in the spool
// meanwhile).
func migrateAtStart(ctx context.Context, url string, log *slog.Logger) {
	first, cancel := context.WithTimeout(ctx, migrateFirstWait)
	err := chschema.Migrate(first, url, log)
	cancel()
	if err == nil {
		return
	}
	log.Warn("clickhouse migration failed; retrying in the background", "err", err)
	go migrateUntilDone(ctx, url, log)
}

// migrateUntilDone retries the schema migration until it succeeds or ctx
// ends.
func migrateUntilDone(ctx context.Context, url string, log *slog.Logger) {
	for wait := time.Second; ; wait = min(2*wait, 30*time.Second) {
		err := chschema.Migrate(ctx, url, log)
		if err == nil || errors.Is(ctx.Err(), context.Canceled) {
			return
		}
		log.Warn("clickhouse migration failed; retrying", "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// runMigrate is `tollgate migrate`: create or upgrade the schema and exit.
// It is the one command that needs DDL rights (the Kubernetes Job of
// k8s/migrate runs it); serving processes wait for it (RequireSchema).
func runMigrate(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	cfg, fs, err := loadConfig("migrate", args, getenv, false)
	if err != nil {
		return usageError(fs, err)
	}
	if cfg.ClickHouse == "" {
		return errors.New("migrate: --clickhouse (or TOLLGATE_CLICKHOUSE) is required")
	}
	log := newLogger(stderr, cfg.LogLevel)
	if err := chschema.Migrate(ctx, cfg.ClickHouse, log); err != nil {
		return err
	}
	// A line for the Job's log: what serving processes will find.
	if t, err := chschema.ParseURL(cfg.ClickHouse); err == nil {
		log.Info("clickhouse schema up to date", "clickhouse", t.Redacted, "database", t.DB, "version", chschema.SchemaVersion())
	}
	return nil
}
