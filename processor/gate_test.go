package processor

import (
	"bytes"
	"context"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/gate"
	"github.com/tollgate-dev/tollgate/policies/ratelimit"
	"github.com/tollgate-dev/tollgate/provider"
	"github.com/tollgate-dev/tollgate/record"
)

// The processor's side of the gate (gate.go), with the gate faked: what it
// asks the gate, how it turns a decision into replies to Envoy, and what it
// hands over once the response is done. The gate's own behaviour (keys,
// buckets, the store) is tested in policies/gate.

// fakeGate answers Check with a scripted decision and keeps what the
// processor handed it. Process calls it from the test's goroutine.
type fakeGate struct {
	decision *gate.Decision
	stream   *fakeStream // to see how many replies were out when Complete ran

	checked   []gate.RequestInfo
	completed []completion
}

type completion struct {
	decision     *gate.Decision
	resp         gate.ResponseInfo
	repliesSoFar int
}

// Check and Complete keep copies: what they are handed points into the
// call, which the processor reuses once the stream ends (see Gate).
func (g *fakeGate) Check(_ context.Context, req gate.RequestInfo) (*gate.Decision, error) {
	hh := *req.Helicone
	req.Helicone = &hh
	cacheEnabled := req.Header("helicone-cache-enabled")
	req.Header = func(name string) string {
		if name == "helicone-cache-enabled" {
			return cacheEnabled
		}
		return ""
	}
	req.Body = bytes.Clone(req.Body)
	g.checked = append(g.checked, req)
	return g.decision, nil
}

func (g *fakeGate) Complete(_ context.Context, d *gate.Decision, resp gate.ResponseInfo) {
	resp.Body = bytes.Clone(resp.Body)
	g.completed = append(g.completed, completion{d, resp, len(g.stream.replies)})
}

// gateRun plays script through a server whose gate answers d.
func gateRun(t *testing.T, d *gate.Decision, script ...*extprocv3.ProcessingRequest) ([]*extprocv3.ProcessingResponse, *fakeGate, *record.Memory) {
	t.Helper()
	f := &fakeStream{ctx: context.Background(), script: script}
	g := &fakeGate{decision: d, stream: f}
	s, sink := newTestServer(t, func(o *Options) { o.Gate = g })
	if err := s.Process(f); err != nil {
		t.Fatal(err)
	}
	return f.replies, g, sink
}

// A chat call asking for the cache, as Envoy sends it.
var gatedRequest = []*extprocv3.ProcessingRequest{
	reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions", "content-type", "application/json",
		"helicone-auth", "Bearer sk-helicone-secret", "helicone-user-id", "alice",
		"helicone-cache-enabled", "true", "helicone-request-id", requestID),
	reqBody(chatBody),
}

// The reply to gatedRequest's headers: Helicone's headers never reach the
// provider.
var gatedRequestHeadersReply = requestHeadersReply(&extprocv3.CommonResponse{HeaderMutation: &extprocv3.HeaderMutation{
	RemoveHeaders: []string{"helicone-auth", "helicone-user-id", "helicone-cache-enabled", "helicone-request-id"}}})

func immediate(code typev3.StatusCode, body string, headers ...*corev3.HeaderValueOption) *extprocv3.ProcessingResponse {
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{
		ImmediateResponse: &extprocv3.ImmediateResponse{
			Status:  &typev3.HttpStatus{Code: code},
			Headers: &extprocv3.HeaderMutation{SetHeaders: headers},
			Body:    []byte(body),
			Details: "tollgate_gate",
		}}}
}

// TestGateAsked: the gate gets the request once its body is known, as the
// client sent it.
func TestGateAsked(t *testing.T) {
	_, g, _ := gateRun(t, &gate.Decision{}, gatedRequest...)
	if len(g.checked) != 1 {
		t.Fatalf("Check called %d times, want 1", len(g.checked))
	}
	got := g.checked[0]
	want := gate.RequestInfo{
		Tenant: "key-" + policies.HashKey("sk-helicone-secret")[:16],
		Method: "POST", URL: "/v1/chat/completions", Body: []byte(chatBody), UserID: "alice",
	}
	if d := cmp.Diff(want, got, cmpopts.IgnoreFields(gate.RequestInfo{}, "Header", "Helicone")); d != "" {
		t.Errorf("RequestInfo (-want +got):\n%s", d)
	}
	if got.Helicone == nil || got.Helicone.Cache.Enabled != "true" {
		t.Errorf("Helicone = %+v, want the parsed headers with Cache.Enabled true", got.Helicone)
	}
	if v := got.Header("helicone-cache-enabled"); v != "true" {
		t.Errorf("Header(helicone-cache-enabled) = %q, want the request's header", v)
	}
}

// TestGateAnswers: a decision with an answer is the reply to the body
// phase; the provider is never called and the gate gets nothing back.
func TestGateAnswers(t *testing.T) {
	const cached = `{"id":"chatcmpl-0","choices":[{"message":{"role":"assistant","content":"Hi"}}]}`
	const limited = `{"error":{"message":"rate limit exceeded","type":"rate_limit_error"}}`
	for _, tc := range []struct {
		name       string
		decision   *gate.Decision
		wantReply  *extprocv3.ProcessingResponse
		wantRecord func(*record.Record) bool
	}{{
		name: "cache hit",
		decision: &gate.Decision{
			Answer: &ratelimit.Answer{Status: 200, Body: []byte(cached),
				Headers: [][2]string{{"content-type", "application/json"}, {"helicone-cache", "HIT"}}},
			Hit: &gate.CachedCall{ReferenceID: "ref-1", Model: "gpt-4o-mini-2024-07-18",
				Usage: provider.Usage{PromptTokens: 12, CompletionTokens: 3}},
		},
		wantReply: immediate(200, cached,
			set("content-type", "application/json"), set("helicone-cache", "HIT"), set("helicone-id", requestID)),
		// The original call's tokens, at no cost.
		wantRecord: func(r *record.Record) bool {
			return r.Status == 200 && r.CacheHit && r.CacheReferenceID == "ref-1" && r.ResponseModel == "gpt-4o-mini-2024-07-18" &&
				r.PromptTokens == 12 && r.CompletionTokens == 3 && r.CostUSD == 0 && r.ResponseBody == cached && !r.RateLimited
		},
	}, {
		name: "rate limited",
		decision: &gate.Decision{
			Answer: &ratelimit.Answer{Status: 429, Body: []byte(limited),
				Headers: [][2]string{{"content-type", "application/json"}, {"helicone-ratelimit-limit", "10"},
					{"helicone-ratelimit-remaining", "0"}, {"helicone-ratelimit-policy", "10;w=60"}}},
			RateLimited: true,
		},
		wantReply: immediate(429, limited,
			set("content-type", "application/json"), set("helicone-ratelimit-limit", "10"),
			set("helicone-ratelimit-remaining", "0"), set("helicone-ratelimit-policy", "10;w=60"),
			set("helicone-id", requestID)),
		wantRecord: func(r *record.Record) bool {
			return r.Status == 429 && r.RateLimited && r.Error == "rate limited" && !r.CacheHit && r.PromptTokens == 0
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			replies, g, sink := gateRun(t, tc.decision, gatedRequest...)
			diff(t, []*extprocv3.ProcessingResponse{gatedRequestHeadersReply, tc.wantReply}, replies)
			recs := sink.Records()
			if len(recs) != 1 {
				t.Fatalf("%d records, want 1", len(recs))
			}
			if !tc.wantRecord(recs[0]) {
				t.Errorf("record %+v", recs[0])
			}
			if len(g.completed) != 0 {
				t.Errorf("Complete called for an answered call: %+v", g.completed)
			}
		})
	}
}

// TestGateMissForwarded: a miss goes to the provider without Helicone's
// headers, the decision's headers go on the response, and after the last
// reply the gate gets the response and its cost (for the cache and the
// cents budgets).
func TestGateMissForwarded(t *testing.T) {
	d := &gate.Decision{ResponseHeaders: [][2]string{{"helicone-cache", "MISS"}, {"helicone-ratelimit-remaining", "9"}}}
	script := append(gatedRequest[:len(gatedRequest):len(gatedRequest)],
		respHeaders(false, ":status", "200", "content-type", "application/json"),
		respBody(chatResponse, true),
	)
	replies, g, _ := gateRun(t, d, script...)
	diff(t, []*extprocv3.ProcessingResponse{
		gatedRequestHeadersReply,
		requestBodyReply(nil),
		responseHeadersReply(&extprocv3.CommonResponse{HeaderMutation: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{
			set("helicone-id", requestID), set("helicone-cache", "MISS"), set("helicone-ratelimit-remaining", "9")}}}),
		responseBodyReply(nil),
	}, replies)

	if len(g.completed) != 1 {
		t.Fatalf("Complete called %d times, want 1", len(g.completed))
	}
	c := g.completed[0]
	if c.decision != d {
		t.Error("Complete did not get Check's decision")
	}
	if c.repliesSoFar != 4 {
		t.Errorf("Complete ran with %d of the 4 replies sent: the client would wait for it", c.repliesSoFar)
	}
	want := gate.ResponseInfo{
		RequestID: requestID, Status: 200, ContentType: "application/json",
		Body: []byte(chatResponse),
		// A decision made outside package gate stores nothing
		// (CacheBodyLimit 0), so any body is past the limit.
		BodyTruncated: true,
		Model:         "gpt-4o-mini-2024-07-18",
		Usage:         provider.Usage{PromptTokens: 1200, CompletionTokens: 300, CachedTokens: 200, ReasoningTokens: 50},
		CostUSD:       chatCost, // the gate charges it to the cents budgets
		LatencyMs:     20,
	}
	if d := cmp.Diff(want, c.resp, approxCost); d != "" {
		t.Errorf("ResponseInfo (-want +got):\n%s", d)
	}
}

// Helicone-Model-Override names the price listed in the record, but cents
// limits and budgets are charged what the answering model costs: naming a
// cheaper or unpriced model must not stretch an operator's budget.
func TestModelOverrideDoesNotLowerTheCharge(t *testing.T) {
	for _, override := range []string{"my-finetune", "gpt-4o"} {
		f := &fakeStream{ctx: context.Background(), script: chatCall("helicone-model-override", override)}
		g := &fakeGate{decision: &gate.Decision{}, stream: f}
		s, sink := newTestServer(t, func(o *Options) { o.Gate = g })
		if err := s.Process(f); err != nil {
			t.Fatal(err)
		}
		if len(g.completed) != 1 {
			t.Fatalf("%s: Complete called %d times", override, len(g.completed))
		}
		if got := g.completed[0].resp.CostUSD; !cmp.Equal(got, chatCost, approxCost) {
			t.Errorf("override %s: the budgets are charged %v, want the answering gpt-4o-mini's %v", override, got, chatCost)
		}
		if rec := sink.Records()[0]; rec.ModelOverride != override || cmp.Equal(rec.CostUSD, chatCost, approxCost) {
			t.Errorf("override %s: the record's cost %v is not the override's price", override, rec.CostUSD)
		}
	}
}
