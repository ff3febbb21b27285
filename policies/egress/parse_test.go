package egress_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/policies/egress"
)

// Each file in testdata/egress/invalid starts with the exact error it must
// produce, one "# want:" line per problem.
func TestEgressParseErrorFiles(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "egress", "invalid", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no test files (%v)", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, line := range strings.Split(string(data), "\n") {
				if w, ok := strings.CutPrefix(line, "# want: "); ok {
					want = append(want, w)
				}
			}
			_, err = egress.Parse(filepath.Base(file), data)
			if err == nil {
				t.Fatal("parsed")
			}
			if got := err.Error(); got != strings.Join(want, "\n") {
				t.Fatalf("error\n got: %s\nwant: %s", got, strings.Join(want, "\n"))
			}
		})
	}
}

func TestEgressParseErrors(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"top level is a list", "- a\n", "policy.yaml:1: want a mapping, got a list"},
		{"unknown top-level key", "default:\n  requireAuth: true\n",
			"policy.yaml:1: default: unknown key (want defaults or rules)"},
		{"repeated key", "defaults:\n  requireAuth: true\n  requireAuth: false\n",
			"policy.yaml:3: defaults.requireAuth: repeated key (first at line 2)"},
		{"alias", "defaults:\n  allow: &a {models: [x]}\nrules:\n- name: r\n  allow: *a\n",
			"policy.yaml:5: rules[0].allow: YAML aliases (*a) are not supported; write the value out"},
		{"two documents", "defaults: {}\n---\nrules: []\n",
			"policy.yaml:2: invalid YAML: a second document; the policy is one YAML document"},
		{"syntax error on the first line", "defaults: allow: x\n",
			"policy.yaml:1: invalid YAML: mapping values are not allowed in this context"},
		{"unquoted star", "defaults:\n  allow:\n    models: [*]\n",
			"policy.yaml:3: invalid YAML: did not find expected alphabetic or numeric character"},
		{"unknown provider", "defaults:\n  allow: {providers: [openai, opneai]}\n",
			`policy.yaml:2: defaults.allow.providers[1]: unknown provider "opneai" (want anthropic, gemini, groq, openai, together or "*")`},
		{"origin with a path", "defaults:\n  allow:\n    targetOrigins: [\"https://llm.example.com/v1\"]\n",
			`policy.yaml:3: defaults.allow.targetOrigins[0]: want an origin such as https://api.example.com (scheme and host, no path), got "https://llm.example.com/v1"`},
		{"origin wildcard in the middle", "defaults:\n  allow:\n    targetOrigins: [\"https://llm*.example.com\"]\n",
			`policy.yaml:3: defaults.allow.targetOrigins[0]: a wildcard origin takes the form https://*.example.com, got "https://llm*.example.com"`},
		{"bad ttl", "defaults:\n  cache:\n    ttl: 2w\n",
			`policy.yaml:3: defaults.cache.ttl: want a duration from 1s to 365d such as 1h or 7d, got "2w"`},
		{"ttl too long", "defaults:\n  cache:\n    ttl: 366d\n",
			`policy.yaml:3: defaults.cache.ttl: want a duration from 1s to 365d such as 1h or 7d, got "366d"`},
		{"bucket size", "defaults:\n  cache: {bucketMaxSize: 0}\n",
			"policy.yaml:2: defaults.cache.bucketMaxSize: want a whole number from 1 to 20, got the number 0"},
		{"enabled as a string", "defaults:\n  cache: {enabled: \"true\"}\n",
			`policy.yaml:2: defaults.cache.enabled: want true or false, got "true"`},
		{"log mode", "defaults:\n  logging: {requestBody: drop}\n",
			`policy.yaml:2: defaults.logging.requestBody: want keep, omit or redact, got "drop"`},
		{"redact without patterns", "defaults:\n  logging:\n    responseBody: redact\n",
			"policy.yaml:3: defaults.logging.responseBody: redact needs at least one pattern in logging.redact (here or in defaults)"},
		{"pattern matching nothing", "defaults:\n  logging: {redact: [\"a*\"]}\n",
			`policy.yaml:2: defaults.logging.redact[0]: "a*" matches the empty string; a redact pattern must match some text`},
		{"same window twice", "defaults:\n  rateLimits: [\"100;w=60\", \"200;w=60;u=request\"]\n",
			`policy.yaml:2: defaults.rateLimits[1]: "200;w=60;u=request" has the same window, unit and segment as defaults.rateLimits[0]; give one quota per window`},
		{"rule name", "rules:\n- name: Payments_Team\n",
			`policy.yaml:2: rules[0].name: "Payments_Team" is not a valid name (lowercase letters, digits, '-', '.', '_'; at most 63)`},
		{"rule not a mapping", "rules:\n- payments\n", `policy.yaml:2: rules[0]: want a mapping, got "payments"`},
		{"glob class range", "rules:\n- name: a\n  match: {namespaces: [\"[z-a]*\"]}\n",
			`policy.yaml:3: rules[0].match.namespaces[0]: bad pattern "[z-a]*": bad range in character class`},
		{"label value type", "rules:\n- name: a\n  match:\n    labels:\n      version: 2\n",
			"policy.yaml:5: rules[0].match.labels.version: want a string, got the number 2 (quote it)"},
		{"labels as a list", "rules:\n- name: a\n  match:\n    labels: [app]\n",
			"policy.yaml:4: rules[0].match.labels: want a mapping of label: value, got a list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := egress.Parse("policy.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatalf("parsed: %+v", p)
			}
			if err.Error() != tt.want {
				t.Fatalf("error\n got: %s\nwant: %s", err, tt.want)
			}
		})
	}
}

// A file with a great many mistakes reports the first ones and a count.
func TestEgressParseErrorsAreCapped(t *testing.T) {
	var b strings.Builder
	b.WriteString("rules:\n")
	for range 30 {
		b.WriteString("- {name: x, requireAuth: maybe}\n")
	}
	_, err := egress.Parse("p.yaml", []byte(b.String()))
	if err == nil {
		t.Fatal("parsed")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 21 || lines[20] != "p.yaml: 40 more errors" {
		t.Fatalf("%d lines, last %q", len(lines), lines[len(lines)-1])
	}
}

func TestEgressParseValidFiles(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "egress", "*.yaml"))
	if len(files) == 0 {
		t.Fatal("no valid policy files")
	}
	for _, file := range files {
		p := loadEgress(t, filepath.Base(file))
		if p.Name() != filepath.Base(file) {
			t.Errorf("Name() = %q", p.Name())
		}
	}
}

func TestEgressParseRuleNameRequired(t *testing.T) {
	for _, yaml := range []string{"rules:\n- match: {namespaces: [a]}\n", "rules:\n- name:\n  match: {namespaces: [a]}\n"} {
		_, err := egress.Parse("policy.yaml", []byte(yaml))
		if err == nil || err.Error() != "policy.yaml:2: rules[0]: name is required" {
			t.Errorf("%q: err = %v", yaml, err)
		}
	}
	// A match broken by a bad pattern is reported once, not also as a
	// catch-all hiding the next rule.
	_, err := egress.Parse("policy.yaml", []byte("rules:\n- name: a\n  match: {namespaces: [\"[\"]}\n- name: b\n"))
	if err == nil || err.Error() != `policy.yaml:3: rules[0].match.namespaces[0]: bad pattern "[": unclosed [` {
		t.Errorf("err = %v", err)
	}
}
