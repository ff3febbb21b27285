package alerts_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/alerts"
	"github.com/tollgate-dev/tollgate/record"
	"github.com/tollgate-dev/tollgate/storage/chstore/chtest"
)

// TestIncidentLifecycle: one notification per incident, none during the
// cooldown, none below the threshold, a new one after the cooldown.
func TestIncidentLifecycle(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t)
	c := &clock{}
	spend := mustRule(t, fmt.Sprintf(`{"id":"spend","name":"Spend","metric":"cost_usd","threshold":1,"window":"30m",
		"cooldown":"1h","webhook_url":%q}`, rc.URL+"/spend"))
	spend.File = "alerts.yaml"
	high := mustRule(t, fmt.Sprintf(`{"id":"high","metric":"cost_usd","threshold":100,"window":"7d","webhook_url":%q}`, rc.URL+"/high"))
	off := mustRule(t, fmt.Sprintf(`{"id":"off","metric":"cost_usd","threshold":0,"window":"1h","enabled":false,"webhook_url":%q}`, rc.URL+"/off"))
	m, reg, _ := e.newManager(t, c, alerts.Options{FileRules: []alerts.Rule{spend, high, off},
		DashboardURL: "https://tollgate.example/dashboard"})

	e.write(t, &record.Record{CreatedAt: t0.Add(-5 * time.Minute), CostUSD: 0.75},
		&record.Record{CreatedAt: t0.Add(-4 * time.Minute), CostUSD: 0.75, Tenant: "other"})

	evaluate(t, m, c, t0)
	got := rc.take()
	if len(got) != 1 {
		t.Fatalf("at t0: %d notifications, want 1: %+v", len(got), got)
	}
	d := got[0]
	if d.Path != "/spend" || d.EventID == "" || d.Body.Value != 1.5 || d.Body.Threshold != 1 || d.Body.Window != "30m" ||
		d.Body.FiredAt != "2026-03-01T10:00:00Z" || d.Body.DashboardURL != "https://tollgate.example/dashboard" {
		t.Errorf("payload %+v", d)
	}
	wantRule := map[string]any{"id": "spend", "name": "Spend", "metric": "cost_usd", "threshold": 1.0, "window": "30m",
		"scope": map[string]any{}, "cooldown": "1h", "enabled": true, "read_only": true}
	if fmt.Sprint(d.Body.Rule) != fmt.Sprint(wantRule) {
		t.Errorf("payload rule %v, want %v (never the webhook URL)", d.Body.Rule, wantRule)
	}

	for _, step := range []struct {
		at    time.Duration
		write *record.Record
		want  float64 // value notified; 0 = nothing
	}{
		{10 * time.Minute, nil, 0}, // same incident, in cooldown
		{40 * time.Minute, nil, 0}, // rows left the window: incident over
		{50 * time.Minute, &record.Record{CreatedAt: t0.Add(45 * time.Minute), CostUSD: 3}, 0}, // new breach, cooldown runs
		{65 * time.Minute, nil, 3}, // cooldown over: notify
		{70 * time.Minute, nil, 0}, // still the same incident
		{3 * time.Hour, nil, 0},    // gone again
	} {
		if step.write != nil {
			e.write(t, step.write)
		}
		evaluate(t, m, c, t0.Add(step.at))
		got := rc.take()
		switch {
		case step.want == 0 && len(got) != 0:
			t.Errorf("t0+%s: notified %+v", step.at, got)
		case step.want != 0 && (len(got) != 1 || got[0].Body.Value != step.want || got[0].Path != "/spend"):
			t.Errorf("t0+%s: %+v, want one notification of %v", step.at, got, step.want)
		}
	}

	events, err := m.Events(ctx(t), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 || events[0].Value != 3 || !events[0].FiredAt.Equal(t0.Add(65*time.Minute)) ||
		events[1].Value != 1.5 || !events[1].FiredAt.Equal(t0) || !events[0].Delivered || events[0].DeliveryError != "" ||
		events[0].RuleID != "spend" || events[0].RuleName != "Spend" || events[0].Window != 30*time.Minute {
		t.Errorf("events %+v", events)
	}
	if n := counter(t, reg, "tollgate_alerts_fired_total", "metric", "cost_usd"); n != 2 {
		t.Errorf("fired %v", n)
	}
	// 7 evaluations of the two enabled rules
	if n := counter(t, reg, "tollgate_alert_evaluations_total", "outcome", "ok"); n != 14 {
		t.Errorf("evaluations %v", n)
	}
	if n := counter(t, reg, "tollgate_alert_delivery_failures_total"); n != 0 {
		t.Errorf("delivery failures %v", n)
	}
}

// TestScopedRules: each rule sees only its scope.
func TestScopedRules(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t)
	c := &clock{}
	e.write(t, chtest.AlertScopeRows(t0)...)
	var rules []alerts.Rule
	for _, r := range []struct {
		id, metric string
		threshold  float64
		scope      string
	}{
		{"gpt4o-cost", "cost_usd", 34, `{"model":"gpt-4o"}`},                              // 35: fires
		{"alice-cost", "cost_usd", 5, `{"user":"alice"}`},                                 // 5: at the threshold
		{"prod-p95", "latency_p95_ms", 299, `{"property":{"name":"Env","value":"prod"}}`}, // 300: fires
		{"dev-p95", "latency_p95_ms", 200, `{"property":{"name":"env","value":"dev"}}`},   // 200
		{"mini-errors", "error_rate", 0.4, `{"model":"mini"}`},                            // 0.5: fires
		{"carol-errors", "error_rate", 0, `{"user":"carol"}`},                             // 0
		{"nobody", "cost_usd", 0, `{"user":"zed"}`},                                       // no rows
	} {
		rule := mustRule(t, fmt.Sprintf(`{"id":%q,"metric":%q,"threshold":%v,"window":"15m","scope":%s,"webhook_url":%q}`,
			r.id, r.metric, r.threshold, r.scope, rc.URL+"/"+r.id))
		rule.File = "alerts.yaml"
		rules = append(rules, rule)
	}
	m, _, _ := e.newManager(t, c, alerts.Options{FileRules: rules})
	evaluate(t, m, c, t0)
	got := map[string]float64{}
	for _, d := range rc.take() {
		got[d.Path] = d.Body.Value
	}
	want := map[string]float64{"/gpt4o-cost": 35, "/prod-p95": 300, "/mini-errors": 0.5}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("notified %v, want %v", got, want)
	}
}
