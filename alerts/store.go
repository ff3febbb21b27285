package alerts

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"

	"github.com/tollgate-dev/tollgate/storage/chstore"
)

// store keeps the API's rules and the events in ClickHouse (tables of
// chstore's migration 4). Rows are written as batches naming their
// columns (on 18.16 an Exec of INSERT … VALUES hangs and an unnamed batch
// prepares no columns) and read with FINAL; deleted rules are dropped
// after the merge, in Go, never by a WHERE on the FINAL query.
type store struct {
	conn driver.Conn
	db   string
}

// storedRule is a row of alert_rules.
type storedRule struct {
	Rule
	createdAt time.Time
	version   uint64
	deleted   bool
}

const ruleColumns = `id, name, metric, threshold, window_seconds, scope_model, scope_user, scope_property_name,
 scope_property_value, webhook_url, cooldown_seconds, enabled, created_at, version, deleted`

func (s *store) table(name string) string { return s.db + "." + name }

func (s *store) putRule(ctx context.Context, r storedRule) error {
	batch, err := s.conn.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO %s (%s)", s.table(chstore.AlertRulesTable), ruleColumns))
	if err != nil {
		return fmt.Errorf("alert rules: %w", err)
	}
	defer batch.Close()
	var propName, propValue string
	if p := r.Scope.Property; p != nil {
		propName, propValue = p.Name, p.Value
	}
	if err := batch.Append(r.ID, r.Name, string(r.Metric), r.Threshold, uint32(r.Window/time.Second),
		r.Scope.Model, r.Scope.User, propName, propValue, r.WebhookURL, uint32(r.Cooldown/time.Second),
		b2u(r.Enabled), r.createdAt.UTC(), r.version, b2u(r.deleted)); err != nil {
		return fmt.Errorf("alert rules: %w", err)
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("alert rules: %w", err)
	}
	return nil
}

// rules returns the newest row of every rule id (deleted ones too), or of
// one id when id is not empty.
func (s *store) rules(ctx context.Context, id string) ([]storedRule, error) {
	where, args := "1", []any(nil)
	if id != "" {
		where, args = "id = ?", []any{id} // the sorting key: safe under FINAL
	}
	rows, err := s.conn.Query(ctx, fmt.Sprintf("SELECT %s FROM %s FINAL WHERE %s ORDER BY id",
		ruleColumns, s.table(chstore.AlertRulesTable), where), args...)
	if err != nil {
		return nil, fmt.Errorf("alert rules: %w", err)
	}
	defer rows.Close()
	var out []storedRule
	for rows.Next() {
		var r storedRule
		var metric, propName, propValue string
		var window, cooldown uint32
		var enabled, deleted uint8
		if err := rows.Scan(&r.ID, &r.Name, &metric, &r.Threshold, &window, &r.Scope.Model, &r.Scope.User,
			&propName, &propValue, &r.WebhookURL, &cooldown, &enabled, &r.createdAt, &r.version, &deleted); err != nil {
			return nil, fmt.Errorf("alert rules: %w", err)
		}
		r.Metric, r.Window, r.Cooldown = Metric(metric), time.Duration(window)*time.Second, time.Duration(cooldown)*time.Second
		r.Enabled, r.deleted = enabled == 1, deleted == 1
		if propName != "" {
			r.Scope.Property = &Property{Name: propName, Value: propValue}
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

const eventColumns = `event_id, rule_id, rule_name, metric, value, threshold, window_seconds, fired_at,
 delivered, delivery_error, resolved_at, version`

// selectEventColumns reads event_id as text (a UUID column).
var selectEventColumns = strings.Replace(eventColumns, "event_id", "toString(event_id)", 1)

// unresolved is resolved_at of an open incident (DateTime has no null).
var unresolved = time.Unix(0, 0).UTC()

// putEvents writes events in one batch (a new event, or a new version of
// one).
func (s *store) putEvents(ctx context.Context, events ...Event) error {
	batch, err := s.conn.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO %s (%s)", s.table(chstore.AlertEventsTable), eventColumns))
	if err != nil {
		return fmt.Errorf("alert events: %w", err)
	}
	defer batch.Close()
	for _, e := range events {
		id, err := uuid.Parse(e.ID)
		if err != nil {
			return fmt.Errorf("alert events: event id %q is not a UUID", e.ID)
		}
		resolved := unresolved
		if !e.ResolvedAt.IsZero() {
			resolved = e.ResolvedAt.UTC()
		}
		if err := batch.Append(id, e.RuleID, e.RuleName, string(e.Metric), e.Value, e.Threshold, uint32(e.Window/time.Second),
			e.FiredAt.UTC(), b2u(e.Delivered), e.DeliveryError, resolved, e.version); err != nil {
			return fmt.Errorf("alert events: %w", err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("alert events: %w", err)
	}
	return nil
}

// events returns the newest limit events, newest first.
func (s *store) events(ctx context.Context, limit int) ([]Event, error) {
	return s.queryEvents(ctx, fmt.Sprintf("SELECT %s FROM %s FINAL ORDER BY fired_at DESC, toString(event_id) DESC LIMIT %d",
		selectEventColumns, s.table(chstore.AlertEventsTable), limit))
}

// lastEvents returns the newest event of every rule, by rule id: what the
// evaluator needs to know of cooldowns and open incidents after a restart
// (or from another replica).
func (s *store) lastEvents(ctx context.Context) (map[string]Event, error) {
	evs, err := s.queryEvents(ctx, fmt.Sprintf("SELECT %s FROM %s FINAL ORDER BY rule_id, fired_at DESC, toString(event_id) DESC LIMIT 1 BY rule_id",
		selectEventColumns, s.table(chstore.AlertEventsTable)))
	if err != nil {
		return nil, err
	}
	out := make(map[string]Event, len(evs))
	for _, e := range evs {
		out[e.RuleID] = e
	}
	return out, nil
}

func (s *store) queryEvents(ctx context.Context, sql string) ([]Event, error) {
	rows, err := s.conn.Query(ctx, sql)
	if err != nil {
		return nil, fmt.Errorf("alert events: %w", err)
	}
	defer rows.Close()
	out := []Event{}
	for rows.Next() {
		var e Event
		var metric string
		var window uint32
		var delivered uint8
		if err := rows.Scan(&e.ID, &e.RuleID, &e.RuleName, &metric, &e.Value, &e.Threshold, &window, &e.FiredAt,
			&delivered, &e.DeliveryError, &e.ResolvedAt, &e.version); err != nil {
			return nil, fmt.Errorf("alert events: %w", err)
		}
		e.Metric, e.Window, e.Delivered = Metric(metric), time.Duration(window)*time.Second, delivered == 1
		e.FiredAt = e.FiredAt.UTC()
		if e.ResolvedAt.Unix() <= 0 {
			e.ResolvedAt = time.Time{}
		} else {
			e.ResolvedAt = e.ResolvedAt.UTC()
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}
