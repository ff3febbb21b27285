package processor

import (
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/policies"
)

func mustPolicy(t *testing.T, doc string) func() *policies.EgressPolicy {
	t.Helper()
	p, err := policies.ParseEgressPolicy("policy.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return func() *policies.EgressPolicy { return p }
}

const teamPolicy = `
rules:
- name: search
  match: {namespaces: [search]}
  allow: {models: ["gpt-4o-mini"]}
`

func TestWorkloadHeadersAreTrustedOnlyWhenConfigured(t *testing.T) {
	for _, trust := range []bool{false, true} {
		s, sink := newTestServer(t, func(o *Options) {
			o.Egress = mustPolicy(t, teamPolicy)
			o.Workload = policies.Workload{Namespace: "sidecar-ns", Name: "app"}
			o.TrustWorkloadHeaders = trust
		})
		replies, _ := run(s, nil,
			reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions",
				"x-tollgate-workload-namespace", "search", "x-tollgate-workload-service-account", "indexer", "x-tollgate-workload-name", "crawler"),
			reqBody(`{"model":"gpt-4o"}`))
		rec := sink.Records()[0]
		cr := replies[0].GetRequestHeaders().GetResponse()
		if !removed(cr, "x-tollgate-workload-namespace") || !removed(cr, "x-tollgate-workload-name") {
			t.Errorf("trust=%v: identity headers reach the provider", trust)
		}
		if !trust {
			if rec.WorkloadNamespace != "sidecar-ns" || rec.PolicyRule != "" || rec.Status == 403 {
				t.Errorf("untrusted headers used: %+v", rec)
			}
			continue
		}
		if rec.WorkloadNamespace != "search" || rec.WorkloadServiceAccount != "indexer" || rec.WorkloadName != "crawler" || rec.PolicyRule != "search" {
			t.Errorf("trusted identity not used: %q %q %q rule %q", rec.WorkloadNamespace, rec.WorkloadServiceAccount, rec.WorkloadName, rec.PolicyRule)
		}
		if ir := replies[1].GetImmediateResponse(); ir == nil || ir.GetStatus().GetCode() != 403 || !strings.Contains(string(ir.GetBody()), `\"gpt-4o\"`) {
			t.Errorf("model outside the rule: %v", replies[1])
		}
		if !strings.HasPrefix(rec.PolicyDecision, "deny: egress policy") {
			t.Errorf("decision %q", rec.PolicyDecision)
		}
	}
}

func TestNoPolicyChangesNothing(t *testing.T) {
	s, sink := newTestServer(t, func(o *Options) { o.Egress = func() *policies.EgressPolicy { return nil } })
	_, _ = run(s, nil, reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions"), reqBody(chatBody),
		respHeaders(false, ":status", "200"), respBody(chatResponse, true))
	if r := sink.Records()[0]; r.PolicyDecision != "" || r.PolicyRule != "" || r.RequestBody != chatBody || r.ResponseBody != chatResponse {
		t.Errorf("record %+v", r)
	}
}
