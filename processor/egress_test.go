package processor

import (
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/policies/egress"
)

func mustPolicy(t *testing.T, doc string) func() *egress.Policy {
	t.Helper()
	p, err := egress.Parse("policy.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return func() *egress.Policy { return p }
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
			o.Workload = egress.Workload{Namespace: "sidecar-ns", Name: "app"}
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
	s, sink := newTestServer(t, func(o *Options) { o.Egress = func() *egress.Policy { return nil } })
	_, _ = run(s, nil, reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions"), reqBody(chatBody),
		respHeaders(false, ":status", "200"), respBody(chatResponse, true))
	if r := sink.Records()[0]; r.PolicyDecision != "" || r.PolicyRule != "" || r.RequestBody != chatBody || r.ResponseBody != chatResponse {
		t.Errorf("record %+v", r)
	}
}

const openAIOnly = `
defaults:
  allow: {providers: [openai], models: ["gpt-4o-mini", "meta-llama/llama-3.1-8b*"], targetOrigins: []}
`

// Ways around the allow lists that must not work.
func TestEgressCannotBeBypassed(t *testing.T) {
	tests := []struct {
		name    string
		headers []string
		path    string
		body    string
		want    string
	}{
		{"fallback target-url", []string{"helicone-fallbacks", `[{"target-url": "https://api.together.xyz"}]`},
			"/v1/chat/completions", `{"model":"gpt-4o-mini"}`, `origin \"https://api.together.xyz\"`},
		{"escaped bodyKeyOverride model", []string{"helicone-fallback", `[{"bodyKeyOverride": {"model": "meta-llama\/Llama-3.1-405B"}}]`},
			"/v1/chat/completions", `{"model":"gpt-4o-mini"}`, "Llama-3.1-405B"},
		{"non-string bodyKeyOverride model", []string{"helicone-fallback", `[{"bodyKeyOverride": {"model": ["gpt-4o"]}}]`},
			"/v1/chat/completions", `{"model":"gpt-4o-mini"}`, "not allow model"},
		{"anthropic path outside the known ones", nil, "/v1/messages/batches", `{"requests":[]}`, `provider \"anthropic\"`},
		{"unparsed endpoint names its model", nil, "/v1/images/generations", `{"model":"dall-e-3","prompt":"x"}`, `model \"dall-e-3\"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, sink := newTestServer(t, func(o *Options) { o.Egress = mustPolicy(t, openAIOnly) })
			kv := append([]string{":method", "POST", ":path", tt.path}, tt.headers...)
			replies, _ := run(s, nil, reqHeaders(false, kv...), reqBody(tt.body))
			ir := replies[0].GetImmediateResponse() // at the headers, or else at the body
			if ir == nil {
				ir = replies[1].GetImmediateResponse()
			}
			if ir == nil || ir.GetStatus().GetCode() != 403 || !strings.Contains(string(ir.GetBody()), tt.want) {
				t.Fatalf("replies %v, want a 403 naming %s", replies, tt.want)
			}
			if r := sink.Records()[0]; !strings.HasPrefix(r.PolicyDecision, "deny: ") {
				t.Errorf("decision %q", r.PolicyDecision)
			}
		})
	}
}

func TestPromptInputsFollowRequestLogging(t *testing.T) {
	redactPolicy := "defaults:\n  logging: {requestBody: redact, redact: [\"\\\\d{16}\"]}\n"
	for _, tc := range []struct {
		name   string
		policy string
		omit   bool
		want   string // the logged prompt.company; "-" = not logged
	}{
		{"kept", "", false, "Acme 4111111111111111"},
		{"omitted by header", "", true, "-"},
		{"redacted by policy", redactPolicy, false, "Acme [REDACTED]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, sink := newTestServer(t, func(o *Options) {
				o.Prompts = shelf()
				if tc.policy != "" {
					o.Egress = mustPolicy(t, tc.policy)
				}
			})
			h := []string{":method", "POST", ":path", "/v1/chat/completions", "helicone-prompt-id", "support",
				"helicone-prompt-version", "1", "helicone-prompt-variables", `{"company": "Acme 4111111111111111"}`}
			if tc.omit {
				h = append(h, "helicone-omit-request", "true")
			}
			_, _ = run(s, nil, reqHeaders(false, h...), reqBody(`{}`))
			got := "-"
			for _, p := range sink.Records()[0].Properties {
				if p.Key == "prompt.company" {
					got = p.Value
				}
			}
			if got != tc.want {
				t.Errorf("logged %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPromptWithoutABodyIsAClearError(t *testing.T) {
	s, _ := newTestServer(t, func(o *Options) { o.Prompts = shelf() })
	replies, _ := run(s, nil, reqHeaders(true, ":method", "POST", ":path", "/v1/chat/completions", "helicone-prompt-id", "support"))
	if ir := replies[0].GetImmediateResponse(); ir == nil || ir.GetStatus().GetCode() != 400 || !strings.Contains(string(ir.GetBody()), "needs a request body") {
		t.Errorf("reply %v", replies[0])
	}
}

func TestClientCannotSendALinkHeader(t *testing.T) {
	s, _ := newTestServer(t)
	replies, _ := run(s, nil, reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions", clientLinkHeader, "forged"), reqBody(chatBody))
	if !removed(replies[0].GetRequestHeaders().GetResponse(), clientLinkHeader) {
		t.Error("a client's x-tollgate-link goes on to the upstream filter")
	}
}
