// Package chstore writes Tollgate's request log to ClickHouse: the
// streaming writer (Open, Writer) with its disk spool, and feedback inserts
// (InsertFeedback). The tables, their migrations (Migrate) and the
// --clickhouse URL are package chschema's; the reads (query API, alert
// metrics) and the alert store are in package chquery.
//
// # Reading without duplicates
//
// The writer guarantees at-least-once delivery; exactly-once is what
// queries see when they read with FINAL, because a batch inserted twice (a
// retry whose first attempt did land, a spool replayed after a crash)
// consists of identical rows with the same sorting key, which
// ReplacingMergeTree collapses:
//
//	SELECT model, count() AS calls, sum(cost_usd) AS cost
//	FROM tollgate.requests FINAL
//	WHERE tenant = 'acme' AND created_at >= toStartOfMonth(now())
//	GROUP BY model
//
// More examples (they run on 18.16 and current releases):
//
//	-- cost per user this month
//	SELECT user_id, sum(cost_usd) AS cost FROM tollgate.requests FINAL
//	WHERE tenant = 'acme' AND created_at >= toStartOfMonth(now())
//	GROUP BY user_id ORDER BY cost DESC
//
//	-- p95 latency per model over the last day
//	SELECT model, quantile(0.95)(latency_ms) AS p95_ms FROM tollgate.requests FINAL
//	WHERE created_at >= now() - INTERVAL 1 DAY GROUP BY model
//
//	-- properties are parallel arrays (Nested)
//	SELECT count() FROM tollgate.requests FINAL
//	WHERE properties.value[indexOf(properties.key, 'env')] = 'prod'
//
// The query API uses FINAL. Background merges remove the duplicates from
// disk eventually; until then a query without FINAL can count a replayed row
// twice (after an outage only; in normal operation there are none).
//
// # Writer guarantees
//
// Write returns once the record is in the write-ahead log (wal.go,
// <SpoolDir>/wal/): in the page cache, so a process killed at any moment
// (SIGKILL, OOM) loses no record whose Write returned. Concurrent Writes
// share one write(2) (group commit, package storage/wal); Write never
// waits for ClickHouse. The log is fsynced every WALFsyncInterval (1s):
// a machine crash loses at most the records of that window, the only loss
// in normal operation (the window is the interval plus the time the fsync
// takes: the cadence has a goroutine of its own); with WALSyncEveryWrite
// it loses none. Open moves
// the segments a killed process left into the spool and replays them
// first (at least once; see above).
//
// Records are otherwise lost, counted in tollgate_log_rows_dropped_total
// and logged at error level, only when the spool is full (SpoolMaxBytes;
// reason="spool_full"), when memory holds twice QueueSize rows because the
// disk cannot keep up (reason="queue_full"), or when the log cannot be
// written (a failing disk) or does not answer within walAppendWait (1s, a
// stalled disk; Write then goes on): then records are held in memory only,
// counted in tollgate_log_wal_unlogged_rows_total, and a process that dies
// before they reach ClickHouse or the spool loses them. Records that Close
// can neither insert nor spool but that are in the log are not lost: their
// segments stay and the next Open replays them. A spool file damaged on
// disk still replays every frame that can be read; the records that
// cannot are counted (reason="corrupt") and the file is kept in corrupt/
// (spoolformat.go).
//
// With Options.RequireSchema (serving processes, which do not migrate)
// nothing is inserted while the database's schema is older than this
// binary's or missing: records wait in the spool as during an outage, and
// are replayed once `tollgate migrate` has run (schemagate.go).
package chstore
