package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
)

// recordTimeout bounds writing the outcome of the deliveries of one
// evaluation, which goes on after a shutdown cancelled the evaluation: a
// notification sent must be remembered, or it would be sent again.
const recordTimeout = 10 * time.Second

// EvaluateOnce evaluates every enabled rule once at the clock's now, over
// [now - window, now], and returns when the deliveries it started are
// done and recorded. A rule whose metric cannot be measured is skipped
// (and counted); the errors are returned joined.
//
// For a rule that fires it first records the event, undelivered: the
// claim. It then reads the rule's events again: when other replicas
// claimed the same incident at the same time (their claims followed the
// same latest event of the same rule generation), the earliest claim (by
// fired_at, then event id, a UUIDv7) wins and the others are marked lost
// and send nothing. The winner delivers the webhook and writes the event
// again with the outcome. An event not delivered is tried again by later
// evaluations (of any replica) while its incident is open: at most
// maxTries tries, spread over the cooldown (retryDelay); a retry is
// claimed the same way (a new version of the event, read back: the newest
// version's writer tries).
//
// What is left of the race: the claims are decided on what ClickHouse
// shows right after they are inserted. A replica whose claim sorts first
// but becomes visible only after another replica read back its own (the
// two inserts and reads overlapping, a few milliseconds) sends too: then
// the webhook gets the incident twice, under two event ids. fired_at comes
// from each replica's clock, so skewed clocks can decide which claim sorts
// first, not whether the replicas agree (both read the same rows). The
// same holds for retries (the same event id twice: receivers can drop the
// repeat by X-Tollgate-Alert-Event). Before, the window was a whole
// delivery (seconds, with retries).
func (m *Manager) EvaluateOnce(ctx context.Context) error {
	m.evalMu.Lock()
	defer m.evalMu.Unlock()
	now := m.o.Now().UTC().Truncate(time.Second)

	var errs []error
	if err := m.saveUnsaved(ctx); err != nil {
		errs = append(errs, err)
	}
	rules, err := m.Rules(ctx)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	hist, err := m.o.Store.RecentEvents(ctx, nil, recentPerGeneration)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	m.overlayUnsaved(hist)

	var claims, retries, ending []Event
	byID := make(map[string]Rule, len(rules))
	for _, r := range rules {
		byID[r.ID] = r
		gen := r.generation()
		evs := hist[r.ID]
		// The incidents of a rule's other generations (it was changed, or
		// deleted and created again) and of a disabled rule are over.
		for _, e := range evs {
			if e.open() && (!r.Enabled || e.Generation != gen) && winner(e, evs) {
				ending = append(ending, e)
				m.log.Info("alerts: incident closed: the rule was changed or disabled", "rule_id", r.ID, "event_id", e.ID)
			}
		}
		if !r.Enabled {
			continue
		}
		v, err := m.measure(ctx, r, now)
		if err != nil {
			m.metrics.evaluations.WithLabelValues("error").Inc()
			errs = append(errs, fmt.Errorf("alert rule %q: %w", r.ID, err))
			continue
		}
		m.metrics.evaluations.WithLabelValues("ok").Inc()
		last, _ := latest(evs, gen)
		switch decide(last, v, r, now) {
		case fire:
			claims = append(claims, Event{RuleID: r.ID, RuleName: r.Name, Metric: r.Metric, Value: v,
				Threshold: r.Threshold, Window: r.Window, Generation: gen, PrevID: last.ID})
		case resolve:
			ending = append(ending, last)
			m.log.Info("alerts: incident over", "rule_id", r.ID, "metric", r.Metric, "value", v, "threshold", r.Threshold)
		default:
			if due(last, now) {
				retries = append(retries, last)
			}
		}
	}
	for id, evs := range hist {
		if _, ok := byID[id]; ok {
			continue
		}
		for _, e := range evs {
			if e.open() && winner(e, evs) {
				ending = append(ending, e)
				m.log.Info("alerts: incident closed: the rule was deleted", "rule_id", id, "event_id", e.ID)
			}
		}
	}

	if err := m.rewrite(ctx, ending, func(stored *Event, _ Event) {
		if stored.ResolvedAt.IsZero() {
			stored.ResolvedAt = now
		}
	}); err != nil {
		errs = append(errs, fmt.Errorf("recording the end of incidents: %w", err))
	}
	won, err := m.claim(ctx, claims, retries)
	if err != nil {
		errs = append(errs, err)
	}
	if err := m.deliver(ctx, won, byID); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
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

// claim records the new events (claims) and new versions of the events to
// retry in one batch, reads the rules' events back and returns those this
// replica is to deliver: the claims that won their incident and the
// retries whose version is still the newest. Claims that lost are marked
// so. Nothing is delivered when the claims cannot be read back: a claim
// that won is then tried again by a later evaluation, once its lease (the
// time one delivery try may take) has run out.
func (m *Manager) claim(ctx context.Context, claims, retries []Event) ([]Event, error) {
	if len(claims)+len(retries) == 0 {
		return nil, nil
	}
	at := m.o.Now().UTC()
	// Until then, the claimer is (or may be) delivering: nobody else tries.
	lease := at.Add(m.notifier.budget()).Truncate(time.Second).Add(time.Second)
	for i := range claims {
		c := &claims[i]
		c.ID, c.FiredAt = uuid.Must(uuid.NewV7()).String(), at.Truncate(time.Second)
		c.NextAttemptAt, c.Version = lease, m.nextVersion()
	}
	for i := range retries {
		r := &retries[i]
		r.NextAttemptAt, r.Version = lease, max(m.nextVersion(), r.Version+1)
	}
	if m.beforeClaim != nil {
		m.beforeClaim()
	}
	all := slices.Concat(claims, retries)
	if err := m.o.Store.PutEvents(ctx, all...); err != nil {
		return nil, fmt.Errorf("claiming alert events (nothing sent): %w", err)
	}
	if m.afterClaim != nil {
		m.afterClaim()
	}
	var ruleIDs []string
	for _, e := range all {
		ruleIDs = append(ruleIDs, e.RuleID)
	}
	fresh, err := m.o.Store.RecentEvents(ctx, ruleIDs, recentPerGeneration)
	if err != nil {
		return nil, fmt.Errorf("reading alert claims back (nothing sent): %w", err)
	}
	var won, lost []Event
	for _, c := range claims {
		evs := fresh[c.RuleID]
		if !containsEvent(evs, c.ID) {
			evs = append(evs, c)
		}
		if !winner(c, evs) {
			lost = append(lost, c)
			m.log.Info("alerts: another replica claimed the incident first; not sending", "rule_id", c.RuleID, "event_id", c.ID)
			continue
		}
		won = append(won, c)
		m.metrics.fired.WithLabelValues(string(c.Metric)).Inc()
	}
	for _, r := range retries {
		for _, e := range fresh[r.RuleID] {
			if e.ID == r.ID {
				if e.Version == r.Version {
					won = append(won, r)
				}
				break
			}
		}
	}
	if err := m.rewrite(ctx, lost, func(stored *Event, _ Event) { stored.Lost = true }); err != nil {
		// Harmless: a claim that lost stays lost whether or not it is marked.
		m.log.Warn("alerts: marking lost claims failed", "err", err)
	}
	return won, nil
}

func containsEvent(evs []Event, id string) bool {
	for _, e := range evs {
		if e.ID == id {
			return true
		}
	}
	return false
}

// deliver sends the notifications at once and records their outcome.
func (m *Manager) deliver(ctx context.Context, events []Event, rules map[string]Rule) error {
	if len(events) == 0 {
		return nil
	}
	var wg sync.WaitGroup
	for i := range events {
		e := &events[i]
		r := rules[e.RuleID]
		wg.Go(func() {
			retry := e.Attempts > 0 || e.DeliveryError != ""
			res := m.notify(ctx, r, *e)
			log := m.log.With("rule_id", r.ID, "rule_name", r.Name, "metric", r.Metric, "value", e.Value,
				"threshold", r.Threshold, "window", formatDuration(r.Window), "event_id", e.ID, "requests", res.requests)
			verb := "fired"
			if retry {
				verb = "retried"
			}
			switch {
			case res.err == nil:
				e.Delivered, e.Attempts, e.DeliveryError, e.NextAttemptAt = true, e.Attempts+1, "", time.Time{}
				log.Info("alerts: " + verb + "; webhook delivered")
			case ctx.Err() != nil:
				// Cancelled (Close): not a failed try. Due again at once.
				e.DeliveryError = "interrupted by a shutdown before the webhook answered; to be tried again"
				e.NextAttemptAt = m.o.Now().UTC().Truncate(time.Second)
				log.Warn("alerts: "+verb+"; webhook delivery interrupted", "attempts", e.Attempts)
			default:
				e.Attempts++
				e.DeliveryError = res.err.Error()
				m.metrics.deliveryFailures.Inc()
				if res.final || e.Attempts >= maxTries {
					e.NextAttemptAt = time.Time{}
					log.Warn("alerts: "+verb+"; webhook delivery failed; giving up", "attempts", e.Attempts,
						"delivery_error", e.DeliveryError)
					return
				}
				e.NextAttemptAt = m.o.Now().UTC().Truncate(time.Second).Add(retryDelay(e.Attempts, r.Cooldown))
				log.Warn("alerts: "+verb+"; webhook delivery failed; to be tried again", "attempts", e.Attempts,
					"next_attempt_at", e.NextAttemptAt, "delivery_error", e.DeliveryError)
			}
		})
	}
	wg.Wait()
	return m.record(ctx, events)
}

func (m *Manager) notify(ctx context.Context, r Rule, e Event) tryResult {
	shown := r
	shown.WebhookURL = ""
	body, err := json.Marshal(payload{Rule: shown, Value: e.Value, Threshold: e.Threshold,
		Window: formatDuration(e.Window), FiredAt: e.FiredAt, DashboardURL: m.o.DashboardURL})
	if err != nil {
		return tryResult{err: fmt.Errorf("encoding the payload: %w", err), final: true}
	}
	return m.notifier.send(ctx, r.WebhookURL, e.ID, body)
}

// applyOutcome puts a delivery outcome (of given) onto the event's newest
// row, keeping what others wrote meanwhile (its end, or a delivery by
// another replica).
func applyOutcome(stored *Event, given Event) {
	if stored.Delivered && !given.Delivered {
		return
	}
	stored.Delivered, stored.DeliveryError, stored.NextAttemptAt = given.Delivered, given.DeliveryError, given.NextAttemptAt
	stored.Attempts = max(stored.Attempts, given.Attempts)
}

// record writes delivery outcomes, even when ctx was cancelled meanwhile.
// Those it cannot write are kept and written by the next evaluation.
func (m *Manager) record(ctx context.Context, events []Event) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	if err := m.rewrite(ctx, events, applyOutcome); err != nil {
		for _, e := range events {
			m.unsaved[e.ID] = e
		}
		m.log.Error("alerts: recording delivery outcomes failed; kept in memory until the next evaluation", "err", err)
		return fmt.Errorf("recording delivery outcomes: %w", err)
	}
	return nil
}

// saveUnsaved writes the outcomes the last evaluations could not record.
func (m *Manager) saveUnsaved(ctx context.Context) error {
	if len(m.unsaved) == 0 {
		return nil
	}
	evs := make([]Event, 0, len(m.unsaved))
	for _, e := range m.unsaved {
		evs = append(evs, e)
	}
	if err := m.rewrite(ctx, evs, applyOutcome); err != nil {
		return fmt.Errorf("recording delivery outcomes: %w", err)
	}
	clear(m.unsaved)
	return nil
}

// overlayUnsaved puts the outcomes not yet recorded onto the events read.
func (m *Manager) overlayUnsaved(hist map[string][]Event) {
	for _, u := range m.unsaved {
		for i, e := range hist[u.RuleID] {
			if e.ID == u.ID {
				applyOutcome(&hist[u.RuleID][i], u)
			}
		}
	}
}

// rewrite writes a new version of each event: change applied to its
// newest row, read again from ClickHouse just before (so that what other
// replicas wrote meanwhile is kept), or to the copy given when the row
// cannot be found.
func (m *Manager) rewrite(ctx context.Context, events []Event, change func(stored *Event, given Event)) error {
	if len(events) == 0 {
		return nil
	}
	ruleIDs, ids := make([]string, len(events)), make([]string, len(events))
	for i, e := range events {
		ruleIDs[i], ids[i] = e.RuleID, e.ID
	}
	fresh, err := m.o.Store.EventsByID(ctx, ruleIDs, ids)
	if err != nil {
		return err
	}
	rows := make([]Event, 0, len(events))
	for _, g := range events {
		row, ok := fresh[g.ID]
		if !ok {
			row = g
		}
		change(&row, g)
		row.Version = max(m.nextVersion(), row.Version+1, g.Version+1)
		rows = append(rows, row)
	}
	return m.o.Store.PutEvents(ctx, rows...)
}
