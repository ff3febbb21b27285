package alerts_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/alerts"
	"github.com/tollgate-dev/tollgate/internal/testenv"
	"github.com/tollgate-dev/tollgate/record"
)

// TestRestart: API rules, open incidents and cooldowns live in ClickHouse;
// each step below runs on a new evaluator, as after a restart.
func TestRestart(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t)
	c := &clock{t: t0}
	restart := func() *alerts.Manager {
		m, _, _ := e.newManager(t, c, alerts.Options{})
		return m
	}

	m := restart()
	created, err := m.Create(ctx(t), mustRule(t, fmt.Sprintf(`{"id":"spend","metric":"cost_usd","threshold":1,
		"window":"15m","cooldown":"1h","scope":{"property":{"name":"env","value":"prod"}},"webhook_url":%q}`, rc.URL)))
	if err != nil {
		t.Fatal(err)
	}
	if created.ReadOnly() || created.Scope.Property == nil {
		t.Fatalf("created %+v", created)
	}
	prod := []record.Property{{Key: "env", Value: "prod"}}
	e.write(t,
		&record.Record{CreatedAt: t0.Add(-5 * time.Minute), CostUSD: 2, Properties: prod},
		&record.Record{CreatedAt: t0.Add(50 * time.Minute), CostUSD: 2, Properties: prod},
		&record.Record{CreatedAt: t0.Add(2*time.Hour + 5*time.Minute), CostUSD: 2, Properties: prod},
		&record.Record{CreatedAt: t0.Add(55 * time.Minute), CostUSD: 99}, // out of scope
	)

	for _, step := range []struct {
		name string
		at   time.Duration
		want bool // a notification
	}{
		{"first breach", 0, true},
		{"same incident, after a restart", 5 * time.Minute, false},
		{"back below: the incident ends", 25 * time.Minute, false},
		{"new breach in the cooldown, after a restart", 55 * time.Minute, false},
		{"the cooldown, kept across the restart, is over", 61 * time.Minute, true},
		// Nobody saw the value drop in between: still the incident of 61m.
		{"breach past the cooldown, incident still open", 2*time.Hour + 10*time.Minute, false},
	} {
		m.Close()
		m = restart()
		rules, err := m.Rules(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		if len(rules) != 1 || rules[0].ID != "spend" || rules[0].ReadOnly() || rules[0].Scope.Property == nil ||
			rules[0].Scope.Property.Value != "prod" || rules[0].Window != 15*time.Minute || rules[0].WebhookURL != rc.URL {
			t.Fatalf("%s: rules after restart %+v", step.name, rules)
		}
		evaluate(t, m, c, t0.Add(step.at))
		if got := rc.take(); (len(got) == 1) != step.want || len(got) > 1 {
			t.Errorf("%s (t0+%s): %d notifications", step.name, step.at, len(got))
		}
	}
	events, err := m.Events(ctx(t), 50)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 || !events[0].FiredAt.Equal(t0.Add(61*time.Minute)) || !events[1].FiredAt.Equal(t0) {
		t.Errorf("events %+v", events)
	}

	// A deleted rule stays deleted after a restart; its id can be reused.
	if err := m.Delete(ctx(t), "spend"); err != nil {
		t.Fatal(err)
	}
	if err := m.Delete(ctx(t), "spend"); !errors.Is(err, alerts.ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}
	m = restart()
	if rules, err := m.Rules(ctx(t)); err != nil || len(rules) != 0 {
		t.Errorf("after delete and restart: %+v %v", rules, err)
	}
	again := mustRule(t, fmt.Sprintf(`{"id":"spend","metric":"error_rate","threshold":0.5,"window":"1h","webhook_url":%q}`, rc.URL))
	if _, err := m.Create(ctx(t), again); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Create(ctx(t), again); !errors.Is(err, alerts.ErrExists) {
		t.Errorf("duplicate create: %v", err)
	}
	m = restart()
	if rules, err := m.Rules(ctx(t)); err != nil || len(rules) != 1 || rules[0].Metric != alerts.ErrorRate {
		t.Errorf("re-created rule: %+v %v", rules, err)
	}
}

// TestStartAndClose: the background loop evaluates every Interval and
// Close stops it.
func TestStartAndClose(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t)
	c := &clock{t: t0}
	e.write(t, &record.Record{CreatedAt: t0.Add(-time.Minute), CostUSD: 5})
	r := mustRule(t, fmt.Sprintf(`{"id":"a","metric":"cost_usd","threshold":1,"window":"15m","webhook_url":%q}`, rc.URL))
	r.File = "alerts.yaml"
	m, reg, _ := e.newManager(t, c, alerts.Options{FileRules: []alerts.Rule{r}, Interval: 20 * time.Millisecond})
	m.Start()
	testenv.WaitFor(t, 20*time.Second, "3 evaluations", func() bool {
		return counter(t, reg, "tollgate_alert_evaluations_total", "outcome", "ok") >= 3
	})
	m.Close()
	n := counter(t, reg, "tollgate_alert_evaluations_total", "outcome", "ok")
	// Nothing to wait for: the test is that nothing happens in the next
	// five intervals.
	time.Sleep(100 * time.Millisecond)
	if after := counter(t, reg, "tollgate_alert_evaluations_total", "outcome", "ok"); after != n {
		t.Errorf("evaluations went on after Close: %v then %v", n, after)
	}
	if got := rc.take(); len(got) != 1 {
		t.Errorf("%d notifications, want 1", len(got))
	}
}
