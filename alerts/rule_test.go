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

// TestClaims: the earliest claim (fired_at, then id) among those that
// followed the same event of the same generation wins; the latest winner
// is the rule's state.
func TestClaims(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	ev := func(id string, at time.Duration, prev, gen string) Event {
		return Event{ID: id, RuleID: "r", FiredAt: t0.Add(at), PrevID: prev, Generation: gen}
	}
	a := ev("0a", 0, "", "g1")
	b := ev("0b", 0, "", "g1")           // same second, larger id: loses to a
	c := ev("00", time.Second, "", "g1") // smaller id but a later second: loses
	d := ev("0d", time.Hour, "0a", "g1") // followed a: a new incident
	e := ev("0e", time.Hour, "", "g1")   // a stale claimer that never saw a: loses to a
	f := ev("0f", 2*time.Hour, "", "g2") // another generation
	lostA := a
	lostA.Lost = true
	evs := []Event{d, c, b, a, e, f}
	for _, x := range []struct {
		e    Event
		evs  []Event
		want bool
	}{
		{a, evs, true}, {b, evs, false}, {c, evs, false}, {d, evs, true}, {e, evs, false}, {f, evs, true},
		{b, []Event{lostA, b, c}, true}, {lostA, []Event{lostA, b}, false},
	} {
		if got := winner(x.e, x.evs); got != x.want {
			t.Errorf("winner(%s) = %v", x.e.ID, got)
		}
	}
	if got, ok := latest(evs, "g1"); !ok || got.ID != "0d" {
		t.Errorf("latest g1: %v %v", got.ID, ok)
	}
	if got, ok := latest(evs, "g2"); !ok || got.ID != "0f" {
		t.Errorf("latest g2: %v %v", got.ID, ok)
	}
	if _, ok := latest(evs, "g3"); ok {
		t.Error("latest of a generation without events")
	}
}

func TestRetrySchedule(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	var total time.Duration
	for n, want := range []time.Duration{225 * time.Second, 450 * time.Second, 15 * time.Minute, 30 * time.Minute} {
		got := retryDelay(n+1, time.Hour)
		if got != want {
			t.Errorf("retryDelay(%d, 1h) = %v, want %v", n+1, got, want)
		}
		total += got
	}
	if total >= time.Hour {
		t.Errorf("the tries span %v, more than the cooldown", total)
	}
	if d := retryDelay(1, time.Minute); d != 3*time.Second {
		t.Errorf("retryDelay(1, 1m) = %v", d)
	}
	pending := Event{ID: "e", FiredAt: t0, NextAttemptAt: t0.Add(time.Minute)}
	for _, c := range []struct {
		name string
		e    Event
		at   time.Duration
		want bool
	}{
		{"in flight (lease)", pending, 30 * time.Second, false},
		{"lease over", pending, time.Minute, true},
		{"delivered", Event{ID: "e", Delivered: true}, time.Hour, false},
		{"resolved", Event{ID: "e", ResolvedAt: t0, NextAttemptAt: t0}, time.Hour, false},
		{"no more tries", Event{ID: "e", Attempts: maxTries, NextAttemptAt: t0}, time.Hour, false},
		{"given up", Event{ID: "e", Attempts: 1}, time.Hour, false},
		{"lost", Event{ID: "e", Lost: true, NextAttemptAt: t0}, time.Hour, false},
		{"no event", Event{}, time.Hour, false},
	} {
		if got := due(c.e, t0.Add(c.at)); got != c.want {
			t.Errorf("%s: due %v", c.name, got)
		}
	}
}

func TestGeneration(t *testing.T) {
	base := Rule{ID: "a", Name: "A", Metric: CostUSD, Threshold: 1, Window: time.Hour, WebhookURL: "https://h.example/x",
		Cooldown: time.Hour, Enabled: true}
	same := base
	same.Name, same.Cooldown, same.Enabled = "B", 2*time.Hour, false
	if base.generation() != same.generation() {
		t.Error("name, cooldown or enabled changed the generation")
	}
	seen := map[string]string{base.generation(): "base"}
	for name, change := range map[string]func(*Rule){
		"metric":    func(r *Rule) { r.Metric = ErrorRate },
		"threshold": func(r *Rule) { r.Threshold = 1.5 },
		"window":    func(r *Rule) { r.Window = 2 * time.Hour },
		"model":     func(r *Rule) { r.Scope.Model = "m" },
		"user":      func(r *Rule) { r.Scope.User = "m" },
		"property":  func(r *Rule) { r.Scope.Property = &Property{Name: "m"} },
		"value":     func(r *Rule) { r.Scope.Property = &Property{Name: "m", Value: "v"} },
		"url":       func(r *Rule) { r.WebhookURL += "y" },
	} {
		r := base
		change(&r)
		g := r.generation()
		if prev, dup := seen[g]; dup {
			t.Errorf("%s: same generation as %s", name, prev)
		}
		seen[g] = name
	}
}

func TestRedactWebhookURL(t *testing.T) {
	for in, want := range map[string]string{
		"":                           "",
		"https://hooks.example.com":  "https://hooks.example.com",
		"https://hooks.example.com/": "https://hooks.example.com",
		"https://hooks.example.com:8443/T/B/SECRET": "https://hooks.example.com:8443/…",
		"https://hooks.example.com?token=SECRET":    "https://hooks.example.com/…",
		"https://user:SECRET@hooks.example.com":     "https://hooks.example.com",
		"http://[::1]:9/x#SECRET":                   "http://[::1]:9/…",
	} {
		if got := redactWebhookURL(in); got != want {
			t.Errorf("redactWebhookURL(%q) = %q, want %q", in, got, want)
		}
	}
	// The shortened form cannot be posted back as if it were a URL.
	_, err := DecodeRule([]byte(`{"metric":"cost_usd","threshold":1,"window":"15m","webhook_url":"https://hooks.example.com/…","webhook_url_set":true}`))
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "webhook_url" {
		t.Errorf("shortened URL: %v", err)
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
		`"scope":{"model":"gpt-4o","user":"u1","property":{"name":"env","value":"prod"}},"webhook_url":"http://127.0.0.1:9/…","webhook_url_set":true,`+
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
