package chstore

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate-dev/tollgate/internal/promreg"
)

// Drop reasons (label "reason" of tollgate_log_rows_dropped_total).
const (
	dropSpoolFull  = "spool_full"  // the spool reached SpoolMaxBytes
	dropQueueFull  = "queue_full"  // memory at twice QueueSize: the spool cannot keep up
	dropClosed     = "closed"      // Write after Close
	dropSpoolError = "spool_error" // the spool could not be written and Close had to give up
	dropCorrupt    = "corrupt"     // unreadable in a damaged spool file (spoolformat.go)
	dropTorn       = "torn"        // in a spool file the writer died writing
)

type metrics struct {
	queued, written, spooled, replayed prometheus.Counter
	dropped                            *prometheus.CounterVec
	insertErrors                       prometheus.Counter
	spoolCorrupt                       prometheus.Counter
	batchSeconds                       prometheus.Histogram
	queueRows                          prometheus.Gauge
	spoolFiles, spoolBytes             prometheus.Gauge
	up                                 prometheus.Gauge
	walErrors, walUnlogged             prometheus.Counter
	walSegments                        prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		queued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tollgate_log_rows_queued_total",
			Help: "Log records accepted into the in-memory queue.",
		}),
		written: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tollgate_log_rows_written_total",
			Help: "Log records inserted into ClickHouse straight from memory.",
		}),
		spooled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tollgate_log_rows_spooled_total",
			Help: "Log records written to the disk spool (ClickHouse down, slow, or shutdown).",
		}),
		replayed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tollgate_log_rows_replayed_total",
			Help: "Log records inserted into ClickHouse from the disk spool.",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_log_rows_dropped_total",
			Help: "Log records lost, by reason (spool_full, queue_full, closed, spool_error, corrupt, torn).",
		}, []string{"reason"}),
		insertErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tollgate_log_insert_errors_total",
			Help: "Failed ClickHouse batch inserts (each is retried from the spool).",
		}),
		spoolCorrupt: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tollgate_log_spool_corrupt_total",
			Help: "Damaged spool files (replayed for their readable records, then moved to corrupt/), and files that are not spool files. Each file once; torn tails are not counted.",
		}),
		batchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tollgate_log_batch_seconds",
			Help:    "Duration of successful ClickHouse batch inserts.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}),
		queueRows: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tollgate_log_queue_rows",
			Help: "Log records held in memory, waiting for ClickHouse or the spool.",
		}),
		spoolFiles: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tollgate_log_spool_files",
			Help: "Files in the disk spool.",
		}),
		spoolBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tollgate_log_spool_bytes",
			Help: "Bytes in the disk spool.",
		}),
		up: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tollgate_log_clickhouse_up",
			Help: "1 when the last ClickHouse insert or ping succeeded.",
		}),
		walErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tollgate_log_wal_errors_total",
			Help: "Failures of the local write-ahead log (segment create, write or fsync); records are then held in memory only until a new segment can be written.",
		}),
		walUnlogged: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tollgate_log_wal_unlogged_rows_total",
			Help: "Log records accepted while the write-ahead log could not be written: in memory only, lost if the process dies before they reach ClickHouse or the spool.",
		}),
		walSegments: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tollgate_log_wal_segments",
			Help: "Write-ahead log segments on disk holding records not yet in ClickHouse or the spool (and the current one).",
		}),
	}
	for _, r := range []string{dropSpoolFull, dropQueueFull, dropClosed, dropSpoolError, dropCorrupt, dropTorn} {
		m.dropped.WithLabelValues(r) // export zeros: alerts can use rate() from the start
	}
	if reg == nil {
		return m
	}
	m.queued = promreg.Register(reg, m.queued)
	m.written = promreg.Register(reg, m.written)
	m.spooled = promreg.Register(reg, m.spooled)
	m.replayed = promreg.Register(reg, m.replayed)
	m.dropped = promreg.Register(reg, m.dropped)
	m.insertErrors = promreg.Register(reg, m.insertErrors)
	m.spoolCorrupt = promreg.Register(reg, m.spoolCorrupt)
	m.batchSeconds = promreg.Register(reg, m.batchSeconds)
	m.queueRows = promreg.Register(reg, m.queueRows)
	m.spoolFiles = promreg.Register(reg, m.spoolFiles)
	m.spoolBytes = promreg.Register(reg, m.spoolBytes)
	m.up = promreg.Register(reg, m.up)
	m.walErrors = promreg.Register(reg, m.walErrors)
	m.walUnlogged = promreg.Register(reg, m.walUnlogged)
	m.walSegments = promreg.Register(reg, m.walSegments)
	return m
}
