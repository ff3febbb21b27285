package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/google/uuid"
)

// recordTimeout bounds writing the events of one evaluation, which goes
// on after a shutdown cancelled the evaluation: a notification sent must
// be remembered, or the restarted process would send it again.
const recordTimeout = 10 * time.Second

// EvaluateOnce evaluates every enabled rule once at the clock's now, over
// [now - window, now], notifies the rules that fire and records their
// events. It returns when the deliveries are done. A rule whose metric
// cannot be measured is skipped (and counted); the errors are returned
// joined.
func (m *Manager) EvaluateOnce(ctx context.Context) error {
	m.evalMu.Lock()
	defer m.evalMu.Unlock()
	now := m.o.Now().UTC().Truncate(time.Second)

	rules, err := m.enabledRules(ctx)
	if err != nil {
		return err
	}
	if err := m.refreshEvents(ctx); err != nil {
		return err
	}
	var errs []error
	var firing []Event
	var resolved []Event
	byID := map[string]Rule{}
	for _, r := range rules {
		v, err := m.measure(ctx, r, now)
		if err != nil {
			m.metrics.evaluations.WithLabelValues("error").Inc()
			errs = append(errs, fmt.Errorf("alert rule %q: %w", r.ID, err))
			continue
		}
		m.metrics.evaluations.WithLabelValues("ok").Inc()
		last := m.last[r.ID]
		switch decide(last, v, r, now) {
		case fire:
			byID[r.ID] = r
			firing = append(firing, Event{ID: uuid.Must(uuid.NewV7()).String(), RuleID: r.ID, RuleName: r.Name,
				Metric: r.Metric, Value: v, Threshold: r.Threshold, Window: r.Window, FiredAt: now, version: 1})
		case resolve:
			last.ResolvedAt, last.version = now, last.version+1
			m.last[r.ID] = last
			resolved = append(resolved, last)
			m.log.Info("alerts: incident over", "rule_id", r.ID, "metric", r.Metric, "value", v, "threshold", r.Threshold)
		}
	}

	m.deliver(ctx, firing, byID)
	for _, e := range firing {
		m.last[e.RuleID] = e
	}
	if err := m.record(ctx, append(firing, resolved...)); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// refreshEvents takes in the latest event of each rule from ClickHouse:
// after a restart that is the whole state (cooldowns, open incidents);
// with several replicas, what the others fired.
func (m *Manager) refreshEvents(ctx context.Context) error {
	stored, err := m.store.lastEvents(ctx)
	if err != nil {
		return err
	}
	for id, e := range stored {
		if newer(e, m.last[id]) {
			m.last[id] = e
		}
	}
	return nil
}

func (m *Manager) measure(ctx context.Context, r Rule, now time.Time) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	// [now - window, now]: the source's upper bound is exclusive, and
	// created_at has whole seconds.
	v, err := m.o.Metrics.AlertMetric(ctx, r.Metric, r.Scope, now.Add(-r.Window), now.Add(time.Second))
	if err != nil {
		return 0, err
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, nil
	}
	return v, nil
}

// deliver sends the notifications at once and fills in their outcome.
func (m *Manager) deliver(ctx context.Context, events []Event, rules map[string]Rule) {
	var wg sync.WaitGroup
	for i := range events {
		e := &events[i]
		r := rules[e.RuleID]
		wg.Go(func() {
			attempts, err := m.notify(ctx, r, *e)
			e.Delivered = err == nil
			m.metrics.fired.WithLabelValues(string(r.Metric)).Inc()
			log := m.log.With("rule_id", r.ID, "rule_name", r.Name, "metric", r.Metric, "value", e.Value,
				"threshold", r.Threshold, "window", formatDuration(r.Window), "attempts", attempts)
			if err != nil {
				e.DeliveryError = err.Error()
				m.metrics.deliveryFailures.Inc()
				log.Warn("alerts: fired; webhook delivery failed", "delivery_error", e.DeliveryError)
				return
			}
			log.Info("alerts: fired; webhook delivered")
		})
	}
	wg.Wait()
}

func (m *Manager) notify(ctx context.Context, r Rule, e Event) (int, error) {
	shown := r
	shown.WebhookURL = ""
	body, err := json.Marshal(payload{Rule: shown, Value: e.Value, Threshold: e.Threshold,
		Window: formatDuration(e.Window), FiredAt: e.FiredAt, DashboardURL: m.o.DashboardURL})
	if err != nil {
		return 0, fmt.Errorf("encoding the payload: %w", err)
	}
	return m.notifier.send(ctx, r.WebhookURL, e.ID, body)
}

// record writes events, even when ctx was cancelled meanwhile.
func (m *Manager) record(ctx context.Context, events []Event) error {
	if len(events) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	if err := m.store.putEvents(ctx, events...); err != nil {
		m.log.Error("alerts: recording events failed; the cooldown is kept in memory only", "err", err)
		return err
	}
	return nil
}
