package egress_test

import (
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/policies/egress"
	"github.com/tollgate-dev/tollgate/policies/ratelimit"
)

// A rule can select key-vault proxy keys by id; its limits are then kept
// per key, so each key handed to a team has a budget of its own, while a
// rule that does not name keys keeps one bucket per workload whatever key
// its calls use (more keys never buy a workload more calls).
func TestProxyKeyRulesLimitEachKey(t *testing.T) {
	p, err := egress.Parse("keys.yaml", []byte(`
defaults:
  rateLimits: ["1000;w=60"]
rules:
- name: contractors
  match: {proxyKeys: ["contractor-*"]}
  allow: {models: ["gpt-4o-mini"]}
  budgets: ["500;w=86400"]
`))
	if err != nil {
		t.Fatal(err)
	}
	web := egress.Workload{Namespace: "web", Name: "api"}
	caller := &ratelimit.Caller{Tenant: "acme"}

	alice, bob := web, web
	alice.ProxyKey, bob.ProxyKey = "contractor-alice", "contractor-bob"
	da, db := p.Decide(alice), p.Decide(bob)
	if da.Rule != "contractors" || db.Rule != "contractors" {
		t.Fatalf("rules %q, %q: the proxyKeys selector did not match", da.Rule, db.Rule)
	}
	ka, kb := da.Limits(caller)[0].Bucket.Key, db.Limits(caller)[0].Bucket.Key
	if ka == kb || !strings.Contains(ka, "contractor-alice") {
		t.Fatalf("two proxy keys share a budget: %s and %s", ka, kb)
	}
	if msg := string(da.Limits(caller)[0].LimitedAnswer(ratelimit.BucketOutcome{}).Body); !strings.Contains(msg, "contractor-alice") {
		t.Errorf("the 429 does not name the proxy key: %s", msg)
	}

	// Without a proxy key, or with one the rule does not name, the
	// defaults apply, one bucket per workload.
	staff := web
	staff.ProxyKey = "staff-carol"
	for _, w := range []egress.Workload{web, staff} {
		d := p.Decide(w)
		if d.Rule != "" {
			t.Fatalf("workload %+v matched rule %q", w, d.Rule)
		}
	}
	if a, b := p.Decide(web).Limits(caller)[0].Bucket.Key, p.Decide(staff).Limits(caller)[0].Bucket.Key; a != b {
		t.Errorf("a key no rule names split the workload's bucket: %s vs %s", a, b)
	}
}
