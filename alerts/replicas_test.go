package alerts_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/alerts"
	"github.com/tollgate-dev/tollgate/record"
)

// barrier lets n goroutines through once all have arrived (or after 10
// seconds, failing the test).
func barrier(t *testing.T, n int) func() {
	var mu sync.Mutex
	arrived := 0
	all := make(chan struct{})
	return func() {
		mu.Lock()
		arrived++
		if arrived == n {
			close(all)
		}
		mu.Unlock()
		select {
		case <-all:
		case <-time.After(10 * time.Second):
			t.Error("barrier: the other replica never arrived")
		}
	}
}

func fileRule(t *testing.T, js string) alerts.Rule {
	t.Helper()
	r := mustRule(t, js)
	r.File = "alerts.yaml"
	return r
}

// rawEvents counts the rows of alert_events under FINAL, and the lost ones.
func rawEvents(t *testing.T, e *env) (rows, lost uint64) {
	t.Helper()
	if err := e.conn.QueryRow(ctx(t), "SELECT count(), sum(lost) FROM "+e.db+".alert_events FINAL").Scan(&rows, &lost); err != nil {
		t.Fatal(err)
	}
	return rows, lost
}

// TestReplicasNotifyOnce: two evaluators on one database (two replicas)
// and a slow webhook. The event is recorded before the webhook is called,
// so a replica evaluating during the other's delivery holds back; and when
// both claim the incident at the same moment, the earlier claim alone
// sends.
func TestReplicasNotifyOnce(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t)
	e.write(t, &record.Record{CreatedAt: t0.Add(-time.Minute), CostUSD: 5})

	t.Run("during a delivery", func(t *testing.T) {
		c := &clock{t: t0}
		rule := fileRule(t, fmt.Sprintf(`{"id":"slow","metric":"cost_usd","threshold":1,"window":"15m","webhook_url":%q}`, rc.URL+"/slow"))
		a, _, _ := e.newManager(t, c, alerts.Options{FileRules: []alerts.Rule{rule}})
		b, _, _ := e.newManager(t, c, alerts.Options{FileRules: []alerts.Rule{rule}})
		rc.set(200, 700*time.Millisecond)
		done := make(chan error, 1)
		go func() { done <- a.EvaluateOnce(context.Background()) }()
		rc.waitFor(t, 1) // a is delivering
		evaluate(t, b, c, t0.Add(10*time.Second))
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if got := rc.take(); len(got) != 1 {
			t.Errorf("%d notifications, want 1", len(got))
		}
		events, err := b.Events(ctx(t), 10)
		if err != nil || len(events) != 1 || !events[0].Delivered || events[0].Attempts != 1 {
			t.Errorf("events %+v %v", events, err)
		}
	})

	t.Run("claims at the same moment", func(t *testing.T) {
		if err := e.conn.Exec(ctx(t), "TRUNCATE TABLE "+e.db+".alert_events"); err != nil {
			t.Fatal(err)
		}
		c := &clock{t: t0}
		rule := fileRule(t, fmt.Sprintf(`{"id":"race","metric":"cost_usd","threshold":1,"window":"15m","webhook_url":%q}`, rc.URL+"/race"))
		before, after := barrier(t, 2), barrier(t, 2)
		var managers []*alerts.Manager
		for range 2 {
			m, _, _ := e.newManager(t, c, alerts.Options{FileRules: []alerts.Rule{rule}})
			// Both decide to fire before either claims, and both claims are
			// in before either is read back.
			alerts.SetTestHooks(m, alerts.TestHooks{BeforeClaim: before, AfterClaim: after})
			managers = append(managers, m)
		}
		rc.set(200, 300*time.Millisecond)
		var wg sync.WaitGroup
		for _, m := range managers {
			wg.Go(func() {
				if err := m.EvaluateOnce(ctx(t)); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		got := rc.take()
		if len(got) != 1 {
			t.Fatalf("%d notifications, want 1", len(got))
		}
		if rows, lost := rawEvents(t, e); rows != 2 || lost != 1 {
			t.Errorf("%d event rows, %d lost; want 2 claims, 1 lost", rows, lost)
		}
		events, err := managers[0].Events(ctx(t), 10)
		if err != nil || len(events) != 1 || !events[0].Delivered || events[0].ID != got[0].EventID {
			t.Errorf("events %+v (%v), want the one delivered", events, err)
		}
		// Later evaluations see one open incident, whichever replica runs.
		alerts.SetTestHooks(managers[1], alerts.TestHooks{})
		evaluate(t, managers[1], c, t0.Add(time.Minute))
		if got := rc.take(); len(got) != 0 {
			t.Errorf("notified again: %+v", got)
		}
	})
}

// TestRetryUndelivered: an event the webhook did not take is tried again
// while its incident is open, with backoff (1h cooldown: 3m45s, 7m30s,
// 15m, 30m), under the same event id, at most five tries.
func TestRetryUndelivered(t *testing.T) {
	e := newEnv(t)
	flaky, down := newReceiver(t), newReceiver(t)
	c := &clock{}
	e.write(t, &record.Record{CreatedAt: t0.Add(-time.Minute), CostUSD: 5})
	rules := []alerts.Rule{
		fileRule(t, fmt.Sprintf(`{"id":"flaky","metric":"cost_usd","threshold":1,"window":"1d","webhook_url":%q}`, flaky.URL)),
		fileRule(t, fmt.Sprintf(`{"id":"down","metric":"cost_usd","threshold":1,"window":"1d","webhook_url":%q}`, down.URL)),
	}
	m, reg, _ := e.newManager(t, c, alerts.Options{FileRules: rules, WebhookAttempts: 1})
	flaky.set(500, 0)
	down.set(503, 0)

	var firstID string
	for _, step := range []struct {
		at          time.Duration
		flaky, down int // requests
	}{
		{0, 1, 1},
		{time.Minute, 0, 0},
		{4 * time.Minute, 1, 1}, // flaky is back
		{10 * time.Minute, 0, 0},
		{12 * time.Minute, 0, 1},
		{27 * time.Minute, 0, 1},
		{57 * time.Minute, 0, 1}, // the fifth try
		{2 * time.Hour, 0, 0},
	} {
		if step.at == 4*time.Minute {
			flaky.set(200, 0)
		}
		evaluate(t, m, c, t0.Add(step.at))
		f, d := flaky.take(), down.take()
		if len(f) != step.flaky || len(d) != step.down {
			t.Errorf("t0+%s: %d and %d requests, want %d and %d", step.at, len(f), len(d), step.flaky, step.down)
		}
		for _, x := range f {
			if firstID == "" {
				firstID = x.EventID
			} else if x.EventID != firstID {
				t.Errorf("t0+%s: retry under another event id", step.at)
			}
		}
	}
	events, err := m.Events(ctx(t), 10)
	if err != nil {
		t.Fatal(err)
	}
	byRule := map[string]alerts.Event{}
	for _, ev := range events {
		if _, dup := byRule[ev.RuleID]; dup {
			t.Errorf("a second event for %s: %+v", ev.RuleID, events)
		}
		byRule[ev.RuleID] = ev
	}
	if ev := byRule["flaky"]; ev.ID != firstID || !ev.Delivered || ev.Attempts != 2 || ev.DeliveryError != "" {
		t.Errorf("flaky: %+v", ev)
	}
	if ev := byRule["down"]; ev.Delivered || ev.Attempts != 5 || ev.DeliveryError != "webhook answered HTTP 503" {
		t.Errorf("down: %+v", ev)
	}
	if n := counter(t, reg, "tollgate_alerts_fired_total", "metric", "cost_usd"); n != 2 {
		t.Errorf("fired %v, want 2 (retries are not new alerts)", n)
	}
	if n := counter(t, reg, "tollgate_alert_delivery_failures_total"); n != 6 {
		t.Errorf("delivery failures %v, want 6", n)
	}
}

// TestInterruptedDelivery: a delivery cancelled by Close records no failed
// try, and the next evaluation (here after a restart) delivers the event.
func TestInterruptedDelivery(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t)
	c := &clock{t: t0}
	e.write(t, &record.Record{CreatedAt: t0.Add(-time.Minute), CostUSD: 5})
	rule := fileRule(t, fmt.Sprintf(`{"id":"a","metric":"cost_usd","threshold":1,"window":"15m","webhook_url":%q}`, rc.URL))
	m, reg, _ := e.newManager(t, c, alerts.Options{FileRules: []alerts.Rule{rule}, Interval: 10 * time.Millisecond})
	rc.set(200, time.Minute)
	m.Start()
	rc.waitFor(t, 1)
	m.Close()
	first := rc.take()[0]
	events, err := m.Events(ctx(t), 10)
	if err != nil || len(events) != 1 || events[0].Delivered || events[0].Attempts != 0 ||
		!strings.Contains(events[0].DeliveryError, "interrupted") {
		t.Fatalf("after Close: %+v %v", events, err)
	}
	if n := counter(t, reg, "tollgate_alert_delivery_failures_total"); n != 0 {
		t.Errorf("%v delivery failures counted for an interrupted delivery", n)
	}

	rc.set(200, 0)
	m2, _, _ := e.newManager(t, c, alerts.Options{FileRules: []alerts.Rule{rule}})
	evaluate(t, m2, c, t0.Add(time.Second))
	if got := rc.take(); len(got) != 1 || got[0].EventID != first.EventID {
		t.Errorf("after the restart: %+v, want the event %s again", got, first.EventID)
	}
	events, err = m2.Events(ctx(t), 10)
	if err != nil || len(events) != 1 || !events[0].Delivered || events[0].Attempts != 1 {
		t.Errorf("after the retry: %+v %v", events, err)
	}
}

// TestRuleGenerations: incident state belongs to what a rule watches. A
// rule deleted and created again with another metric fires at once; a
// disabled rule's incident ends, so the rule enabled again notifies the
// next breach.
func TestRuleGenerations(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t)
	c := &clock{t: t0}
	e.write(t,
		&record.Record{CreatedAt: t0.Add(-time.Minute), CostUSD: 5, Status: 500},
		&record.Record{CreatedAt: t0.Add(-time.Minute), CostUSD: 5, Status: 200},
	)
	m, _, _ := e.newManager(t, c, alerts.Options{})
	if _, err := m.Create(ctx(t), mustRule(t, fmt.Sprintf(`{"id":"spend","metric":"cost_usd","threshold":1,"window":"1d",
		"webhook_url":%q}`, rc.URL+"/cost"))); err != nil {
		t.Fatal(err)
	}
	evaluate(t, m, c, t0)
	if got := rc.take(); len(got) != 1 || got[0].Path != "/cost" {
		t.Fatalf("first: %+v", got)
	}
	if err := m.Delete(ctx(t), "spend"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Create(ctx(t), mustRule(t, fmt.Sprintf(`{"id":"spend","metric":"error_rate","threshold":0.1,"window":"1d",
		"webhook_url":%q}`, rc.URL+"/errors"))); err != nil {
		t.Fatal(err)
	}
	// In the cooldown of the cost event, and its incident was open: the
	// new rule is not bound by either.
	evaluate(t, m, c, t0.Add(5*time.Minute))
	if got := rc.take(); len(got) != 1 || got[0].Path != "/errors" || got[0].Body.Value != 0.5 {
		t.Errorf("re-created rule: %+v", got)
	}
	events, err := m.Events(ctx(t), 10)
	if err != nil || len(events) != 2 || events[0].Metric != alerts.ErrorRate || !events[0].ResolvedAt.IsZero() ||
		events[1].Metric != alerts.CostUSD || !events[1].ResolvedAt.Equal(t0.Add(5*time.Minute)) {
		t.Errorf("events %+v %v", events, err)
	}
	evaluate(t, m, c, t0.Add(10*time.Minute))
	if got := rc.take(); len(got) != 0 {
		t.Errorf("the new incident notified twice: %+v", got)
	}

	// A file rule: enabled, disabled, enabled again.
	js := `{"id":"file","metric":"cost_usd","threshold":1,"window":"1d","enabled":%v,"webhook_url":%q}`
	on := fileRule(t, fmt.Sprintf(js, true, rc.URL+"/file"))
	off := fileRule(t, fmt.Sprintf(js, false, rc.URL+"/file"))
	step := func(r alerts.Rule, at time.Duration, want int) {
		t.Helper()
		m, _, _ := e.newManager(t, c, alerts.Options{FileRules: []alerts.Rule{r}})
		evaluate(t, m, c, t0.Add(at))
		if got := rc.take(); len(got) != want {
			t.Errorf("t0+%s (enabled %v): %d notifications, want %d", at, r.Enabled, len(got), want)
		}
	}
	step(on, 0, 1)
	step(on, 2*time.Hour, 0) // the incident is still open
	step(off, 3*time.Hour, 0)
	step(on, 4*time.Hour, 1) // the disabled rule's incident ended: a new one
}

// TestPrivateWebhooksRefused: by default no webhook reaches a loopback
// address, by IP or by name, and the error says why without naming it;
// AllowPrivateWebhooks lets it through.
func TestPrivateWebhooksRefused(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t)
	c := &clock{t: t0}
	e.write(t, &record.Record{CreatedAt: t0.Add(-time.Minute), CostUSD: 5})
	port := rc.URL[strings.LastIndexByte(rc.URL, ':')+1:]
	rules := []alerts.Rule{
		fileRule(t, fmt.Sprintf(`{"id":"by-ip","metric":"cost_usd","threshold":1,"window":"15m","webhook_url":%q}`, rc.URL+"/ip")),
		fileRule(t, fmt.Sprintf(`{"id":"by-name","metric":"cost_usd","threshold":1,"window":"15m","webhook_url":%q}`,
			"http://localhost:"+port+"/name")),
	}
	m, _, logs := e.newStrictManager(t, c, alerts.Options{FileRules: rules})
	evaluate(t, m, c, t0)
	if got := rc.take(); len(got) != 0 {
		t.Fatalf("a loopback webhook was called: %+v", got)
	}
	events, err := m.Events(ctx(t), 10)
	if err != nil || len(events) != 2 {
		t.Fatalf("events %+v %v", events, err)
	}
	for _, ev := range events {
		if ev.Delivered || !strings.HasPrefix(ev.DeliveryError, "webhook refused: the webhook's host resolves to a loopback address") ||
			!strings.Contains(ev.DeliveryError, "AllowPrivateWebhooks") {
			t.Errorf("%s: %+v", ev.RuleID, ev)
		}
		for _, leak := range []string{"127.0.0.1", "localhost", port, "::1"} {
			if strings.Contains(ev.DeliveryError, leak) || strings.Contains(logs.String(), leak) {
				t.Errorf("%s: %q named in %q or the logs", ev.RuleID, leak, ev.DeliveryError)
			}
		}
	}
	// Allowed: the retry (after 3m45s) goes through.
	m2, _, _ := e.newManager(t, c, alerts.Options{FileRules: rules})
	evaluate(t, m2, c, t0.Add(4*time.Minute))
	if got := rc.take(); len(got) != 2 {
		t.Errorf("allowed: %d notifications, want 2", len(got))
	}
}

// TestConcurrentCreate: creates of one id take turns within a Manager;
// between replicas, the one whose row lost answers ErrExists, and deletes
// that lose to a create answer ErrConflict.
func TestConcurrentCreate(t *testing.T) {
	e := newEnv(t)
	c := &clock{t: t0}
	rule := func(metric string) alerts.Rule {
		return mustRule(t, fmt.Sprintf(`{"id":"same","metric":%q,"threshold":1,"window":"15m","webhook_url":"https://hooks.example.com/x"}`, metric))
	}

	m, _, _ := e.newManager(t, c, alerts.Options{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ok, exists int
	for range 8 {
		wg.Go(func() {
			_, err := m.Create(ctx(t), rule("cost_usd"))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, alerts.ErrExists):
				exists++
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if ok != 1 || exists != 7 {
		t.Errorf("one manager: %d created, %d ErrExists; want 1 and 7", ok, exists)
	}
	if err := m.Delete(ctx(t), "same"); err != nil {
		t.Fatal(err)
	}

	// Two replicas: both find the id free, then both rows are written
	// before either is read back.
	afterRead, afterPut := barrier(t, 2), barrier(t, 2)
	a, _, _ := e.newManager(t, c, alerts.Options{})
	b, _, _ := e.newManager(t, c, alerts.Options{})
	alerts.SetTestHooks(a, alerts.TestHooks{AfterRuleRead: afterRead, AfterRulePut: afterPut})
	alerts.SetTestHooks(b, alerts.TestHooks{AfterRuleRead: afterRead, AfterRulePut: afterPut})
	errs := make([]error, 2)
	wg.Go(func() { _, errs[0] = a.Create(ctx(t), rule("cost_usd")) })
	wg.Go(func() { _, errs[1] = b.Create(ctx(t), rule("error_rate")) })
	wg.Wait()
	if (errs[0] == nil) == (errs[1] == nil) || !errors.Is(errors.Join(errs...), alerts.ErrExists) {
		t.Fatalf("two replicas: %v", errs)
	}
	winner := alerts.CostUSD
	if errs[0] != nil {
		winner = alerts.ErrorRate
	}
	rules, err := a.Rules(ctx(t))
	if err != nil || len(rules) != 1 || rules[0].Metric != winner {
		t.Errorf("stored %+v %v, want the %s rule that was answered 201", rules, err, winner)
	}

	// A delete that another replica's create overtakes, between writing
	// the deletion and reading it back, answers ErrConflict.
	alerts.SetTestHooks(a, alerts.TestHooks{AfterRulePut: func() {
		if _, err := b.Create(ctx(t), rule("latency_p95_ms")); err != nil {
			t.Errorf("create between: %v", err)
		}
	}})
	if err := a.Delete(ctx(t), "same"); !errors.Is(err, alerts.ErrConflict) {
		t.Errorf("overtaken delete: %v, want ErrConflict", err)
	}
	if rules, err := a.Rules(ctx(t)); err != nil || len(rules) != 1 || rules[0].Metric != alerts.LatencyP95 {
		t.Errorf("after the overtaken delete: %+v %v", rules, err)
	}
}
