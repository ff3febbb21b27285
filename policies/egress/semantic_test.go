package egress_test

import (
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/policies/egress"
)

// cache.semantic and cache.semanticThreshold: a default a rule inherits or
// overrides key by key, and a threshold that is not a similarity refused.
func TestCacheSemantic(t *testing.T) {
	p, err := egress.Parse("policy.yaml", []byte(`defaults:
  cache: {enabled: true, semantic: true, semanticThreshold: 0.9}
rules:
- name: off
  match: {namespaces: [batch]}
  cache: {semantic: false}
`))
	if err != nil {
		t.Fatal(err)
	}
	if c := p.Decide(egress.Workload{Namespace: "web"}).Cache; !c.Semantic || c.SemanticThreshold != 0.9 {
		t.Errorf("defaults: %+v", c)
	}
	if c := p.Decide(egress.Workload{Namespace: "batch"}).Cache; c.Semantic || c.SemanticThreshold != 0.9 || !c.Enabled {
		t.Errorf("rule: %+v (semantic off, the rest inherited)", c)
	}
	for _, bad := range []string{"0", "1.5", "high", "-0.2"} {
		_, err := egress.Parse("policy.yaml", []byte("defaults:\n  cache: {semanticThreshold: "+bad+"}\n"))
		if err == nil || !strings.Contains(err.Error(), "defaults.cache.semanticThreshold: want a cosine similarity in (0, 1]") {
			t.Errorf("threshold %s: %v", bad, err)
		}
	}
}
