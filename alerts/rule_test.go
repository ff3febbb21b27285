package alerts

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDurations(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Duration
		out  string
	}{
		{"15m", 15 * time.Minute, "15m"}, {"90s", 90 * time.Second, "90s"}, {"1h30m", 90 * time.Minute, "90m"},
		{"7d", 7 * 24 * time.Hour, "7d"}, {"1d12h", 36 * time.Hour, "36h"}, {"24h", 24 * time.Hour, "1d"},
	} {
		got, err := parseDuration(c.in)
		if err != nil || got != c.want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
		if s := formatDuration(got); s != c.out {
			t.Errorf("formatDuration(%v) = %q, want %q", got, s, c.out)
		}
	}
	for _, bad := range []string{"", "d", "1.5d", "-1d", "soon", "15"} {
		if d, err := parseDuration(bad); err == nil {
			t.Errorf("parseDuration(%q) = %v, want an error", bad, d)
		}
	}
}

func TestDecide(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	r := Rule{Threshold: 10, Cooldown: time.Hour}
	never := Event{}
	open := Event{ID: "e", FiredAt: t0}
	closed := Event{ID: "e", FiredAt: t0, ResolvedAt: t0.Add(10 * time.Minute)}
	for _, c := range []struct {
		name  string
		last  Event
		value float64
		at    time.Duration
		want  decision
	}{
		{"first breach", never, 11, 0, fire},
		{"at the threshold is no breach", never, 10, 0, hold},
		{"below, never fired", never, 1, 0, hold},
		{"breach, incident open, in cooldown", open, 50, 5 * time.Minute, hold},
		{"breach, incident open, after cooldown: same incident", open, 50, 2 * time.Hour, hold},
		{"back below ends the incident", open, 10, 5 * time.Minute, resolve},
		{"new breach in cooldown", closed, 11, 30 * time.Minute, hold},
		{"new breach when the cooldown ends", closed, 11, time.Hour, fire},
		{"below after the end", closed, 3, 2 * time.Hour, hold},
	} {
		if got := decide(c.last, c.value, r, t0.Add(c.at)); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func TestNewerEvent(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	held := Event{ID: "a", FiredAt: t0, version: 1}
	for _, c := range []struct {
		stored Event
		held   Event
		want   bool
	}{
		{held, Event{}, true},
		{Event{ID: "a", FiredAt: t0, version: 2}, held, true},
		{Event{ID: "a", FiredAt: t0, version: 1}, Event{ID: "a", FiredAt: t0, version: 2}, false},
		{Event{ID: "b", FiredAt: t0.Add(time.Minute), version: 1}, held, true},
		{Event{ID: "b", FiredAt: t0.Add(-time.Minute), version: 1}, held, false},
	} {
		if got := newer(c.stored, c.held); got != c.want {
			t.Errorf("newer(%+v, %+v) = %v", c.stored, c.held, got)
		}
	}
}

const validJSON = `{"id":"spend","metric":"cost_usd","threshold":10,"window":"15m","webhook_url":"https://hooks.example.com/x"}`

func TestDecodeRule(t *testing.T) {
	r, err := DecodeRule([]byte(validJSON))
	if err != nil {
		t.Fatal(err)
	}
	want := Rule{ID: "spend", Name: "spend", Metric: CostUSD, Threshold: 10, Window: 15 * time.Minute,
		WebhookURL: "https://hooks.example.com/x", Cooldown: time.Hour, Enabled: true}
	if r.Scope.Property != nil || r.ID != want.ID || r.Name != want.Name || r.Metric != want.Metric ||
		r.Threshold != want.Threshold || r.Window != want.Window || r.WebhookURL != want.WebhookURL ||
		r.Cooldown != want.Cooldown || r.Enabled != want.Enabled || r.ReadOnly() {
		t.Errorf("defaults: %+v", r)
	}

	full := `{"name":"Prod errors","metric":"error_rate","threshold":0.05,"window":"1h","cooldown":"2h","enabled":false,
		"scope":{"model":"gpt-4o","user":"u1","property":{"name":"Env","value":"prod"}},"webhook_url":"http://127.0.0.1:9/x","read_only":true}`
	r, err = DecodeRule([]byte(full))
	if err != nil {
		t.Fatal(err)
	}
	if r.ID != "" || r.Enabled || r.Cooldown != 2*time.Hour || r.Scope.Model != "gpt-4o" || r.Scope.User != "u1" ||
		r.Scope.Property == nil || *r.Scope.Property != (Property{"env", "prod"}) {
		t.Errorf("full: %+v", r)
	}
	b, _ := json.Marshal(r)
	if got := string(b); got != `{"id":"","name":"Prod errors","metric":"error_rate","threshold":0.05,"window":"1h",`+
		`"scope":{"model":"gpt-4o","user":"u1","property":{"name":"env","value":"prod"}},"webhook_url":"http://127.0.0.1:9/x",`+
		`"cooldown":"2h","enabled":false,"read_only":false}` {
		t.Errorf("JSON: %s", got)
	}

	for _, c := range []struct{ body, field string }{
		{`[]`, "body"},
		{`{"metric":"cost_usd","threshold":1,"window":"15m","webhook_url":"https://x.example"`, "body"},
		{`{"bogus":1}`, "bogus"},
		{`{"id":"has space","metric":"cost_usd","threshold":1,"window":"15m","webhook_url":"https://x.example"}`, "id"},
		{`{"id":7}`, "id"},
		{`{"threshold":1,"window":"15m","webhook_url":"https://x.example"}`, "metric"},
		{`{"metric":"p99","threshold":1,"window":"15m","webhook_url":"https://x.example"}`, "metric"},
		{`{"metric":"cost_usd","window":"15m","webhook_url":"https://x.example"}`, "threshold"},
		{`{"metric":"cost_usd","threshold":"high","window":"15m","webhook_url":"https://x.example"}`, "threshold"},
		{`{"metric":"cost_usd","threshold":-1,"window":"15m","webhook_url":"https://x.example"}`, "threshold"},
		{`{"metric":"error_rate","threshold":5,"window":"15m","webhook_url":"https://x.example"}`, "threshold"},
		{`{"metric":"cost_usd","threshold":1,"webhook_url":"https://x.example"}`, "window"},
		{`{"metric":"cost_usd","threshold":1,"window":"30s","webhook_url":"https://x.example"}`, "window"},
		{`{"metric":"cost_usd","threshold":1,"window":"8d","webhook_url":"https://x.example"}`, "window"},
		{`{"metric":"cost_usd","threshold":1,"window":15,"webhook_url":"https://x.example"}`, "window"},
		{`{"metric":"cost_usd","threshold":1,"window":"15m"}`, "webhook_url"},
		{`{"metric":"cost_usd","threshold":1,"window":"15m","webhook_url":"ftp://x.example/a"}`, "webhook_url"},
		{`{"metric":"cost_usd","threshold":1,"window":"15m","webhook_url":"hooks.example.com/a"}`, "webhook_url"},
		{`{"metric":"cost_usd","threshold":1,"window":"15m","webhook_url":"https://x.example","cooldown":"1s"}`, "cooldown"},
		{`{"metric":"cost_usd","threshold":1,"window":"15m","webhook_url":"https://x.example","enabled":"yes"}`, "enabled"},
		{`{"metric":"cost_usd","threshold":1,"window":"15m","webhook_url":"https://x.example","scope":[]}`, "scope"},
		{`{"metric":"cost_usd","threshold":1,"window":"15m","webhook_url":"https://x.example","scope":{"team":"a"}}`, "scope.team"},
		{`{"metric":"cost_usd","threshold":1,"window":"15m","webhook_url":"https://x.example","scope":{"property":{"value":"x"}}}`, "scope.property.name"},
		{`{"metric":"cost_usd","threshold":1,"window":"15m","webhook_url":"https://x.example","scope":{"property":{"name":"a","value":1}}}`, "scope.property.value"},
	} {
		_, err := DecodeRule([]byte(c.body))
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%s: %v, want a problem with %s", c.body, err, c.field)
		}
	}
	// A URL's token never appears in a problem.
	_, err = DecodeRule([]byte(`{"metric":"cost_usd","threshold":1,"window":"15m","webhook_url":"ftp://x.example/SECRET"}`))
	if err == nil || strings.Contains(err.Error(), "SECRET") {
		t.Errorf("webhook problem: %v", err)
	}
}
