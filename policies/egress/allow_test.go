package egress_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/tollgate-dev/tollgate/policies/egress"
)

func TestEgressAllowModels(t *testing.T) {
	p := parseEgress(t, `
defaults:
  allow:
    models: [gpt-4o-mini, "claude-3-5-haiku*", "GPT-4.1", "o[13]-mini", "anthropic/claude-opus-*", "meta-llama/*"]
`)
	d := p.Decide(egress.Workload{})
	tests := []struct {
		provider, model string
		want            bool
	}{
		{"openai", "gpt-4o-mini", true},
		{"openai", "gpt-4o", false},                      // an exact pattern is no prefix
		{"openai", "gpt-4o-mini-2024-07-18", true},       // dated snapshot of an allowed model
		{"openai", "gpt-4o-mini-20240718", true},         // compact date
		{"openai", "gpt-4o-mini-latest", true},           // alias of the base
		{"openai", "gpt-4o-mini-search-preview", false},  // a different model, not a snapshot
		{"openai", "gpt-4o-2024-08-06", false},           // snapshot of a model not allowed
		{"openai", "GPT-4o-Mini", true},                  // case-insensitive
		{"openai", "gpt-4.1", true},                      // pattern written in capitals
		{"anthropic", "claude-3-5-haiku-20241022", true}, // prefix pattern
		{"anthropic", "claude-3-5-sonnet-20241022", false},
		{"openai", "o1-mini", true}, // character class
		{"openai", "o3-mini", true},
		{"openai", "o2-mini", false},
		{"anthropic", "claude-opus-4-1", true}, // provider-qualified pattern
		{"openai", "claude-opus-4-1", false},   // ... only for that provider
		{"openai", "anthropic/claude-opus-4", true},
		{"openai", "meta-llama/Llama-3-70b", true}, // * crosses '/'
		{"openai", "", true},                       // a call that names no model
	}
	for _, tt := range tests {
		if got := d.AllowsModel(tt.provider, tt.model); got != tt.want {
			t.Errorf("AllowsModel(%q, %q) = %v, want %v", tt.provider, tt.model, got, tt.want)
		}
	}
}

func TestEgressAllowProvidersAndOrigins(t *testing.T) {
	p := parseEgress(t, `
defaults:
  allow:
    providers: [OpenAI]
    targetOrigins: ["https://LLM.example.com:443/", "http://10.0.0.7:8000", "https://*.openai.azure.com"]
rules:
- name: open
  match: {namespaces: [lab]}
  allow: {providers: ["*"], targetOrigins: ["*"]}
- name: closed
  match: {namespaces: [jail]}
  allow: {providers: [], models: [], targetOrigins: []}
`)
	d := p.Decide(egress.Workload{})
	for _, tt := range []struct {
		origin string
		want   bool
	}{
		{"https://llm.example.com", true},
		{"HTTPS://LLM.EXAMPLE.COM", true},
		{"https://llm.example.com:443", true},
		{"https://llm.example.com/", true},
		{"http://llm.example.com", false}, // scheme matters
		{"https://llm.example.com:8443", false},
		{"http://10.0.0.7:8000", true},
		{"http://10.0.0.7", false},
		{"https://eastus.openai.azure.com", true},
		{"https://a.b.openai.azure.com", true},
		{"https://openai.azure.com", false}, // a wildcard needs a subdomain
		{"https://evil.com/.openai.azure.com", false},
		{"https://evil.com@x.openai.azure.com", false},
	} {
		if got := d.AllowsTargetOrigin(tt.origin); got != tt.want {
			t.Errorf("AllowsTargetOrigin(%q) = %v, want %v", tt.origin, got, tt.want)
		}
	}
	if !d.AllowsProvider("openai") || d.AllowsProvider("anthropic") {
		t.Error("defaults: want openai only")
	}
	lab := p.Decide(egress.Workload{Namespace: "lab"})
	if !lab.AllowsProvider("anthropic") || !lab.AllowsTargetOrigin("https://anywhere.example") {
		t.Error(`lab: "*" must allow any provider and origin`)
	}
	jail := p.Decide(egress.Workload{Namespace: "jail"})
	if jail.AllowsProvider("openai") || jail.AllowsModel("openai", "gpt-4o-mini") || jail.AllowsTargetOrigin("https://llm.example.com") {
		t.Error("jail: an empty list allows nothing")
	}
	if !jail.AllowsModel("openai", "") {
		t.Error("a call naming no model is not a model choice")
	}
}

func TestEgressDenyMessages(t *testing.T) {
	p := loadEgress(t, "mesh.yaml")
	checkout := p.Decide(egress.Workload{Namespace: "payments", ServiceAccount: "checkout", Labels: map[string]string{"app": "checkout"}})
	payments := p.Decide(egress.Workload{Namespace: "payments"})
	defaults := p.Decide(egress.Workload{Namespace: "web"})
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"model", checkout.CheckModel("openai", "gpt-4.1"),
			`egress policy "payments-checkout" does not allow model "gpt-4.1" (allowed: gpt-4o, gpt-4o-mini)`},
		{"provider", payments.CheckProvider("anthropic"),
			`egress policy "payments" does not allow provider "anthropic" (allowed: openai)`},
		{"defaults model", defaults.CheckModel("openai", "gpt-4o"),
			`egress policy defaults do not allow model "gpt-4o" (allowed: gpt-4o-mini, claude-3-5-haiku*)`},
		{"no origins", defaults.CheckTargetOrigin("https://api.together.xyz"),
			`egress policy defaults do not allow target origin "https://api.together.xyz" (allowed: none)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var denied *egress.DeniedError
			if !errors.As(tt.err, &denied) {
				t.Fatalf("err = %v, want an *EgressDeniedError", tt.err)
			}
			if tt.err.Error() != tt.want {
				t.Fatalf("message\n got %s\nwant %s", tt.err, tt.want)
			}
			a := denied.Answer()
			var body struct {
				Error struct{ Message, Type, Code, Rule string }
			}
			if err := json.Unmarshal(a.Body, &body); err != nil {
				t.Fatal(err)
			}
			if a.Status != 403 || denied.Status() != 403 || body.Error.Message != tt.want || body.Error.Code != "egress_denied" {
				t.Fatalf("answer %d %s", a.Status, a.Body)
			}
		})
	}
	if err := checkout.CheckModel("openai", "gpt-4o-2024-08-06"); err != nil {
		t.Errorf("snapshot of an allowed model: %v", err)
	}
	if err := payments.CheckProvider("openai"); err != nil {
		t.Errorf("allowed provider: %v", err)
	}
}

// "*" in a policy's targetOrigins covers what it covers in
// --allowed-target-origins: public https:// origins. An http:// or internal
// origin must be listed; a policy that gives no list narrows nothing.
func TestEgressOriginWildcardCoversPublicHTTPSOnly(t *testing.T) {
	p := parseEgress(t, `
rules:
- name: star
  match: {namespaces: [star]}
  allow: {targetOrigins: ["*", "http://10.0.0.7:8000"]}
- name: unset
  match: {namespaces: [unset]}
  allow: {providers: ["*"]}
`)
	star := p.Decide(egress.Workload{Namespace: "star"})
	for _, tt := range []struct {
		origin string
		want   bool
	}{
		{"https://api.together.xyz", true},
		{"http://10.0.0.7:8000", true}, // listed exactly
		{"http://api.together.xyz", false},
		{"http://127.0.0.1:9901", false},
		{"https://169.254.169.254", false},
		{"https://[::1]:9901", false},
		{"https://10.0.0.7:8000", false},
		{"https://localhost", false},
	} {
		if got := star.AllowsTargetOrigin(tt.origin); got != tt.want {
			t.Errorf("star: AllowsTargetOrigin(%q) = %v, want %v", tt.origin, got, tt.want)
		}
	}
	want := `egress policy "star" does not allow target origin "http://169.254.169.254" (allowed: *, http://10.0.0.7:8000): "*" matches https:// origins only; an http:// origin must be listed exactly`
	if err := star.CheckTargetOrigin("http://169.254.169.254"); err == nil || err.Error() != want {
		t.Errorf("CheckTargetOrigin: %v\nwant %s", err, want)
	}
	unset := p.Decide(egress.Workload{Namespace: "unset"})
	if !unset.AllowsTargetOrigin("http://127.0.0.1:9000") {
		t.Error("a policy without targetOrigins must leave the choice to --allowed-target-origins")
	}
}
