package egress_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/policies/egress"
	"github.com/tollgate-dev/tollgate/policies/ratelimit"
)

// Policy limits are kept per (tenant, rule, workload, limit), apart from
// the request's own Helicone-RateLimit-Policy buckets ("rl:" keys).
func TestEgressLimitBuckets(t *testing.T) {
	p := loadEgress(t, "mesh.yaml")
	checkout := egress.Workload{Namespace: "payments", ServiceAccount: "checkout", Name: "checkout-api", Labels: map[string]string{"app": "checkout"}}
	req := &ratelimit.Caller{Tenant: "acme", UserID: "u-1"}
	got := p.Decide(checkout).Limits(req)
	want := []struct {
		key      string
		capacity float64
		window   time.Duration
		budget   bool
		cost     float64
	}{
		{"tg:{acme}:eg:payments-checkout:payments/checkout-api:rl:request:w60:all", 100, time.Minute, false, 1},
		{"tg:{acme}:eg:payments-checkout:payments/checkout-api:rl:request:w86400:all", 5000, 24 * time.Hour, false, 1},
		{"tg:{acme}:eg:payments-checkout:payments/checkout-api:budget:cents:w86400:user:u-1", 500, 24 * time.Hour, true, 0},
	}
	if len(got) != len(want) {
		t.Fatalf("%d limits, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		take := g.Take()
		if g.Bucket.Key != w.key || g.Bucket.Capacity != w.capacity || g.Bucket.Window != w.window || g.Budget != w.budget || take.Cost != w.cost || take.BucketRef != g.Bucket {
			t.Errorf("limit %d = %+v (take %+v), want %+v", i, g, take, w)
		}
	}

	// Another tenant, another workload of the same rule, the defaults:
	// every one its own buckets.
	keys := map[string]bool{}
	for _, c := range []struct {
		tenant string
		w      egress.Workload
	}{
		{"acme", checkout},
		{"globex", checkout},
		{"acme", egress.Workload{Namespace: "payments", ServiceAccount: "checkout", Name: "checkout-worker", Labels: map[string]string{"app": "checkout"}}},
		{"acme", egress.Workload{Namespace: "web", Name: "checkout-api"}},
		{"", egress.Workload{Namespace: "web", Name: "checkout-api"}},
	} {
		k := p.Decide(c.w).Limits(&ratelimit.Caller{Tenant: c.tenant})[0].Bucket.Key
		if keys[k] {
			t.Errorf("bucket %s shared", k)
		}
		keys[k] = true
	}
	if !keys["tg:{default}:eg::web/checkout-api:rl:request:w60:all"] {
		t.Errorf("defaults / default tenant key missing from %v", keys)
	}
}

func TestEgressLimitSegments(t *testing.T) {
	p := parseEgress(t, `
defaults:
  rateLimits: ["10;w=60;s=team"]
`)
	hdr := map[string]string{"helicone-property-team": "ml"}
	l := p.Decide(egress.Workload{Namespace: "ns", Name: "app"}).Limits(&ratelimit.Caller{Header: func(n string) string { return hdr[n] }})
	if want := "tg:{default}:eg::ns/app:rl:request:w60:p:team:ml"; len(l) != 1 || l[0].Bucket.Key != want {
		t.Fatalf("got %+v, want key %s", l, want)
	}
}

func TestEgressLimitedAnswer(t *testing.T) {
	p := loadEgress(t, "mesh.yaml")
	d := p.Decide(egress.Workload{Namespace: "payments", ServiceAccount: "checkout", Name: "checkout-api", Labels: map[string]string{"app": "checkout"}})
	limits := d.Limits(&ratelimit.Caller{UserID: "u"})
	a := limits[0].LimitedAnswer(ratelimit.BucketOutcome{Wait: 1500 * time.Millisecond})
	var body struct {
		Error struct{ Message, Code, Policy, Rule string }
	}
	if err := json.Unmarshal(a.Body, &body); err != nil {
		t.Fatal(err)
	}
	wantMsg := `Egress policy "payments-checkout" rate limit 100;w=60;u=request allows workload payments/checkout-api 100 requests per 60 s; retry in 2 s.`
	if a.Status != 429 || body.Error.Message != wantMsg || body.Error.Rule != "payments-checkout" || body.Error.Policy != "100;w=60;u=request" {
		t.Fatalf("answer %d %s", a.Status, a.Body)
	}
	hdrs := map[string]string{}
	for _, h := range a.Headers {
		hdrs[h[0]] = h[1]
	}
	if hdrs["retry-after"] != "2" || hdrs["x-helicone-error"] != "rate_limited" {
		t.Fatalf("headers %v", a.Headers)
	}
	budget := limits[2].LimitedAnswer(ratelimit.BucketOutcome{Remaining: -3})
	if !strings.Contains(string(budget.Body), `budget 500;w=86400;u=cents;s=user allows workload payments/checkout-api 500 cents per 86400 s for each user; retry in 1 s.`) {
		t.Fatalf("budget answer %s", budget.Body)
	}
}
