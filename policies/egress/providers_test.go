package egress_test

import (
	"testing"

	"github.com/tollgate-dev/tollgate/policies/egress"
)

// TestEgressProvidersRoutedByPath: the providers routed by path (Gemini,
// Together, Groq) are names a policy may list, and "<provider>/*" model
// patterns hold for them; azure is not one (Azure calls are checked as
// openai).
func TestEgressProvidersRoutedByPath(t *testing.T) {
	p := parseEgress(t, `
defaults:
  allow:
    providers: [gemini, groq]
    models: ["groq/llama-*", "gemini-2.5-*"]
`)
	d := p.Decide(egress.Workload{})
	for _, tt := range []struct {
		provider string
		want     bool
	}{{"gemini", true}, {"groq", true}, {"together", false}, {"openai", false}} {
		if got := d.AllowsProvider(tt.provider); got != tt.want {
			t.Errorf("AllowsProvider(%s) = %v", tt.provider, got)
		}
	}
	if !d.AllowsModel("groq", "llama-3.3-70b-versatile") || d.AllowsModel("together", "llama-3.3-70b") ||
		!d.AllowsModel("gemini", "gemini-2.5-flash") {
		t.Error("model rules for providers routed by path")
	}
	if _, err := egress.Parse("policy.yaml", []byte("defaults:\n  allow: {providers: [azure]}\n")); err == nil {
		t.Error("azure accepted as a provider name")
	}
}
