package egress_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/policies/egress"
	"github.com/tollgate-dev/tollgate/policies/ratelimit"
)

func loadEgress(t testing.TB, file string) *egress.Policy {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "egress", file))
	if err != nil {
		t.Fatal(err)
	}
	p, err := egress.Parse(file, data)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func parseEgress(t testing.TB, yaml string) *egress.Policy {
	t.Helper()
	p, err := egress.Parse("policy.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestEgressDecideMatching(t *testing.T) {
	p := loadEgress(t, "mesh.yaml")
	checkout := map[string]string{"app": "checkout"}
	tests := []struct {
		name string
		w    egress.Workload
		want string // rule name; "" = defaults
	}{
		{"all selectors match", egress.Workload{Namespace: "payments", ServiceAccount: "checkout", Name: "checkout-api", Labels: checkout}, "payments-checkout"},
		{"extra labels do not matter", egress.Workload{Namespace: "payments", ServiceAccount: "checkout", Labels: map[string]string{"app": "checkout", "v": "2"}}, "payments-checkout"},
		{"wrong service account falls to the next rule", egress.Workload{Namespace: "payments", ServiceAccount: "refunds", Labels: checkout}, "payments"},
		{"missing label falls to the next rule", egress.Workload{Namespace: "payments", ServiceAccount: "checkout"}, "payments"},
		{"wrong label value falls to the next rule", egress.Workload{Namespace: "payments", ServiceAccount: "checkout", Labels: map[string]string{"app": "checkout2"}}, "payments"},
		{"namespace wildcard and label", egress.Workload{Namespace: "team-ml", Labels: map[string]string{"tier": "research"}}, "research"},
		{"namespace wildcard without the label", egress.Workload{Namespace: "team-ml"}, ""},
		{"wildcard needs its prefix", egress.Workload{Namespace: "teams", Labels: map[string]string{"tier": "research"}}, ""},
		{"workload suffix pattern", egress.Workload{Namespace: "default", Name: "report-batch"}, "batch"},
		{"workload ? pattern", egress.Workload{Namespace: "ops", Name: "nightly-3"}, "batch"},
		{"? is exactly one character", egress.Workload{Namespace: "ops", Name: "nightly-12"}, ""},
		{"first match wins", egress.Workload{Namespace: "payments", Name: "ledger-batch"}, "payments"},
		{"no rule matches", egress.Workload{Namespace: "web", ServiceAccount: "frontend", Name: "frontend"}, ""},
		{"empty workload", egress.Workload{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := p.Decide(tt.w).Rule; got != tt.want {
				t.Fatalf("rule = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestEgressSelectorKinds(t *testing.T) {
	p := parseEgress(t, `
rules:
- name: sa-glob
  match: {serviceAccounts: ["*-reader", "admin"]}
- name: present-label
  match: {labels: {canary: "*"}}
- name: two-labels
  match: {labels: {team: "ml", env: "prod-*"}}
- name: any-namespace-listed
  match: {namespaces: ["a", "b"], workloads: []}
- name: catch-all
`)
	tests := []struct {
		w    egress.Workload
		want string
	}{
		{egress.Workload{ServiceAccount: "log-reader"}, "sa-glob"},
		{egress.Workload{ServiceAccount: "admin"}, "sa-glob"},
		{egress.Workload{ServiceAccount: "admin2", Labels: map[string]string{"canary": ""}}, "present-label"},
		{egress.Workload{Labels: map[string]string{"team": "ml", "env": "prod-eu"}}, "two-labels"},
		{egress.Workload{Labels: map[string]string{"team": "ml", "env": "dev"}}, "catch-all"},
		{egress.Workload{Namespace: "b"}, "any-namespace-listed"},
		{egress.Workload{Namespace: "c"}, "catch-all"},
	}
	for _, tt := range tests {
		if got := p.Decide(tt.w).Rule; got != tt.want {
			t.Errorf("Decide(%+v).Rule = %q, want %q", tt.w, got, tt.want)
		}
	}
}

// A rule overrides the defaults setting by setting; what it leaves out is
// inherited, and a list it gives replaces the default list whole.
func TestEgressFieldByFieldOverride(t *testing.T) {
	p := loadEgress(t, "mesh.yaml")
	defaults := p.Decide(egress.Workload{Namespace: "web"})
	checkout := p.Decide(egress.Workload{Namespace: "payments", ServiceAccount: "checkout", Labels: map[string]string{"app": "checkout"}})
	payments := p.Decide(egress.Workload{Namespace: "payments"})
	research := p.Decide(egress.Workload{Namespace: "team-x", Labels: map[string]string{"tier": "research"}})
	batch := p.Decide(egress.Workload{Name: "x-batch"})

	if defaults.RequireAuth || !checkout.RequireAuth || payments.RequireAuth {
		t.Errorf("RequireAuth: defaults %v, checkout %v, payments %v", defaults.RequireAuth, checkout.RequireAuth, payments.RequireAuth)
	}
	// allow.models overridden, allow.providers inherited.
	if !checkout.AllowsModel("openai", "gpt-4o") || !checkout.AllowsProvider("anthropic") {
		t.Error("checkout: want gpt-4o allowed and anthropic inherited")
	}
	// allow.providers overridden, allow.models inherited.
	if payments.AllowsProvider("anthropic") || !payments.AllowsModel("openai", "gpt-4o-mini") || payments.AllowsModel("openai", "gpt-4o") {
		t.Error("payments: want openai only, with the defaults' models")
	}
	limits := func(ps []ratelimit.Policy) []string {
		var s []string
		for _, p := range ps {
			s = append(s, p.String())
		}
		return s
	}
	if got := limits(defaults.RateLimits); !slices.Equal(got, []string{"1000;w=60;u=request"}) {
		t.Errorf("defaults rate limits %v", got)
	}
	if got := limits(checkout.RateLimits); !slices.Equal(got, []string{"100;w=60;u=request", "5000;w=86400;u=request"}) {
		t.Errorf("checkout rate limits %v (a rule's list replaces the default's)", got)
	}
	if got := limits(checkout.Budgets); !slices.Equal(got, []string{"500;w=86400;u=cents;s=user"}) {
		t.Errorf("checkout budgets %v (inherited, in cents)", got)
	}
	if len(research.Budgets) != 0 || len(research.RateLimits) != 1 {
		t.Errorf("research: budgets [] clears the defaults', rate limits inherited; got %v / %v", research.Budgets, research.RateLimits)
	}
	// cache.enabled overridden, ttl and bucketMaxSize inherited.
	if want := (egress.Cache{Enabled: true, TTL: time.Hour, BucketMaxSize: 1}); payments.Cache != want {
		t.Errorf("payments cache %+v, want %+v", payments.Cache, want)
	}
	if want := (egress.Cache{Enabled: true, TTL: 7 * 24 * time.Hour, BucketMaxSize: 3}); batch.Cache != want {
		t.Errorf("batch cache %+v, want %+v", batch.Cache, want)
	}
	if want := (egress.Cache{TTL: time.Hour, BucketMaxSize: 1}); defaults.Cache != want {
		t.Errorf("defaults cache %+v, want %+v", defaults.Cache, want)
	}
	if checkout.RequestBody != egress.LogOmit || checkout.ResponseBody != egress.LogRedact ||
		payments.RequestBody != egress.LogKeep || payments.ResponseBody != egress.LogKeep {
		t.Errorf("logging: checkout %v/%v, payments %v/%v", checkout.RequestBody, checkout.ResponseBody, payments.RequestBody, payments.ResponseBody)
	}
	// The defaults' redact patterns reach the rule that asks for redaction.
	if got := string(checkout.Redact([]byte(`key sk-abcdefghijklmnopqrstuvwxyz`))); got != "key [REDACTED]" {
		t.Errorf("checkout redact: %q", got)
	}
}

// Without a policy, or with an empty file, nothing changes.
func TestEgressAbsentPolicyAllowsEverything(t *testing.T) {
	var none *egress.Policy
	empty := parseEgress(t, "# nothing yet\n")
	onlyNulls := parseEgress(t, "defaults:\nrules:\n")
	for name, p := range map[string]*egress.Policy{"nil": none, "empty": empty, "nulls": onlyNulls} {
		t.Run(name, func(t *testing.T) {
			d := p.Decide(egress.Workload{Namespace: "x", Name: "y"})
			if d.Rule != "" || d.RequireAuth || len(d.RateLimits) != 0 || len(d.Budgets) != 0 ||
				d.Cache != (egress.Cache{}) || d.RequestBody != egress.LogKeep || d.ResponseBody != egress.LogKeep {
				t.Fatalf("decision %+v changes something", d)
			}
			if !d.AllowsProvider("anthropic") || !d.AllowsModel("openai", "anything") || !d.AllowsTargetOrigin("https://evil.example") {
				t.Fatal("denies something")
			}
			if d.Limits(&ratelimit.Caller{}) != nil {
				t.Fatal("has limits")
			}
			body := []byte("sk-abcdefghijklmnopqrstuvwxyz")
			if got := d.ForLog(d.RequestBody, body); string(got) != string(body) {
				t.Fatalf("ForLog changed the body: %q", got)
			}
		})
	}
	var zero egress.Decision
	if !zero.AllowsModel("openai", "gpt-4o") || zero.CheckProvider("x") != nil {
		t.Fatal("zero decision denies")
	}
}
