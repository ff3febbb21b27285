package chstore

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate-dev/tollgate/internal/promreg"
	"github.com/tollgate-dev/tollgate/storage/chschema"
)

// Serving processes do not migrate (Options.RequireSchema): they must not
// write to a database whose schema is older than the one they write, where
// an insert would fail on a missing column or, worse, land without it. The
// gate reuses the writer's outage machinery: a writer that requires the
// schema starts as if ClickHouse were down, and its ping, which the sender
// makes before the first insert and again (with back-off, at most every
// backoffMax) after every failure, also checks the schema version. While
// the schema is behind, records wait in the spool exactly as during an
// outage (nothing on the request path waits, nothing is lost while the
// spool has room) and are replayed, in order, once it is migrated.

// schemaGate wraps the sender's ping with the schema check.
type schemaGate struct {
	sender
	check  func(ctx context.Context) (uint32, error) // chschema.CheckVersion on the writer's database
	behind prometheus.Gauge                          // tollgate_clickhouse_schema_behind
	last   atomic.Pointer[chschema.BehindError]      // nil while the schema is fine
	log    *slog.Logger
}

func newSchemaGate(snd sender, check func(context.Context) (uint32, error), reg prometheus.Registerer, log *slog.Logger) *schemaGate {
	g := &schemaGate{sender: snd, check: check, log: log,
		behind: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tollgate_clickhouse_schema_behind",
			Help: "1 while the ClickHouse schema is older than this binary writes, or missing: log records wait in the spool until `tollgate migrate` has run.",
		})}
	if reg != nil {
		g.behind = promreg.Register(reg, g.behind)
	}
	return g
}

func (g *schemaGate) ping(ctx context.Context) error {
	if err := g.sender.ping(ctx); err != nil {
		return err
	}
	found, err := g.check(ctx)
	var b *chschema.BehindError
	if errors.As(err, &b) {
		g.behind.Set(1)
		g.last.Store(b)
		return err
	}
	if err != nil {
		return err
	}
	g.behind.Set(0)
	if g.last.Swap(nil) != nil {
		g.log.Info("clickhouse log: the schema is migrated; writing the records that waited in the spool", "schema_version", found)
	}
	return nil
}

// SchemaBehind is the reason the writer does not write to ClickHouse when
// the database's schema is older than this binary's, or missing (a
// *chschema.BehindError naming the versions and the fix); nil when it is
// fine or not checked (RequireSchema unset).
func (w *Writer) SchemaBehind() error {
	if g, ok := w.snd.(*schemaGate); ok {
		if b := g.last.Load(); b != nil {
			return b
		}
	}
	return nil
}

// gateUntilChecked makes a writer that requires the schema start as if
// ClickHouse were down: nothing is inserted before the first check passed.
func (w *Writer) gateUntilChecked() {
	if _, ok := w.snd.(*schemaGate); ok {
		w.clickhouse.markDown()
	}
}

func isSchemaBehind(err error) bool {
	var b *chschema.BehindError
	return errors.As(err, &b)
}

// logSchemaBehind is the log line of a failure that is the schema's: at
// error level (someone has to act), with the fix.
func logSchemaBehind(log *slog.Logger, err error, repeat bool, spoolFiles int, spoolBytes int64) bool {
	var b *chschema.BehindError
	if !errors.As(err, &b) {
		return false
	}
	msg := "clickhouse log: NOT WRITING to ClickHouse: its schema is older than this binary needs; records wait in the spool until `tollgate migrate` has run"
	if repeat {
		msg = "clickhouse log: still NOT WRITING to ClickHouse: its schema is older than this binary needs; run `tollgate migrate`"
	}
	log.Error(msg, "database", b.Database, "schema_version", b.Found, "needed_version", b.Needed, "missing_tables", b.Missing,
		"err", err, "spool_files", spoolFiles, "spool_bytes", spoolBytes)
	return true
}
