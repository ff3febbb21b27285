package egress_test

import (
	"testing"

	"github.com/tollgate-dev/tollgate/policies/egress"
)

// BenchmarkEgressDecide is the per-request cost: pick the rule, then the
// checks the processor makes. It must not allocate.
func BenchmarkEgressDecide(b *testing.B) {
	p := loadEgress(b, "mesh.yaml")
	workloads := map[string]egress.Workload{
		"first-rule": {Namespace: "payments", ServiceAccount: "checkout", Name: "checkout-api", Labels: map[string]string{"app": "checkout"}},
		"last-rule":  {Namespace: "ops", ServiceAccount: "default", Name: "report-batch"},
		"defaults":   {Namespace: "web", ServiceAccount: "frontend", Name: "frontend", Labels: map[string]string{"app": "frontend"}},
	}
	for name, w := range workloads {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				d := p.Decide(w)
				if !d.AllowsProvider("openai") || !d.AllowsModel("openai", "gpt-4o-mini-2024-07-18") {
					b.Fatal("denied")
				}
			}
		})
	}
}

func TestEgressDecideDoesNotAllocate(t *testing.T) {
	p := loadEgress(t, "mesh.yaml")
	w := egress.Workload{Namespace: "team-ml", Name: "x", Labels: map[string]string{"tier": "research"}}
	allocs := testing.AllocsPerRun(100, func() {
		d := p.Decide(w)
		_ = d.AllowsModel("openai", "gpt-4o-mini-2024-07-18") && d.AllowsTargetOrigin("https://eastus.openai.azure.com")
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per Decide", allocs)
	}
}
