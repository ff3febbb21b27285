package processor

import (
	"context"
	"strings"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tollgate-dev/tollgate/helicone"
	"github.com/tollgate-dev/tollgate/policies/gate"
	"github.com/tollgate-dev/tollgate/policies/ratelimit"
	"github.com/tollgate-dev/tollgate/provider"
	"github.com/tollgate-dev/tollgate/record"
)

// Helicone drop-in: requests a Helicone user sends today, with values
// Helicone's worker tolerates, go through; the answer says what was
// tolerated in Helicone-Warning.

// setHeaderOf returns the value a reply's header mutation sets for key.
func setHeaderOf(resp *extprocv3.ProcessingResponse, key string) (string, bool) {
	var hm *extprocv3.HeaderMutation
	switch {
	case resp.GetImmediateResponse() != nil:
		hm = resp.GetImmediateResponse().GetHeaders()
	case resp.GetResponseHeaders() != nil:
		hm = resp.GetResponseHeaders().GetResponse().GetHeaderMutation()
	}
	for _, h := range hm.GetSetHeaders() {
		if h.GetHeader().GetKey() == key {
			return string(h.GetHeader().GetRawValue()), true
		}
	}
	return "", false
}

func chatCall(extra ...string) []*extprocv3.ProcessingRequest {
	kv := append([]string{":method", "POST", ":path", "/v1/chat/completions", "content-type", "application/json"}, extra...)
	return []*extprocv3.ProcessingRequest{
		reqHeaders(false, kv...),
		reqBody(chatBody),
		respHeaders(false, ":status", "200", "content-type", "application/json"),
		respBody(chatResponse, true),
	}
}

// TestToleratedHeadersGoThrough: each of these was a 400 before; Helicone
// takes them (worker/src/lib/models/HeliconeHeaders.ts).
func TestToleratedHeadersGoThrough(t *testing.T) {
	for _, tc := range []struct {
		name, header, value string
		warn                string // the header Helicone-Warning names; "" none
		check               func(t *testing.T, r *record.Record)
	}{
		// getValidUUID: not a UUID → crypto.randomUUID(), and the call goes on.
		{"request id not a UUID", "helicone-request-id", "trace-42", "Helicone-Request-Id", func(t *testing.T, r *record.Record) {
			if _, err := uuid.Parse(r.RequestID); err != nil || r.RequestID == "trace-42" {
				t.Errorf("request id %q: want a new UUID", r.RequestID)
			}
		}},
		// omitHeaders: only "true" omits; "yes" logs the body.
		{"omit request yes", "helicone-omit-request", "yes", "Helicone-Omit-Request", func(t *testing.T, r *record.Record) {
			if r.RequestBody != chatBody {
				t.Errorf("request body %q: Helicone logs it", r.RequestBody)
			}
		}},
		{"omit response maybe", "helicone-omit-response", "maybe", "Helicone-Omit-Response", func(t *testing.T, r *record.Record) {
			if r.ResponseBody != chatResponse {
				t.Errorf("response body %q: Helicone logs it", r.ResponseBody)
			}
		}},
		// getHeliconeProperties: every value kept whole.
		{"property of 5000 bytes", "helicone-property-context", strings.Repeat("c", 5000), "", func(t *testing.T, r *record.Record) {
			if len(r.Properties) != 1 || len(r.Properties[0].Value) != 5000 {
				t.Errorf("properties %d: want the 5000-byte value whole", len(r.Properties))
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, sink := newTestServer(t)
			replies, err := run(s, nil, chatCall(tc.header, tc.value)...)
			if err != nil {
				t.Fatal(err)
			}
			if len(replies) != 4 || replies[0].GetImmediateResponse() != nil || replies[1].GetImmediateResponse() != nil {
				t.Fatalf("the call did not reach the provider: %v", replies)
			}
			r := sink.Records()[0]
			if r.Status != 200 {
				t.Fatalf("status %d", r.Status)
			}
			tc.check(t, r)
			id, _ := setHeaderOf(replies[2], helicone.ResponseID)
			if id != r.RequestID {
				t.Errorf("Helicone-Id %q, record %q", id, r.RequestID)
			}
			w, ok := setHeaderOf(replies[2], helicone.WarningHeader)
			if tc.warn == "" {
				if ok || r.Warnings != "" {
					t.Errorf("warning %q / record %q for a value Helicone takes as is", w, r.Warnings)
				}
				return
			}
			if !strings.HasPrefix(w, tc.warn+" ") || r.Warnings != w {
				t.Errorf("Helicone-Warning %q, record warnings %q: want one naming %s", w, r.Warnings, tc.warn)
			}
			if n := testutil.ToFloat64(s.metrics.heliconeWarnings.WithLabelValues(tc.warn)); n != 1 {
				t.Errorf("tollgate_helicone_warnings_total{header=%q} = %v, want 1", tc.warn, n)
			}
		})
	}
}

// TestWarningOnTollgatesOwnReply: a call refused for another reason still
// says what it tolerated.
func TestWarningOnTollgatesOwnReply(t *testing.T) {
	s, sink := newTestServer(t)
	replies, _ := run(s, nil,
		reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions", "helicone-request-id", "trace-42"),
		reqBody(`[1]`))
	imm := replies[len(replies)-1]
	if imm.GetImmediateResponse().GetStatus().GetCode() != 400 {
		t.Fatalf("want the body's 400, got %v", imm)
	}
	if w, _ := setHeaderOf(imm, helicone.WarningHeader); !strings.HasPrefix(w, "Helicone-Request-Id ") {
		t.Errorf("Helicone-Warning %q on Tollgate's own reply", w)
	}
	if r := sink.Records()[0]; !strings.HasPrefix(r.Warnings, "Helicone-Request-Id ") {
		t.Errorf("record warnings %q", r.Warnings)
	}
}

// warningGate is a gate that, like the rate-limit and cache parsers, adds a
// warning while checking (the request-body phase).
type warningGate struct{ fakeGate }

func (g *warningGate) Check(ctx context.Context, req gate.RequestInfo) (*gate.Decision, error) {
	req.Helicone.Warnings.Add(helicone.RateLimitPolicy, `"10;w=1" is not a policy; no limit applies`)
	return g.fakeGate.Check(ctx, req)
}

// TestWarningFromTheBodyPhase: a warning added by a policy after the
// request headers were read reaches the provider's response, a cache hit
// and a 429 alike.
func TestWarningFromTheBodyPhase(t *testing.T) {
	const want = `Helicone-RateLimit-Policy "10;w=1" is not a policy; no limit applies`
	for _, tc := range []struct {
		name string
		d    *gate.Decision
	}{
		{"provider's response", &gate.Decision{}},
		{"cache hit", &gate.Decision{
			Answer: &ratelimit.Answer{Status: 200, Body: []byte(`{}`), Headers: [][2]string{{"helicone-cache", "HIT"}}},
			Hit:    &gate.CachedCall{ReferenceID: "ref-1", Usage: provider.Usage{PromptTokens: 1}},
		}},
		{"429", &gate.Decision{Answer: &ratelimit.Answer{Status: 429, Body: []byte(`{}`)}, RateLimited: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeStream{ctx: context.Background(), script: chatCall("helicone-ratelimit-policy", "10;w=1")}
			g := &warningGate{fakeGate{decision: tc.d, stream: f}}
			s, sink := newTestServer(t, func(o *Options) { o.Gate = g })
			if err := s.Process(f); err != nil {
				t.Fatal(err)
			}
			answer := f.replies[1] // the gate's answer to the body phase
			if tc.d.Answer == nil {
				answer = f.replies[2] // the provider's response headers
			}
			if w, _ := setHeaderOf(answer, helicone.WarningHeader); w != want {
				t.Errorf("Helicone-Warning %q, want %q", w, want)
			}
			if r := sink.Records()[0]; r.Warnings != want {
				t.Errorf("record warnings %q", r.Warnings)
			}
		})
	}
}

// TestNoWarningNoHeader: a clean call's replies are as they always were.
func TestNoWarningNoHeader(t *testing.T) {
	s, sink := newTestServer(t)
	replies, _ := run(s, nil, chatCall("helicone-request-id", requestID)...)
	if w, ok := setHeaderOf(replies[2], helicone.WarningHeader); ok {
		t.Errorf("Helicone-Warning %q on a clean call", w)
	}
	if r := sink.Records()[0]; r.Warnings != "" {
		t.Errorf("record warnings %q", r.Warnings)
	}
}

// TestModelOverride: Helicone-Model-Override prices the call and is
// logged; the provider gets the body as sent. Helicone: the logged model
// is calculateModel(request, response, override), the override first
// (valhalla/jawn/src/utils/modelMapper.ts), the cost is modelCost of that
// model (valhalla/jawn/src/lib/handlers/ResponseBodyHandler.ts), and the
// worker only passes the header on to the log (DBLoggable.ts,
// modelOverride), never into the request.
func TestModelOverride(t *testing.T) {
	s, sink := newTestServer(t)
	replies, err := run(s, nil, chatCall("helicone-model-override", "gpt-4o")...)
	if err != nil {
		t.Fatal(err)
	}
	if replies[1].GetRequestBody().GetResponse().GetBodyMutation() != nil {
		t.Errorf("the provider's body was changed: %v", replies[1])
	}
	cr := replies[0].GetRequestHeaders().GetResponse()
	if !removed(cr, "helicone-model-override") {
		t.Error("Helicone-Model-Override reached the provider")
	}
	r := sink.Records()[0]
	// chatResponse's usage at gpt-4o's price (provider/prices.yaml: input
	// 2.50, cached input 1.25, output 10.00 USD per million tokens):
	// 1000 × 2.50 + 200 × 1.25 + 300 × 10.00 = 5750 → 0.00575 USD.
	want := struct {
		Model, ResponseModel, ModelOverride string
		CostUSD                             float64
	}{"gpt-4o-mini", "gpt-4o-mini-2024-07-18", "gpt-4o", 0.00575}
	got := want
	got.Model, got.ResponseModel, got.ModelOverride, got.CostUSD = r.Model, r.ResponseModel, r.ModelOverride, r.CostUSD
	if d := cmp.Diff(want, got, approxCost); d != "" {
		t.Errorf("record (-want +got):\n%s", d)
	}
}

// An override with no price costs 0 (counted as an unknown model), as
// Helicone's modelCost of an unknown model; the answering model's price
// is not used in its place.
func TestModelOverrideUnpriced(t *testing.T) {
	s, sink := newTestServer(t)
	if _, err := run(s, nil, chatCall("helicone-model-override", "my-finetune")...); err != nil {
		t.Fatal(err)
	}
	if r := sink.Records()[0]; r.CostUSD != 0 || r.ModelOverride != "my-finetune" {
		t.Errorf("cost %v, override %q", r.CostUSD, r.ModelOverride)
	}
	if n := testutil.ToFloat64(s.metrics.unknownModel.WithLabelValues("openai")); n != 1 {
		t.Errorf("unknown model counted %v times", n)
	}
}
