package chquery

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"

	"github.com/tollgate-dev/tollgate/alerts"
	"github.com/tollgate-dev/tollgate/storage/chschema"
)

// Alerts keeps the API's alert rules and the events in ClickHouse
// (alerts.Store; tables of chschema's migration 4). Rows are written as
// batches naming their columns (on 18.16 an Exec of INSERT … VALUES hangs
// and an unnamed batch prepares no columns) and read with FINAL; deleted
// rules and lost claims are dropped after the merge, in Go, never by a
// WHERE on a column that is not part of the table's key in the FINAL
// query.
type Alerts struct {
	conn driver.Conn
	db   string
}

// NewAlerts keeps the rules and events in database db (chschema.Connect
// returns both).
func NewAlerts(conn driver.Conn, db string) (*Alerts, error) {
	if !chschema.ValidDatabase(db) {
		return nil, fmt.Errorf("alerts: bad database name %q", db)
	}
	return &Alerts{conn: conn, db: db}, nil
}

const ruleColumns = `id, name, metric, threshold, window_seconds, scope_model, scope_user, scope_property_name,
 scope_property_value, webhook_url, cooldown_seconds, enabled, created_at, version, deleted`

func (s *Alerts) table(name string) string { return s.db + "." + name }

// PutRule writes a version of a rule.
func (s *Alerts) PutRule(ctx context.Context, r alerts.StoredRule) error {
	batch, err := s.conn.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO %s (%s)", s.table(chschema.AlertRulesTable), ruleColumns))
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
		b2u(r.Enabled), r.CreatedAt.UTC(), r.Version, b2u(r.Deleted)); err != nil {
		return fmt.Errorf("alert rules: %w", err)
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("alert rules: %w", err)
	}
	return nil
}

// Rules returns the newest row of every rule id (deleted ones too), by id,
// or of one id when id is not empty.
func (s *Alerts) Rules(ctx context.Context, id string) ([]alerts.StoredRule, error) {
	where, args := "1", []any(nil)
	if id != "" {
		where, args = "id = ?", []any{id} // the sorting key: safe under FINAL
	}
	rows, err := s.conn.Query(ctx, fmt.Sprintf("SELECT %s FROM %s FINAL WHERE %s ORDER BY id",
		ruleColumns, s.table(chschema.AlertRulesTable), where), args...)
	if err != nil {
		return nil, fmt.Errorf("alert rules: %w", err)
	}
	defer rows.Close()
	var out []alerts.StoredRule
	for rows.Next() {
		var r alerts.StoredRule
		var metric, propName, propValue string
		var window, cooldown uint32
		var enabled, deleted uint8
		if err := rows.Scan(&r.ID, &r.Name, &metric, &r.Threshold, &window, &r.Scope.Model, &r.Scope.User,
			&propName, &propValue, &r.WebhookURL, &cooldown, &enabled, &r.CreatedAt, &r.Version, &deleted); err != nil {
			return nil, fmt.Errorf("alert rules: %w", err)
		}
		r.Metric, r.Window, r.Cooldown = alerts.Metric(metric), time.Duration(window)*time.Second, time.Duration(cooldown)*time.Second
		r.Enabled, r.Deleted = enabled == 1, deleted == 1
		if propName != "" {
			r.Scope.Property = &alerts.Property{Name: propName, Value: propValue}
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

const eventColumns = `event_id, rule_id, rule_generation, rule_name, metric, value, threshold, window_seconds, fired_at,
 prev_event_id, lost, delivered, delivery_attempts, delivery_error, next_attempt_at, resolved_at, version`

// selectEventColumns reads event_id as text (a UUID column).
var selectEventColumns = strings.Replace(eventColumns, "event_id", "toString(event_id)", 1)

// zeroTime stands for "none" in a DateTime column (which has no null):
// resolved_at of an open incident, next_attempt_at of an event that is not
// to be tried again.
var zeroTime = time.Unix(0, 0).UTC()

func dateTime(t time.Time) time.Time {
	if t.IsZero() {
		return zeroTime
	}
	return t.UTC()
}

func fromDateTime(t time.Time) time.Time {
	if t.Unix() <= 0 {
		return time.Time{}
	}
	return t.UTC()
}

// PutEvents writes events in one batch (new events, or new versions).
func (s *Alerts) PutEvents(ctx context.Context, events ...alerts.Event) error {
	if len(events) == 0 {
		return nil
	}
	batch, err := s.conn.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO %s (%s)", s.table(chschema.AlertEventsTable), eventColumns))
	if err != nil {
		return fmt.Errorf("alert events: %w", err)
	}
	defer batch.Close()
	for _, e := range events {
		id, err := uuid.Parse(e.ID)
		if err != nil {
			return fmt.Errorf("alert events: event id %q is not a UUID", e.ID)
		}
		if err := batch.Append(id, e.RuleID, e.Generation, e.RuleName, string(e.Metric), e.Value, e.Threshold,
			uint32(e.Window/time.Second), e.FiredAt.UTC(), e.PrevID, b2u(e.Lost), b2u(e.Delivered),
			uint16(min(max(e.Attempts, 0), 1<<16-1)), e.DeliveryError, dateTime(e.NextAttemptAt), dateTime(e.ResolvedAt),
			e.Version); err != nil {
			return fmt.Errorf("alert events: %w", err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("alert events: %w", err)
	}
	return nil
}

// Events returns the newest limit events, newest first, without the
// claims that lost. Lost rows are sorted last rather than filtered by a
// WHERE, which 18.16 may apply before FINAL picks an event's newest row.
func (s *Alerts) Events(ctx context.Context, limit int) ([]alerts.Event, error) {
	evs, err := s.queryEvents(ctx, fmt.Sprintf("SELECT %s FROM %s FINAL ORDER BY lost, fired_at DESC, toString(event_id) DESC LIMIT %d",
		selectEventColumns, s.table(chschema.AlertEventsTable), limit))
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(evs, func(e alerts.Event) bool { return e.Lost }), nil
}

// RecentEvents returns, by rule id, the newest perGeneration events of
// each generation of each rule (of the rules named, or of all when ruleIDs
// is nil), without lost claims.
func (s *Alerts) RecentEvents(ctx context.Context, ruleIDs []string, perGeneration int) (map[string][]alerts.Event, error) {
	where, args := "1", []any(nil)
	if ruleIDs != nil {
		// rule_id is the key's first column: the same in every version of
		// an event, so safe under FINAL.
		where, args = "has(?, rule_id)", []any{ruleIDs}
	}
	evs, err := s.queryEvents(ctx, fmt.Sprintf(`SELECT %s FROM %s FINAL WHERE %s
 ORDER BY rule_id, rule_generation, lost, fired_at DESC, toString(event_id) DESC LIMIT %d BY rule_id, rule_generation`,
		selectEventColumns, s.table(chschema.AlertEventsTable), where, perGeneration), args...)
	if err != nil {
		return nil, err
	}
	out := map[string][]alerts.Event{}
	for _, e := range evs {
		if !e.Lost {
			out[e.RuleID] = append(out[e.RuleID], e)
		}
	}
	return out, nil
}

// EventsByID reads the newest row of each event named (ids of events of
// the rules named), by event id. Lost claims are included.
func (s *Alerts) EventsByID(ctx context.Context, ruleIDs, ids []string) (map[string]alerts.Event, error) {
	// Both conditions are on key columns: safe under FINAL.
	evs, err := s.queryEvents(ctx, fmt.Sprintf("SELECT %s FROM %s FINAL WHERE has(?, rule_id) AND has(?, toString(event_id))",
		selectEventColumns, s.table(chschema.AlertEventsTable)), ruleIDs, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[string]alerts.Event, len(evs))
	for _, e := range evs {
		out[e.ID] = e
	}
	return out, nil
}

func (s *Alerts) queryEvents(ctx context.Context, sql string, args ...any) ([]alerts.Event, error) {
	rows, err := s.conn.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("alert events: %w", err)
	}
	defer rows.Close()
	out := []alerts.Event{}
	for rows.Next() {
		var e alerts.Event
		var metric string
		var window uint32
		var lost, delivered uint8
		var attempts uint16
		if err := rows.Scan(&e.ID, &e.RuleID, &e.Generation, &e.RuleName, &metric, &e.Value, &e.Threshold, &window,
			&e.FiredAt, &e.PrevID, &lost, &delivered, &attempts, &e.DeliveryError, &e.NextAttemptAt, &e.ResolvedAt,
			&e.Version); err != nil {
			return nil, fmt.Errorf("alert events: %w", err)
		}
		e.Metric, e.Window = alerts.Metric(metric), time.Duration(window)*time.Second
		e.Lost, e.Delivered, e.Attempts = lost == 1, delivered == 1, int(attempts)
		e.FiredAt, e.NextAttemptAt, e.ResolvedAt = e.FiredAt.UTC(), fromDateTime(e.NextAttemptAt), fromDateTime(e.ResolvedAt)
		out = append(out, e)
	}
	return out, rows.Err()
}
