// Package retention expires old data: --retention removes whole rows of
// requests, feedback and scores older than a duration, --body-retention
// blanks the request and response bodies of requests sooner. A Runner
// does it on a timer in one process at a time (Run with a lease); every
// step is idempotent, so two processes doing it at once (no Redis for the
// lease) only repeat each other's work.
//
// How depends on the server, as the schema's variants do (chschema):
//
//   - ClickHouse 18.16 and other servers before 21.8 have no TTL: the
//     requests table's monthly partitions are dropped (ALTER TABLE … DROP
//     PARTITION) once the whole month is older than the retention; feedback
//     and scores, not partitioned, lose their old rows by an ALTER TABLE …
//     DELETE mutation, and bodies are blanked by an ALTER TABLE … UPDATE
//     mutation, each at most once a day and only when there is something
//     to remove.
//   - Newer servers get a table TTL (rows) and a column TTL on the two
//     body columns (bodies), set once; ClickHouse then removes the data
//     itself as it merges.
package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/tollgate-dev/tollgate/storage/chschema"
	"github.com/tollgate-dev/tollgate/storage/mutation"
)

// Options configure a Runner.
type Options struct {
	Conn driver.Conn // not bound to a database
	DB   string
	// Cluster is the --clickhouse-cluster name ("" = one server): drops
	// and mutations then go to the local tables ON CLUSTER.
	Cluster string
	// Retention is how long rows are kept; 0: forever.
	Retention time.Duration
	// BodyRetention is how long request_body and response_body are kept;
	// 0: as long as their rows.
	BodyRetention time.Duration
	Now           func() time.Time
	Logger        *slog.Logger
}

// Runner applies the retention.
type Runner struct {
	o Options
	// The day (cutoff) of the last mutation each table got, so that the
	// checks that scan a table run once a day, not every pass.
	lastDelete map[string]time.Time
	lastBodies time.Time
	// mut reads the tagged mutations: on every node in cluster mode, as
	// another shard may still run the last one (storage/mutation).
	mut *mutation.Reader
}

// New returns a Runner.
func New(o Options) *Runner {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Runner{o: o, lastDelete: map[string]time.Time{},
		mut: &mutation.Reader{Conn: o.Conn, DB: o.DB, Cluster: o.Cluster}}
}

// Pass applies the retention once.
func (r *Runner) Pass(ctx context.Context) error {
	if r.o.Retention <= 0 && r.o.BodyRetention <= 0 {
		return nil
	}
	var version string
	if err := r.o.Conn.QueryRow(ctx, "SELECT version()").Scan(&version); err != nil {
		return fmt.Errorf("retention: %w", err)
	}
	if chschema.SupportsTTL(version) {
		return r.ttl(ctx)
	}
	var errs []error
	if r.o.Retention > 0 {
		cutoff := r.o.Now().UTC().Add(-r.o.Retention)
		errs = append(errs, r.dropPartitions(ctx, chschema.RequestsTable, cutoff))
		for _, t := range []string{chschema.FeedbackTable, chschema.ScoresTable} {
			errs = append(errs, r.deleteOld(ctx, t, cutoff))
		}
	}
	if r.o.BodyRetention > 0 {
		errs = append(errs, r.blankBodies(ctx, r.o.Now().UTC().Add(-r.o.BodyRetention)))
	}
	return errors.Join(errs...)
}

var monthRE = regexp.MustCompile(`^[0-9]{6}$`)

// dropPartitions drops table's monthly partitions (toYYYYMM(created_at))
// whose whole month is older than cutoff. Dropping one twice is harmless.
// The months come from the rows themselves (before cutoff's month: the
// server reads only those partitions), so in cluster mode every shard's
// are found.
func (r *Runner) dropPartitions(ctx context.Context, table string, cutoff time.Time) error {
	first := time.Date(cutoff.Year(), cutoff.Month(), 1, 0, 0, 0, 0, time.UTC)
	rows, err := r.o.Conn.Query(ctx, fmt.Sprintf("SELECT DISTINCT toString(toYYYYMM(created_at)) FROM %s.%s WHERE created_at < toDateTime(%d)",
		r.o.DB, table, first.Unix()))
	if err != nil {
		return fmt.Errorf("retention: %s partitions: %w", table, err)
	}
	var old []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			rows.Close()
			return err
		}
		if monthRE.MatchString(p) && monthEnd(p).Compare(cutoff) <= 0 {
			old = append(old, p)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, p := range old {
		t := r.target()
		if err := r.o.Conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s.%s%s DROP PARTITION %s", r.o.DB, t.Local(table), t.OnCluster(), p)); err != nil {
			return fmt.Errorf("retention: drop %s partition %s: %w", table, p, err)
		}
		r.o.Logger.Info("retention: partition dropped", "table", table, "partition", p)
	}
	return nil
}

// monthEnd is the first instant after the month of partition YYYYMM.
func monthEnd(p string) time.Time {
	y, _ := strconv.Atoi(p[:4])
	m, _ := strconv.Atoi(p[4:])
	return time.Date(y, time.Month(m)+1, 1, 0, 0, 0, 0, time.UTC)
}

// day is t's day: mutations run with a cutoff that moves once a day.
func day(t time.Time) time.Time { return t.UTC().Truncate(24 * time.Hour) }

// deleteOld deletes table's rows created before cutoff's day, by a
// mutation, when there are some and no earlier one is still running.
func (r *Runner) deleteOld(ctx context.Context, table string, cutoff time.Time) error {
	cut := day(cutoff)
	if !r.lastDelete[table].Before(cut) {
		return nil
	}
	where := fmt.Sprintf("created_at < toDateTime(%d)", cut.Unix())
	started, err := r.mutate(ctx, table, "retention", where, "DELETE WHERE "+where)
	if err == nil {
		r.lastDelete[table] = cut
		if started {
			r.o.Logger.Info("retention: deleting old rows", "table", table, "before", cut)
		}
	}
	return err
}

// blankBodies empties request_body and response_body of requests created
// before cutoff's day.
func (r *Runner) blankBodies(ctx context.Context, cutoff time.Time) error {
	cut := day(cutoff)
	if !r.lastBodies.Before(cut) {
		return nil
	}
	where := fmt.Sprintf("created_at < toDateTime(%d) AND (request_body != '' OR response_body != '')", cut.Unix())
	started, err := r.mutate(ctx, chschema.RequestsTable, "body-retention", where,
		"UPDATE request_body = '', response_body = '' WHERE "+where)
	if err == nil {
		r.lastBodies = cut
		if started {
			r.o.Logger.Info("retention: blanking old bodies", "before", cut)
		}
	}
	return err
}

// mutate runs ALTER TABLE table cmd (tagged with mark) unless a mutation
// of the same mark is still running on some node or no row matches where.
func (r *Runner) mutate(ctx context.Context, table, mark, where, cmd string) (bool, error) {
	m, err := r.mut.Read(ctx, table, "'"+mark+"'")
	if err != nil {
		return false, fmt.Errorf("retention: %w", err)
	}
	if m.Running(mark) {
		return false, errBusy
	}
	var n uint64
	if err := r.o.Conn.QueryRow(ctx, fmt.Sprintf("SELECT count() FROM %s.%s WHERE %s", r.o.DB, table, where)).Scan(&n); err != nil {
		return false, fmt.Errorf("retention: %s: %w", table, err)
	}
	if n == 0 {
		return false, nil
	}
	if err := r.o.Conn.Exec(ctx, mutation.Alter(r.o.DB, r.o.Cluster, table, cmd, mark)); err != nil {
		return false, fmt.Errorf("retention: %s: %w", table, err)
	}
	return true, nil
}

// errBusy: the previous mutation still runs; the next pass tries again.
var errBusy = errors.New("retention: the previous mutation is still running")

// ttl sets the table and column TTLs on a server that has them, unless
// they are set already (changing a TTL makes the server rewrite parts).
// A retention turned off later leaves the TTL: remove it by hand with
// ALTER TABLE … REMOVE TTL.
func (r *Runner) ttl(ctx context.Context) error {
	var errs []error
	for _, t := range []string{chschema.RequestsTable, chschema.FeedbackTable, chschema.ScoresTable} {
		var create string
		if err := r.o.Conn.QueryRow(ctx, "SELECT create_table_query FROM system.tables WHERE database = ? AND name = ?",
			r.o.DB, r.target().Local(t)).Scan(&create); err != nil {
			errs = append(errs, fmt.Errorf("retention: %s: %w", t, err))
			continue
		}
		if r.o.Retention > 0 {
			want := chschema.TTLExpr(days(r.o.Retention))
			if !hasTableTTL(create, want) {
				errs = append(errs, r.o.Conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s.%s%s MODIFY TTL %s", r.o.DB, r.target().Local(t), r.target().OnCluster(), want)))
			}
		}
		if t == chschema.RequestsTable && r.o.BodyRetention > 0 {
			for _, ddl := range chschema.BodyTTLAlters(r.o.DB, r.target().Local(t), r.target().OnCluster(), create, days(r.o.BodyRetention)) {
				errs = append(errs, r.o.Conn.Exec(ctx, ddl))
			}
		}
	}
	return errors.Join(errs...)
}

// hasTableTTL tells whether create's table-level TTL (after ORDER BY) is want.
func hasTableTTL(create, want string) bool {
	i := strings.LastIndex(create, "ORDER BY")
	return i >= 0 && strings.Contains(create[i:], "TTL "+want)
}

// days rounds d up to whole days (TTLs are set in days).
func days(d time.Duration) int { return int((d + 24*time.Hour - 1) / (24 * time.Hour)) }

func (r *Runner) target() *chschema.Target { return &chschema.Target{Cluster: r.o.Cluster} }
