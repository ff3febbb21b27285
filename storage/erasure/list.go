package erasure

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/tollgate-dev/tollgate/record"
	"github.com/tollgate-dev/tollgate/storage/chschema"
	"github.com/tollgate-dev/tollgate/storage/chstore"
)

// List is the log writer's view of every erasure ever asked for
// (chstore.Erasures): a record of an erased subject created before the
// erasure's cutoff is dropped before it is inserted. Every erasure stays
// in the list, done or not: a spool may replay a record of a subject
// months after the subject's erasure was done.
type List struct {
	conn driver.Conn
	db   string

	mu       sync.RWMutex
	byTenant map[string]*tenantErasures
}

var _ chstore.Erasures = (*List)(nil)

// tenantErasures are one tenant's cutoffs by subject (the latest wins).
type tenantErasures struct {
	users, sessions, requests, props map[string]time.Time
}

// NewList reads the erasures table of database db through conn.
func NewList(conn driver.Conn, db string) *List {
	return &List{conn: conn, db: db}
}

// Sync reads the table. An erasure is a few bytes and a rare event: the
// whole table is read each time.
func (l *List) Sync(ctx context.Context) error {
	rows, err := l.conn.Query(ctx, fmt.Sprintf(
		"SELECT tenant, kind, subject, subject_key, max(requested_at) FROM %s.%s GROUP BY tenant, kind, subject, subject_key",
		l.db, chschema.ErasuresTable))
	if err != nil {
		if isUnknownTable(err) {
			return nil // a schema before migration 9: nothing was ever erased
		}
		return err
	}
	defer rows.Close()
	next := map[string]*tenantErasures{}
	for rows.Next() {
		var tenant, kind, subject, key string
		var cutoff time.Time
		if err := rows.Scan(&tenant, &kind, &subject, &key, &cutoff); err != nil {
			return err
		}
		t := next[tenant]
		if t == nil {
			t = &tenantErasures{users: map[string]time.Time{}, sessions: map[string]time.Time{},
				requests: map[string]time.Time{}, props: map[string]time.Time{}}
			next[tenant] = t
		}
		switch Kind(kind) {
		case User:
			t.users[subject] = cutoff
		case Session:
			t.sessions[subject] = cutoff
		case Request:
			t.requests[strings.ToLower(subject)] = cutoff
		case Property:
			t.props[propKey(key, subject)] = cutoff
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	l.mu.Lock()
	l.byTenant = next
	l.mu.Unlock()
	return nil
}

func propKey(name, value string) string { return name + "\x00" + value }

// Erased reports whether r belongs to an erased subject and was created
// before that erasure's cutoff.
func (l *List) Erased(r *record.Record) bool {
	l.mu.RLock()
	t := l.byTenant[r.Tenant]
	l.mu.RUnlock()
	if t == nil {
		return false
	}
	before := func(m map[string]time.Time, k string) bool {
		cutoff, ok := m[k]
		return ok && r.CreatedAt.Before(cutoff)
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
