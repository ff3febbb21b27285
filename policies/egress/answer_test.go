package egress_test

import (
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/policies/egress"
	"github.com/tollgate-dev/tollgate/policies/ratelimit"
)

// TestDeniedAnswerGolden pins the exact bytes of the 403, escaping
// included: a model name is the client's text.
func TestDeniedAnswerGolden(t *testing.T) {
	for _, c := range []struct {
		err  egress.DeniedError
		body string
	}{
		{egress.DeniedError{Rule: "payments-checkout", What: "model", Value: "gpt-4o", Allowed: []string{"gpt-4o-mini"}},
			`{"error":{"message":"egress policy \"payments-checkout\" does not allow model \"gpt-4o\" (allowed: gpt-4o-mini)","type":"egress_denied","code":"egress_denied","rule":"payments-checkout"}}`},
		{egress.DeniedError{What: "target origin", Value: "http://10.0.0.1", Allowed: []string{"*"}, Why: `"*" matches https:// origins only`},
			`{"error":{"message":"egress policy defaults do not allow target origin \"http://10.0.0.1\" (allowed: *): \"*\" matches https:// origins only","type":"egress_denied","code":"egress_denied","rule":""}}`},
		{egress.DeniedError{Rule: "a&b", What: "model", Value: "<x>&\"\\\n\t\x01é\u2028", Allowed: []string{"m<1>", "tab\there"}},
			"{\"error\":{\"message\":\"egress policy \\\"a&b\\\" does not allow model \\\"<x>&\\\\\\\"\\\\\\\\\\\\n\\\\t\\\\x01é\\\\u2028\\\" (allowed: m<1>, tab\\u0009here)\",\"type\":\"egress_denied\",\"code\":\"egress_denied\",\"rule\":\"a&b\"}}"},
	} {
		a := c.err.Answer()
		if string(a.Body) != c.body {
			t.Errorf("body\n got %s\nwant %s", a.Body, c.body)
		}
		if a.Status != 403 {
			t.Errorf("status %d", a.Status)
		}
	}
}

// TestEgressLimitedAnswerGolden pins the exact bytes of an egress 429.
func TestEgressLimitedAnswerGolden(t *testing.T) {
	p := loadEgress(t, "mesh.yaml")
	d := p.Decide(egress.Workload{Namespace: "payments", ServiceAccount: "checkout", Name: "checkout-api", Labels: map[string]string{"app": "checkout"}})
	limits := d.Limits(&ratelimit.Caller{UserID: "u"})
	for i, want := range map[int]string{
		0: `{"error":{"message":"Egress policy \"payments-checkout\" rate limit 100;w=60;u=request allows workload payments/checkout-api 100 requests per 60 s; retry in 2 s.","type":"rate_limited","code":"egress_rate_limited","policy":"100;w=60;u=request","rule":"payments-checkout"}}`,
		2: `{"error":{"message":"Egress policy \"payments-checkout\" budget 500;w=86400;u=cents;s=user allows workload payments/checkout-api 500 cents per 86400 s for each user; retry in 2 s.","type":"rate_limited","code":"egress_rate_limited","policy":"500;w=86400;u=cents;s=user","rule":"payments-checkout"}}`,
	} {
		a := limits[i].LimitedAnswer(ratelimit.BucketOutcome{Wait: 1500 * time.Millisecond})
		if string(a.Body) != want {
			t.Errorf("limit %d: body\n got %s\nwant %s", i, a.Body, want)
		}
	}
}
