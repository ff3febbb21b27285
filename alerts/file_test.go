package alerts

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseRules(t *testing.T) {
	const good = `# alert rules
rules:
  - id: spend
    name: Daily spend
    metric: cost_usd
    threshold: 50
    window: 1d
    webhook_url: https://hooks.example.com/a
  - id: prod-errors
    metric: error_rate
    threshold: 0.05
    window: 15m
    cooldown: 30m
    enabled: false
    scope:
      model: gpt-4o
      property: {name: Env, value: 2024}
    webhook_url: http://127.0.0.1:9/hook
`
	rules, err := ParseRules("alerts.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 2 {
		t.Fatalf("%d rules", len(rules))
	}
	a, b := rules[0], rules[1]
	if a.ID != "spend" || a.Name != "Daily spend" || a.Window != 24*time.Hour || a.Cooldown != time.Hour || !a.Enabled ||
		a.File != "alerts.yaml" || !a.ReadOnly() {
		t.Errorf("first: %+v", a)
	}
	if b.Name != "prod-errors" || b.Enabled || b.Cooldown != 30*time.Minute || b.Scope.Model != "gpt-4o" ||
		b.Scope.Property == nil || *b.Scope.Property != (Property{"env", "2024"}) {
		t.Errorf("second: %+v", b)
	}

	for _, empty := range []string{"", "# nothing\n", "rules:\n", "rules: []\n"} {
		if rules, err := ParseRules("e.yaml", []byte(empty)); err != nil || len(rules) != 0 {
			t.Errorf("%q: %v %v", empty, rules, err)
		}
	}
}

func TestParseRulesErrors(t *testing.T) {
	const bad = `rules:
  - id: a
    metric: cost_usd
    threshold: lots
    window: 15m
    webhook_url: https://x.example
  - id: b
    metric: p99
    threshold: 1
    window: 10s
    webhook_url: ftp://x.example
    cooldown: 1s
  - id: a
    metric: cost_usd
    threshold: 1
    window: 15m
    webhook_url: https://x.example
  - metric: cost_usd
    colour: red
  - id: c
    metric: error_rate
    threshold: 2
    window: 1h
    webhook_url: https://x.example
    scope:
      property: {value: x}
      team: a
  - id: d
    metric: cost_usd
    threshold: 1
    webhook_url: https://x.example
    enabled: yes
`
	_, err := ParseRules("alerts.yaml", []byte(bad))
	if err == nil {
		t.Fatal("no error")
	}
	want := []string{
		"alerts.yaml:4: rules[0].threshold: want a number",
		"alerts.yaml:8: rules[1].metric: want cost_usd, error_rate or latency_p95_ms",
		"alerts.yaml:10: rules[1].window: want a whole number of seconds from 1m to 7d, such as 15m",
		"alerts.yaml:11: rules[1].webhook_url: want an http:// or https:// URL",
		"alerts.yaml:12: rules[1].cooldown: want a whole number of seconds from 1m to 30d, such as 1h",
		`alerts.yaml:13: rules[2].id: "a" is already the id of the rule at line 2`,
		// a field that is missing is reported at the rule's first line
		"alerts.yaml:18: rules[3].id: is required",
		"alerts.yaml:18: rules[3].threshold: is required",
		"alerts.yaml:18: rules[3].window: is required (a duration from 1m to 7d, such as 15m)",
		"alerts.yaml:18: rules[3].webhook_url: is required",
		"alerts.yaml:19: rules[3].colour: unknown key (want id, name, metric, threshold, window, scope, webhook_url, cooldown, enabled)",
		"alerts.yaml:22: rules[4].threshold: error_rate is a fraction of the requests: want a number from 0 to 1 (0.05 = 5%)",
		"alerts.yaml:26: rules[4].scope.property.name: is required with a property",
		"alerts.yaml:27: rules[4].scope.team: unknown key (want model, user, property)",
		"alerts.yaml:28: rules[5].window: is required (a duration from 1m to 7d, such as 15m)",
		"alerts.yaml:32: rules[5].enabled: want true or false", // YAML 1.2: yes is a string
	}
	if got := strings.Split(err.Error(), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", err, strings.Join(want, "\n"))
	}

	for _, c := range []struct{ text, want string }{
		{"rules:\n  - id: a\n   metric: x\n", "f.yaml:2: invalid YAML: did not find expected '-' indicator in a list (check the indentation from this line on)"},
		{"rules: {}\n", "f.yaml:1: rules: want a list of rules"},
		{"- id: a\n", "f.yaml:1: file: want a mapping"},
		{"alerts: []\n", "f.yaml:1: alerts: unknown key (want rules)"},
		{"rules:\n  - id: x\n    metric: cost_usd\n    threshold: 1\n    webhook_url: https://x.example\n", "f.yaml:2: rules[0].window: is required"},
		{"rules:\n  - id: x\n    metric: cost_usd\n    metric: cost_usd\n", "f.yaml:4: rules[0].metric: repeated key (first at line 3)"},
		{"rules:\n  - name: x\n", "f.yaml:2: rules[0].id: is required"},
		{"rules: []\n---\nrules: []\n", "f.yaml:2: invalid YAML: a second document"},
	} {
		_, err := ParseRules("f.yaml", []byte(c.text))
		if err == nil || !slices.Contains(strings.Split(err.Error(), "\n"), c.want) && !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q…", c.text, err, c.want)
		}
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "alerts.yaml")
	if err := os.WriteFile(path, []byte("rules:\n  - id: x\n    metric: nope\n    threshold: 1\n    window: 1h\n    webhook_url: https://x.example\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadFile(path)
	if err == nil || !strings.HasPrefix(err.Error(), path+":3: rules[0].metric: ") {
		t.Errorf("LoadFile: %v", err)
	}
	if _, err := LoadFile(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Error("missing file accepted")
	}
}
