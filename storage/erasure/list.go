package erasure

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/tollgate-dev/tollgate/record"
	"github.com/tollgate-dev/tollgate/storage/chschema"
	"github.com/tollgate-dev/tollgate/storage/chstore"
)

// List is the log writer's view of the erasures (chstore.Erasures): a
// record of an erased subject created before the erasure's cutoff plus
// ClockMargin is dropped before it is inserted. An erasure stays in the
// list after it is done: a spool may replay a record of a subject months
// after the subject's erasure was done.
//
// The list is read incrementally: the first Sync reads the newest
// MaxListEntries erasures, each later one only the rows requested since
// the newest it has seen (less listOverlap, for the clocks of the
// gateways that record them). Nothing bounds how old a spooled record can
// be (the spool is bounded by size), so the list is bounded by count: it
// keeps the MaxListEntries most recent erasures and forgets older ones.
type List struct {
	conn driver.Conn
	db   string
	max  int

	mu       sync.RWMutex
	byTenant map[string]*tenantErasures
	n        int       // entries held
	newest   time.Time // the latest requested_at read; zero before the first Sync
}

var _ chstore.Erasures = (*List)(nil)

// MaxListEntries bounds the erasures a List holds (about 400 bytes each
// at most, subjects being at most 256 bytes): beyond it the oldest are
// forgotten. With the API's daily limit per tenant this is months of
// erasures for most deployments; docs/privacy.md.
const MaxListEntries = 100_000

// listOverlap: each incremental read goes back this far before the
// newest cutoff seen, so an erasure recorded by a gateway whose clock is
// behind (up to this much) is still read.
const listOverlap = 10 * time.Minute

// ClockMargin widens every cutoff: the cutoff is the gateway's clock
// when the erasure was asked for, a record's created_at the clock of the
// process that logged it. A record created up to ClockMargin after the
// cutoff (by its own clock) is erased too, so one from a process whose
// clock runs ahead by less than that is not missed.
const ClockMargin = 5 * time.Minute

// tenantErasures are one tenant's cutoffs by subject (the latest wins).
type tenantErasures struct {
	users, sessions, requests, props map[string]time.Time
}

// NewList reads the erasures table of database db through conn.
func NewList(conn driver.Conn, db string) *List {
	return &List{conn: conn, db: db, max: MaxListEntries, byTenant: map[string]*tenantErasures{}}
}

// Sync reads the erasures recorded since the last Sync (the newest
// MaxListEntries at the first).
func (l *List) Sync(ctx context.Context) error {
	l.mu.RLock()
	newest := l.newest
	l.mu.RUnlock()
	q := fmt.Sprintf("SELECT tenant, kind, subject, subject_key, max(requested_at) AS cutoff FROM %s.%s", l.db, chschema.ErasuresTable)
	if !newest.IsZero() {
		q += fmt.Sprintf(" WHERE requested_at >= toDateTime(%d)", newest.Add(-listOverlap).Unix())
	}
	q += fmt.Sprintf(" GROUP BY tenant, kind, subject, subject_key ORDER BY cutoff DESC LIMIT %d", l.max)
	rows, err := l.conn.Query(ctx, q)
	if err != nil {
		if isUnknownTable(err) {
			return nil // a schema before migration 9: nothing was ever erased
		}
		return err
	}
	defer rows.Close()
	type row struct {
		tenant, kind, subject, key string
		cutoff                     time.Time
	}
	var read []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.tenant, &r.kind, &r.subject, &r.key, &r.cutoff); err != nil {
			return err
		}
		read = append(read, r)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range read {
		t := l.byTenant[r.tenant]
		if t == nil {
			t = &tenantErasures{users: map[string]time.Time{}, sessions: map[string]time.Time{},
				requests: map[string]time.Time{}, props: map[string]time.Time{}}
			l.byTenant[r.tenant] = t
		}
		var m map[string]time.Time
		k := r.subject
		switch Kind(r.kind) {
		case User:
			m = t.users
		case Session:
			m = t.sessions
		case Request:
			m, k = t.requests, strings.ToLower(r.subject)
		case Property:
			m, k = t.props, propKey(r.key, r.subject)
		default:
			continue
		}
		old, ok := m[k]
		if !ok {
			l.n++
		}
		if r.cutoff.After(old) {
			m[k] = r.cutoff
		}
		if r.cutoff.After(l.newest) {
			l.newest = r.cutoff
		}
	}
	if l.n > l.max {
		l.evict()
	}
	return nil
}

// evict forgets the oldest erasures beyond l.max. Called with l.mu held.
func (l *List) evict() {
	var cutoffs []time.Time
	for _, t := range l.byTenant {
		for _, m := range []map[string]time.Time{t.users, t.sessions, t.requests, t.props} {
			for _, c := range m {
				cutoffs = append(cutoffs, c)
			}
		}
	}
	slices.SortFunc(cutoffs, func(a, b time.Time) int { return b.Compare(a) })
	keep := cutoffs[l.max-1] // the oldest cutoff kept (ties may keep a few more)
	l.n = 0
	for tenant, t := range l.byTenant {
		held := 0
		for _, m := range []map[string]time.Time{t.users, t.sessions, t.requests, t.props} {
			for k, c := range m {
				if c.Before(keep) {
					delete(m, k)
				}
			}
			held += len(m)
		}
		if held == 0 {
			delete(l.byTenant, tenant)
		}
		l.n += held
	}
}

func propKey(name, value string) string { return name + "\x00" + value }

// Erased reports whether r belongs to an erased subject and was created
// before that erasure's cutoff plus ClockMargin.
func (l *List) Erased(r *record.Record) bool {
	l.mu.RLock()
	t := l.byTenant[r.Tenant]
	l.mu.RUnlock()
	if t == nil {
		return false
	}
	before := func(m map[string]time.Time, k string) bool {
		cutoff, ok := m[k]
		return ok && r.CreatedAt.Before(cutoff.Add(ClockMargin))
	}
	if r.UserID != "" && before(t.users, r.UserID) ||
		r.SessionID != "" && before(t.sessions, r.SessionID) ||
		before(t.requests, strings.ToLower(r.RequestID)) {
		return true
	}
	for _, p := range r.Properties {
		if before(t.props, propKey(strings.ToLower(p.Key), p.Value)) {
			return true
		}
	}
	return false
}
