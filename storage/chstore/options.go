package chstore

import (
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
)

// Options configure a Writer. Only URL and SpoolDir are required.
type Options struct {
	URL           string        // clickhouse://host:9000/tollgate (user/password in the URL allowed)
	BatchSize     int           // rows per insert, default 5000
	FlushInterval time.Duration // a partial batch is sent after at most this long, default 1s
	QueueSize     int           // in-memory rows before spilling to the spool, default 100000
	SpoolDir      string        // required; one directory per process
	SpoolMaxBytes int64         // default 1 GiB; beyond it records are dropped, counted, logged loudly
	Logger        *slog.Logger
	// WALFsyncInterval is the cadence at which the write-ahead log
	// (wal.go) is fsynced, default 1s: a machine crash loses at most the
	// records of that window (a killed process loses none). With
	// WALSyncEveryWrite each group write is fsynced before Write returns:
	// a machine crash loses nothing, each Write waits for the disk.
	WALFsyncInterval  time.Duration
	WALSyncEveryWrite bool
	// NoWAL turns the write-ahead log off: a killed process loses the
	// records in memory (up to about FlushInterval of them). For
	// benchmarks that compare.
	NoWAL bool
	// Erasures drops the records of erased subjects before they are
	// inserted, from memory and at replay (erasure.go). Nil: none, unless
	// NewErasures makes them.
	Erasures Erasures
	// NewErasures makes Erasures on the writer's own connection (Open
	// only; package storage/erasure's NewList).
	NewErasures func(conn driver.Conn, db string) Erasures
	// RequireSchema: insert nothing until the database's schema is at
	// least the version this binary writes (chschema.CheckVersion), checked
	// before the first insert and after every failure; until then records
	// wait in the spool, the cause is logged at error level and
	// tollgate_clickhouse_schema_behind is 1 (schemagate.go). For
	// processes that do not migrate.
	RequireSchema bool
	// Registerer receives the metrics: tollgate_log_rows_{queued,written,
	// spooled,replayed,dropped}_total, tollgate_log_queue_rows,
	// tollgate_log_spool_{files,bytes}, tollgate_log_insert_errors_total,
	// tollgate_log_spool_corrupt_total, tollgate_log_batch_seconds,
	// tollgate_log_clickhouse_up, tollgate_log_wal_{errors,unlogged_rows}
	// _total, tollgate_log_wal_segments. Nil: not registered.
	Registerer prometheus.Registerer
}

const (
	defaultBatchSize     = 5000
	defaultFlushInterval = time.Second
	defaultQueueSize     = 100_000
	defaultSpoolMaxBytes = 1 << 30

	defaultWALFsyncInterval = time.Second

	insertTimeout = 30 * time.Second // one batch; a hung server is given up on after this
	pingTimeout   = 5 * time.Second
	backoffMin    = 100 * time.Millisecond
	backoffMax    = 10 * time.Second
	// closeAttempts: failed tries (after quick back-off) before Close stops
	// waiting for ClickHouse and leaves the rest in the spool.
	closeAttempts = 3
	logEvery      = 30 * time.Second // repeated-failure logs
)

func (o Options) withDefaults() Options {
	if o.BatchSize <= 0 {
		o.BatchSize = defaultBatchSize
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = defaultFlushInterval
	}
	if o.QueueSize <= 0 {
		o.QueueSize = defaultQueueSize
	}
	o.QueueSize = max(o.QueueSize, o.BatchSize)
	if o.SpoolMaxBytes <= 0 {
		o.SpoolMaxBytes = defaultSpoolMaxBytes
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.WALFsyncInterval <= 0 {
		o.WALFsyncInterval = defaultWALFsyncInterval
	}
	return o
}
