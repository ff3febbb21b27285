package erasure

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"

	"github.com/tollgate-dev/tollgate/policies/gate"
	"github.com/tollgate-dev/tollgate/storage/chschema"
	"github.com/tollgate-dev/tollgate/storage/chstore"
)

// The steps of an erasure, in order. Each is recorded (a new row) before
// the next begins, so a Runner that stops half way, or another that takes
// over, resumes where it was; each step is idempotent.
//
//   - wait: until ErasureGrace after the cutoff, so that every log writer
//     has read the erasure (chstore.ErasureMaxStale) and every insert
//     made with an older list has landed; from then on the writers drop
//     the subject's records and the mutations below find all the rest.
//   - linked: ALTER TABLE … DELETE on feedback and scores, for the
//     subject's request ids (read from requests, so this runs first), and
//     wait for both mutations to finish (system.mutations).
//   - requests: ALTER TABLE requests DELETE, and wait for it.
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
}

// Runner carries out pending erasures.
type Runner struct {
	o     Options
	store *Store
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
	return &Runner{o: o, store: NewStore(o.Conn, o.DB, o.Now)}
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
	var errs []error
	for _, e := range list {
		if err := r.advance(ctx, e); err != nil {
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
		nf, err := r.ensureMutation(ctx, chschema.FeedbackTable, e)
		if err != nil {
			return "", "", err
		}
		ns, err := r.ensureMutation(ctx, chschema.ScoresTable, e)
		if err != nil {
			return "", "", err
		}
		return stepLinked, fmt.Sprintf("feedback rows: %d, score rows: %d", nf, ns), nil
	case stepLinked:
		for _, t := range []string{chschema.FeedbackTable, chschema.ScoresTable} {
			if done, err := r.mutationDone(ctx, t, e); err != nil || !done {
				return "", "", err
			}
		}
		n, err := r.ensureMutation(ctx, chschema.RequestsTable, e)
		if err != nil {
			return "", "", err
		}
		return stepRequests, fmt.Sprintf("request rows: %d", n), nil
	case stepRequests:
		if done, err := r.mutationDone(ctx, chschema.RequestsTable, e); err != nil || !done {
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

// where selects the subject's rows of table: requests directly; feedback
// and scores through the request ids (the requests mutation waits for
// theirs to finish). in is "IN", or "GLOBAL IN" for a query of the public
// (in cluster mode Distributed) tables, where one filters another.
func (r *Runner) where(table string, e *Erasure, in string) (string, []any) {
	if table == chschema.RequestsTable {
		return requestsWhere(e)
	}
	if e.Subject.Kind == Request {
		return "tenant = ? AND request_id = toUUID(?)", []any{e.Tenant, e.Subject.Value}
	}
	rw, rargs := requestsWhere(e)
	return fmt.Sprintf("tenant = ? AND request_id %s (SELECT request_id FROM %s.%s WHERE %s)", in, r.o.DB, chschema.RequestsTable, rw),
		append([]any{e.Tenant}, rargs...)
}

// ensureMutation starts the DELETE mutation of e on table unless it was
// started already or there is nothing to delete (a mutation rewrites
// parts: not worth it for no rows). It returns the rows it covers.
func (r *Runner) ensureMutation(ctx context.Context, table string, e *Erasure) (uint64, error) {
	total, _, err := r.mutations(ctx, table, e)
	if err != nil || total > 0 {
		return 0, err
	}
	w, args := r.where(table, e, "GLOBAL IN")
	var n uint64
	if err := r.o.Conn.QueryRow(ctx, fmt.Sprintf("SELECT count() FROM %s.%s WHERE %s", r.o.DB, table, w), args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count %s: %w", table, err)
	}
	if n == 0 {
		return 0, nil
	}
	w, args = r.where(table, e, "IN") // the mutation runs on the local table of each node
	t := chschema.Target{Cluster: r.o.Cluster}
	ddl := fmt.Sprintf("ALTER TABLE %s.%s%s DELETE WHERE %s AND notEmpty('%s')", r.o.DB, t.Local(table), t.OnCluster(), w, marker(e))
	if err := r.o.Conn.Exec(ctx, ddl, args...); err != nil {
		return 0, fmt.Errorf("delete from %s: %w", table, err)
	}
	return n, nil
}

// mutationDone tells whether e's mutation on table (if it needed one)
// has finished.
func (r *Runner) mutationDone(ctx context.Context, table string, e *Erasure) (bool, error) {
	_, running, err := r.mutations(ctx, table, e)
	return running == 0, err
}

// In cluster mode it sees the mutations of the node it is connected to
// (ClickHouse 18.16 has no clusterAllReplicas): that node's shard.
func (r *Runner) mutations(ctx context.Context, table string, e *Erasure) (total, running uint64, err error) {
	err = r.o.Conn.QueryRow(ctx,
		"SELECT count(), countIf(is_done = 0) FROM system.mutations WHERE database = ? AND table = ? AND position(command, ?) > 0",
		r.o.DB, (&chschema.Target{Cluster: r.o.Cluster}).Local(table), marker(e)).Scan(&total, &running)
	if err != nil {
		err = fmt.Errorf("system.mutations: %w", err)
	}
	return total, running, err
}
