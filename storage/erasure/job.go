package erasure

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate-dev/tollgate/policies/gate"
	"github.com/tollgate-dev/tollgate/storage/chschema"
	"github.com/tollgate-dev/tollgate/storage/chstore"
	"github.com/tollgate-dev/tollgate/storage/mutation"
)

// The steps of an erasure, in order. Each is recorded (a new row) before
// the next begins, so a Runner that stops half way, or another that takes
// over, resumes where it was; each step is idempotent.
//
//   - wait: until ErasureGrace after the cutoff, so that every log writer
//     has read the erasure (chstore.ErasureMaxStale) and every insert
//     made with an older list has landed; from then on the writers drop
//     the subject's records and the mutations below find all the rest.
//   - linked: read the subject's request ids from requests (once, so this
//     runs first) and ALTER TABLE … DELETE on feedback and scores by that
//     literal list, never a subquery: in cluster mode each shard runs its
//     mutation on its own time, possibly after another shard's requests
//     rows are gone. Then wait for both mutations to finish on every node
//     (mutations.go).
//   - requests: ALTER TABLE requests DELETE, and wait for it on every
//     node.
//   - caches: delete the exact and semantic cache entries the subject's
//     index sets in Redis name, and tell every replica's semantic index.
//   - done.
const (
	stepWait     = "wait"
	stepLinked   = "linked"
	stepRequests = "requests"
	stepCaches   = "caches"
	stepDone     = "done"
)

// Caches erases cache entries: the Redis store's EraseIndexed.
type Caches interface {
	// EraseIndexed deletes the entries the index sets name (exact cache
	// slots and semantic entries, the latter removed from every replica's
	// index too), then the sets, and returns how many entries it deleted.
	EraseIndexed(ctx context.Context, indexKeys []string) (int, error)
}

// Options configure a Runner.
type Options struct {
	Conn driver.Conn // ClickHouse, not bound to a database
	DB   string
	// Cluster is the --clickhouse-cluster name ("" = one server): the
	// mutations then go to each table's local tables ON CLUSTER.
	Cluster string
	// Caches erases the cache entries. Nil (no Redis): the cache step only
	// notes that there is no shared cache to erase.
	Caches Caches
	// Grace is the wait before the mutations (see stepWait). 0:
	// chstore.ErasureGrace; tests shorten it.
	Grace  time.Duration
	Now    func() time.Time
	Logger *slog.Logger
	// Registerer takes the Runner's metrics (nil: not exported).
	Registerer prometheus.Registerer
}

// Runner carries out pending erasures.
type Runner struct {
	o     Options
	store *Store
	m     runnerMetrics

	// mut reads the erasures' tagged mutations (every node in cluster
	// mode: storage/mutation).
	mut *mutation.Reader
}

// runnerMetrics tell an operator that erasures are stuck — the likely
// cause a ClickHouse user without the ALTER rights (docs/privacy.md).
type runnerMetrics struct {
	pending    prometheus.Gauge
	oldest     prometheus.Gauge
	stepErrors prometheus.Counter
}

func newRunnerMetrics(reg prometheus.Registerer) runnerMetrics {
	m := runnerMetrics{
		pending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tollgate_erasures_pending",
			Help: "Erasures not done yet, at the erasure job's last pass."}),
		oldest: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tollgate_erasure_oldest_pending_seconds",
			Help: "Age of the oldest erasure not done yet (0: none); growing past a few minutes means erasures are stuck."}),
		stepErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "tollgate_erasure_step_errors_total",
			Help: "Erasure steps that failed (retried at the next pass), e.g. a ClickHouse user without ALTER DELETE."}),
	}
	if reg != nil {
		reg.MustRegister(m.pending, m.oldest, m.stepErrors)
	}
	return m
}

// NewRunner returns a Runner; call Pass on a timer (Run does).
func NewRunner(o Options) *Runner {
	if o.Grace <= 0 {
		o.Grace = chstore.ErasureGrace
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Runner{o: o, store: NewStore(o.Conn, o.DB, o.Now), m: newRunnerMetrics(o.Registerer),
		mut: &mutation.Reader{Conn: o.Conn, DB: o.DB, Cluster: o.Cluster}}
}

// Pass moves every pending erasure on as far as it can go now.
func (r *Runner) Pass(ctx context.Context) error {
	list, err := r.store.pending(ctx)
	if err != nil {
		if isUnknownTable(err) {
			return nil
		}
		return err
	}
	r.m.pending.Set(float64(len(list)))
	var oldest time.Time
	for _, e := range list {
		if oldest.IsZero() || e.RequestedAt.Before(oldest) {
			oldest = e.RequestedAt
		}
	}
	if oldest.IsZero() {
		r.m.oldest.Set(0)
	} else {
		r.m.oldest.Set(max(0, r.o.Now().Sub(oldest).Seconds()))
	}
	var errs []error
	for _, e := range list {
		if err := r.advance(ctx, e); err != nil {
			r.m.stepErrors.Inc()
			// Returned, and logged by the caller at most once a minute:
			// a step failing for good must not log every pass.
			r.o.Logger.Debug("erasure: step failed; retried on the next pass", "id", e.ID, "step", e.Step, "err", err)
			errs = append(errs, fmt.Errorf("erasure %s: %w", e.ID, err))
		}
	}
	return errors.Join(errs...)
}

// advance runs e's steps until one has to wait.
func (r *Runner) advance(ctx context.Context, e *Erasure) error {
	if _, err := uuid.Parse(e.ID); err != nil {
		return fmt.Errorf("not an erasure id: %q", e.ID) // its marker goes into SQL
	}
	for {
		next, note, err := r.step(ctx, e)
		if err != nil || next == "" {
			return err
		}
		e.Step = next
		if note != "" {
			if e.Detail != "" {
				e.Detail += "; "
			}
			e.Detail += note
		}
		if next == stepDone {
			e.Status, e.CompletedAt = Done, r.o.Now().UTC()
		}
		if err := r.store.save(ctx, e); err != nil {
			return err
		}
		if next == stepDone {
			r.o.Logger.Info("erasure done", "id", e.ID, "tenant", e.Tenant, "kind", e.Subject.Kind, "detail", e.Detail)
			return nil
		}
	}
}

// step does the work of e's current step; next is "" while it must wait.
func (r *Runner) step(ctx context.Context, e *Erasure) (next, note string, err error) {
	switch e.Step {
	case stepWait, "":
		if r.o.Now().Before(e.RequestedAt.Add(r.o.Grace)) {
			return "", "", nil
		}
		ids, err := r.subjectRequestIDs(ctx, e)
		if err != nil {
			return "", "", err
		}
		nf, err := r.ensureLinkedMutations(ctx, chschema.FeedbackTable, e, ids)
		if err != nil {
			return "", "", err
		}
		ns, err := r.ensureLinkedMutations(ctx, chschema.ScoresTable, e, ids)
		if err != nil {
			return "", "", err
		}
		return stepLinked, fmt.Sprintf("feedback rows: %d, score rows: %d", nf, ns), nil
	case stepLinked:
		// Both tables are checked (and a shard's missing mutation
		// started again) before either is waited for.
		done := true
		for _, t := range []string{chschema.FeedbackTable, chschema.ScoresTable} {
			d, err := r.mutationsDone(ctx, t, e, marker(e)+"/")
			if err != nil {
				return "", "", err
			}
			done = done && d
		}
		if !done {
			return "", "", nil
		}
		n, err := r.ensureMutation(ctx, chschema.RequestsTable, e)
		if err != nil {
			return "", "", err
		}
		return stepRequests, fmt.Sprintf("request rows: %d", n), nil
	case stepRequests:
		if done, err := r.mutationsDone(ctx, chschema.RequestsTable, e, marker(e)); err != nil || !done {
			return "", "", err
		}
		return stepCaches, "", nil
	case stepCaches:
		if r.o.Caches == nil {
			return stepDone, "cache entries: no shared cache (Redis) configured", nil
		}
		n, err := r.o.Caches.EraseIndexed(ctx, IndexKeys(e.Tenant, e.Subject))
		if err != nil {
			return "", "", err
		}
		return stepDone, fmt.Sprintf("cache entries: %d", n), nil
	}
	return "", "", fmt.Errorf("unknown step %q", e.Step)
}

// IndexKeys are the Redis sets that list the cache entries of sub in
// tenant (written by the cache with each entry, policies/gate).
func IndexKeys(tenant string, sub Subject) []string {
	v := sub.Value
	if sub.Kind == Property {
		v = gate.PropertyIndexValue(sub.Key, sub.Value)
	}
	return []string{gate.ErasureIndexKey(tenant, string(sub.Kind), v)}
}

// marker goes into each mutation's WHERE (a condition that is always true)
// so that system.mutations tells this erasure's mutations apart.
func marker(e *Erasure) string { return "erasure:" + e.ID }

// requestsWhere selects the subject's rows of requests created before the
// cutoff plus ClockMargin (as the writers' List drops them).
func requestsWhere(e *Erasure) (string, []any) {
	w := fmt.Sprintf("tenant = ? AND created_at < toDateTime(%d)", e.RequestedAt.Add(ClockMargin).Unix())
	args := []any{e.Tenant}
	switch e.Subject.Kind {
	case User:
		w += " AND user_id = ?"
		args = append(args, e.Subject.Value)
	case Session:
		w += " AND session_id = ?"
		args = append(args, e.Subject.Value)
	case Request:
		w += " AND request_id = toUUID(?)"
		args = append(args, e.Subject.Value)
	case Property:
		w += " AND arrayExists((k, v) -> k = ? AND v = ?, properties.key, properties.value)"
		args = append(args, e.Subject.Key, e.Subject.Value)
	}
	return w, args
}

// ensureMutation starts the DELETE mutation of e on requests unless it
// was started already on every shard or there is nothing to delete (a
// mutation rewrites parts: not worth it for no rows). A mutation some
// shards have and others not (an ON CLUSTER ALTER that timed out there)
// is started again: a DELETE runs twice harmlessly. It returns the rows
// it covers (0 when started again).
func (r *Runner) ensureMutation(ctx context.Context, table string, e *Erasure) (uint64, error) {
	m, err := r.mutationsOf(ctx, table, e)
	if err != nil || m.StartedEverywhere(marker(e)) {
		return 0, err
	}
	w, args := requestsWhere(e)
	if m.Command(marker(e)) != "" {
		return 0, r.mutate(ctx, table, w, args, marker(e))
	}
	var n uint64
	if err := r.o.Conn.QueryRow(ctx, fmt.Sprintf("SELECT count() FROM %s.%s WHERE %s", r.o.DB, table, w), args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count %s: %w", table, err)
	}
	if n == 0 {
		return 0, nil
	}
	return n, r.mutate(ctx, table, w, args, marker(e))
}

// mutate starts ALTER TABLE … DELETE WHERE w on table's local tables (ON
// CLUSTER in cluster mode), tagged with mark.
func (r *Runner) mutate(ctx context.Context, table, w string, args []any, mark string) error {
	ddl := mutation.Alter(r.o.DB, r.o.Cluster, table, "DELETE WHERE "+w, mark)
	if err := r.o.Conn.Exec(ctx, ddl, args...); err != nil {
		return fmt.Errorf("delete from %s: %w", table, err)
	}
	return nil
}

// linkedBatch is how many request ids one feedback or scores mutation
// names (about 50 bytes each in the query; ClickHouse's max_query_size
// is 256 KiB).
const linkedBatch = 2000

// subjectRequestIDs reads the request ids of e's subject, in order, from
// the requests table (every shard's).
func (r *Runner) subjectRequestIDs(ctx context.Context, e *Erasure) ([]string, error) {
	if e.Subject.Kind == Request {
		return []string{e.Subject.Value}, nil
	}
	w, args := requestsWhere(e)
	rows, err := r.o.Conn.Query(ctx, fmt.Sprintf("SELECT DISTINCT toString(request_id) AS id FROM %s.%s WHERE %s ORDER BY id",
		r.o.DB, chschema.RequestsTable, w), args...)
	if err != nil {
		return nil, fmt.Errorf("request ids: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("request ids: %w", err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// ensureLinkedMutations deletes the feedback or scores rows (table) of
// the request ids, named literally — not through a subquery on requests:
// in cluster mode a shard's mutation runs on its own time, and a subquery
// it evaluated after another shard's requests were deleted would find
// nothing. One mutation per linkedBatch ids, each tagged with its batch
// number; a batch already started on every shard (a pass that stopped
// half way) is not started again, one some shards lack is. It returns the
// rows covered.
func (r *Runner) ensureLinkedMutations(ctx context.Context, table string, e *Erasure, ids []string) (uint64, error) {
	m, err := r.mutationsOf(ctx, table, e)
	if err != nil {
		return 0, err
	}
	var total uint64
	for b := 0; b*linkedBatch < len(ids); b++ {
		batch := ids[b*linkedBatch : min((b+1)*linkedBatch, len(ids))]
		mark := fmt.Sprintf("%s/%d", marker(e), b)
		if m.StartedEverywhere(mark) {
			continue
		}
		lits := make([]string, len(batch))
		for i, id := range batch {
			u, err := uuid.Parse(id)
			if err != nil {
				return 0, fmt.Errorf("request id %q: %w", id, err)
			}
			lits[i] = "'" + u.String() + "'" // a parsed UUID: safe to quote
		}
		w := "tenant = ? AND request_id IN (" + strings.Join(lits, ", ") + ")"
		if m.Command(mark) != "" { // started on some shards only
			if err := r.mutate(ctx, table, w, []any{e.Tenant}, mark); err != nil {
				return 0, err
			}
			continue
		}
		var n uint64
		if err := r.o.Conn.QueryRow(ctx, fmt.Sprintf("SELECT count() FROM %s.%s WHERE %s", r.o.DB, table, w), e.Tenant).Scan(&n); err != nil {
			return 0, fmt.Errorf("count %s: %w", table, err)
		}
		if n == 0 {
			continue
		}
		if err := r.mutate(ctx, table, w, []any{e.Tenant}, mark); err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

// mutationsDone tells whether each of e's mutations on table tagged
// prefix… (marker(e) itself, or marker(e)+"/" for the linked batches) is
// done on every node; none at all is done (nothing needed deleting). A
// mutation that some shard lacks altogether (an ON CLUSTER ALTER that
// timed out there) is started again from its own command.
func (r *Runner) mutationsDone(ctx context.Context, table string, e *Erasure, prefix string) (bool, error) {
	m, err := r.mutationsOf(ctx, table, e)
	if err != nil {
		return false, err
	}
	done := true
	for _, mark := range m.Marks(prefix) {
		if !m.StartedEverywhere(mark) {
			if err := r.restart(ctx, table, m.Command(mark)); err != nil {
				return false, err
			}
		}
		done = done && m.DoneEverywhere(mark)
	}
	return done, nil
}

// restart issues again (ON CLUSTER) the mutation whose system.mutations
// command is cmd: the server's own text of a DELETE Tollgate sent.
func (r *Runner) restart(ctx context.Context, table, cmd string) error {
	if !strings.HasPrefix(cmd, "DELETE WHERE ") {
		return fmt.Errorf("mutation on %s is not a DELETE: %q", table, cmd)
	}
	t := chschema.Target{Cluster: r.o.Cluster}
	if err := r.o.Conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s.%s%s %s", r.o.DB, t.Local(table), t.OnCluster(), cmd)); err != nil {
		return fmt.Errorf("delete from %s again: %w", table, err)
	}
	return nil
}
