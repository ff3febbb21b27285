package otelspan_test

import (
	"cmp"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tollgate-dev/tollgate/internal/app"
	"github.com/tollgate-dev/tollgate/internal/devtest"
	"github.com/tollgate-dev/tollgate/otelspan"
)

// These tests run `tollgate dev` in-process (the local data plane, the
// processor over real gRPC, the mock provider) with --otel-endpoint
// pointing at the collector's OTLP receiver.

const (
	callerTrace  = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerSpan   = "00f067aa0ba902b7"
	callerState  = "congo=t61rcWkgMzE"
	heliconeKey  = "sk-helicone-secret-1"
	providerKey  = "sk-provider-secret-2"
	promptSecret = "the prompt must stay in the log"
)

type call struct {
	path, body string
	headers    map[string]string
	status     int // 0: 200
}

func (c call) do(t *testing.T, d *devtest.Dev) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+d.Addrs["listen"]+c.path, strings.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("content-type", "application/json")
	for k, v := range c.headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := cmp.Or(c.status, 200); resp.StatusCode != want {
		t.Fatalf("%s: status %d, want %d: %s", c.path, resp.StatusCode, want, body)
	}
}

func TestExportsAGenAISpanPerCallToACollector(t *testing.T) {
	col := startCollector(t)
	d := devtest.StartDev(t, app.Run, "--otel-endpoint", col.url)
	ids := [4]string{uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()}
	secrets := map[string]string{"Helicone-Auth": "Bearer " + heliconeKey, "Authorization": "Bearer " + providerKey}
	with := func(h map[string]string) map[string]string {
		for k, v := range secrets {
			h[k] = v
		}
		return h
	}
	calls := []call{
		{"/v1/chat/completions", `{"model":"gpt-4o-mini","max_tokens":50,"temperature":0.2,"messages":[{"role":"user","content":"` + promptSecret + `"}]}`,
			with(map[string]string{"Helicone-Request-Id": ids[0], "Helicone-User-Id": "alice", "Helicone-Session-Id": "s-1",
				"Helicone-Property-Team": "search", "traceparent": "00-" + callerTrace + "-" + callerSpan + "-01", "tracestate": callerState}), 0},
		{"/v1/messages", `{"model":"claude-3-5-haiku","stream":true,"max_tokens":100,"messages":[{"role":"user","content":"a streamed hello"}]}`,
			with(map[string]string{"Helicone-Request-Id": ids[1]}), 0},
		{"/v1/chat/completions", `{"model":"gpt-4o","messages":[{"role":"user","content":"fail please"}]}`,
			with(map[string]string{"Helicone-Request-Id": ids[2], "x-mock-status": "500"}), 500},
		// The caller did not sample its trace: neither does Tollgate.
		{"/v1/chat/completions", `{"model":"gpt-4o","messages":[{"role":"user","content":"not sampled"}]}`,
			with(map[string]string{"Helicone-Request-Id": ids[3], "traceparent": "00-" + callerTrace + "-" + callerSpan + "-00"}), 0},
	}
	for _, c := range calls {
		c.do(t, d)
	}
	recs := d.Records(t) // stops tollgate: the exporter flushes to the collector first
	spans := col.spans(t)
	if len(spans) != 3 {
		t.Fatalf("collector got %d spans, want 3 (the unsampled call has none): %v", len(spans), keys(spans))
	}
	if _, ok := spans[ids[3]]; ok {
		t.Error("a call whose traceparent was not sampled was exported")
	}

	// The chat call continues the caller's trace, as a CLIENT span over
	// the call's own times.
	sp, rec := spans[ids[0]], recs[ids[0]]
	if sp.Name() != "chat gpt-4o-mini" || sp.Kind() != ptrace.SpanKindClient {
		t.Errorf("span %q kind %v, want \"chat gpt-4o-mini\" client", sp.Name(), sp.Kind())
	}
	if got := sp.TraceID().String(); got != callerTrace {
		t.Errorf("trace id %s, want the caller's %s", got, callerTrace)
	}
	if got := sp.ParentSpanID().String(); got != callerSpan {
		t.Errorf("parent span %s, want the caller's %s", got, callerSpan)
	}
	if got := sp.TraceState().AsRaw(); got != callerState {
		t.Errorf("tracestate %q, want %q", got, callerState)
	}
	if !sp.StartTimestamp().AsTime().Equal(rec.CreatedAt) {
		t.Errorf("start %v, want the record's %v", sp.StartTimestamp().AsTime(), rec.CreatedAt)
	}
	if got := sp.EndTimestamp().AsTime().Sub(sp.StartTimestamp().AsTime()); got != time.Duration(rec.LatencyMs)*time.Millisecond {
		t.Errorf("span lasts %v, the record's latency is %d ms", got, rec.LatencyMs)
	}
	if res, _ := sp.resource.Resource().Attributes().Get("service.name"); res.Str() != "tollgate" || sp.scope != otelspan.ScopeName {
		t.Errorf("service.name %q scope %q", res.Str(), sp.scope)
	}
	a := sp.attrs()
	want := map[string]any{
		"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.system": "openai",
		"gen_ai.request.model": "gpt-4o-mini", "gen_ai.response.model": rec.ResponseModel,
		"gen_ai.usage.input_tokens": rec.PromptTokens, "gen_ai.usage.output_tokens": rec.CompletionTokens,
		"gen_ai.request.max_tokens": int64(50), "gen_ai.request.temperature": 0.2, "gen_ai.request.stream": false,
		"tollgate.cost_usd": rec.CostUSD, "tollgate.cache": "miss", "tollgate.rate_limited": false,
		"tollgate.request_id": ids[0], "tollgate.tenant": rec.Tenant, "user.id": "alice", "session.id": "s-1",
		"gen_ai.conversation.id": "s-1", "tollgate.property.team": "search", "http.response.status_code": int64(200),
	}
	for k, v := range want {
		if a[k] != v {
			t.Errorf("%s = %#v, want %#v", k, a[k], v)
		}
	}
	if rec.PromptTokens == 0 || rec.CostUSD == 0 || rec.ResponseModel == "" {
		t.Errorf("the record has no usage to compare: %+v", rec)
	}
	if id, _ := a["gen_ai.response.id"].(string); id == "" {
		t.Error("no gen_ai.response.id")
	}
	if _, ok := a["error.type"]; ok {
		t.Error("a successful call carries error.type")
	}

	// A call without traceparent starts a trace of its own.
	sp, rec = spans[ids[1]], recs[ids[1]]
	if sp.TraceID().String() == callerTrace || !sp.ParentSpanID().IsEmpty() || sp.TraceID().IsEmpty() {
		t.Errorf("call without traceparent: trace %s parent %s, want a new root", sp.TraceID(), sp.ParentSpanID())
	}
	a = sp.attrs()
	if sp.Name() != "chat claude-3-5-haiku" || a["gen_ai.provider.name"] != "anthropic" || a["gen_ai.request.stream"] != true ||
		a["gen_ai.usage.output_tokens"] != rec.CompletionTokens {
		t.Errorf("anthropic stream span %q: %v", sp.Name(), a)
	}
	if rec.TTFTMs > 0 && a["gen_ai.response.time_to_first_chunk"] != float64(rec.TTFTMs)/1000 {
		t.Errorf("time_to_first_chunk %v, record ttft %d ms", a["gen_ai.response.time_to_first_chunk"], rec.TTFTMs)
	}

	// A failed call says how it failed.
	sp = spans[ids[2]]
	a = sp.attrs()
	if a["error.type"] != "500" || a["http.response.status_code"] != int64(500) || sp.Status().Code() != ptrace.StatusCodeError {
		t.Errorf("failed call: error.type %v, status %v, span status %v", a["error.type"], a["http.response.status_code"], sp.Status().Code())
	}

	// Never a body, a key or a Helicone header's secret.
	for id, sp := range spans {
		for k, v := range sp.attrs() {
			s := fmt.Sprint(v)
			if strings.Contains(s, heliconeKey) || strings.Contains(s, providerKey) || strings.Contains(s, promptSecret) ||
				strings.Contains(s, "streamed hello") || strings.Contains(strings.ToLower(k), "auth") {
				t.Errorf("span %s: %s = %q leaks a secret or a body", id, k, s)
			}
		}
	}
}

func TestSpansCarryCacheAndRateLimitOutcomes(t *testing.T) {
	col := startCollector(t)
	d := devtest.StartDev(t, app.Run, "--otel-endpoint", col.url)
	body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"cache me"}]}`
	seed := uuid.NewString()
	miss, hit, allowed, limited := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
	for i, id := range []string{miss, hit} {
		call{"/v1/chat/completions", body, map[string]string{"Helicone-Request-Id": id,
			"Helicone-Cache-Enabled": "true", "Helicone-Cache-Seed": seed}, 0}.do(t, d)
		if i == 0 { // the fill comes after the reply: the hit must not overtake it
			devtest.WaitForCounter(t, d.Addrs["http"], "tollgate_cache_fills_total", 1)
		}
	}
	for i, id := range []string{allowed, limited} {
		call{"/v1/chat/completions", body, map[string]string{"Helicone-Request-Id": id,
			"Helicone-RateLimit-Policy": "1;w=60;s=user", "Helicone-User-Id": "rl-" + seed}, 200 + 229*i}.do(t, d)
	}
	d.Records(t)
	spans := col.spans(t)
	for _, tc := range []struct {
		id, cache   string
		rateLimited bool
		errorType   any
	}{{miss, "miss", false, nil}, {hit, "hit", false, nil}, {allowed, "miss", false, nil}, {limited, "miss", true, "429"}} {
		a := spans[tc.id].attrs()
		if a["tollgate.cache"] != tc.cache || a["tollgate.rate_limited"] != tc.rateLimited || a["error.type"] != tc.errorType {
			t.Errorf("%s: cache %v rate_limited %v error.type %v; want %s %v %v", tc.id, a["tollgate.cache"], a["tollgate.rate_limited"], a["error.type"],
				tc.cache, tc.rateLimited, tc.errorType)
		}
	}
	if a := spans[hit].attrs(); a["tollgate.cost_usd"] != 0.0 || a["tollgate.cache_reference_id"] != miss {
		t.Errorf("cache hit: cost %v, reference %v; want 0 and %s", a["tollgate.cost_usd"], a["tollgate.cache_reference_id"], miss)
	}
}

func TestSampleRatioAppliesToNewTracesOnly(t *testing.T) {
	col := startCollector(t)
	d := devtest.StartDev(t, app.Run, "--otel-endpoint", col.url, "--otel-sample-ratio", "0")
	parented, orphan := uuid.NewString(), uuid.NewString()
	body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`
	call{"/v1/chat/completions", body, map[string]string{"Helicone-Request-Id": parented,
		"traceparent": "00-" + callerTrace + "-" + callerSpan + "-01"}, 0}.do(t, d)
	call{"/v1/chat/completions", body, map[string]string{"Helicone-Request-Id": orphan}, 0}.do(t, d)

	if n := devtest.Counter(t, d.Addrs["http"], "tollgate_otel_spans_total", `result="unsampled"`); n != 1 {
		t.Errorf("tollgate_otel_spans_total{result=\"unsampled\"} = %v, want 1: the unsampled call", n)
	}

	d.Records(t)
	spans := col.spans(t)
	if _, ok := spans[parented]; !ok || len(spans) != 1 {
		t.Fatalf("with ratio 0, spans %v; want only the call with a sampled parent", keys(spans))
	}
	if got := spans[parented].TraceID().String(); got != callerTrace {
		t.Errorf("trace id %s, want %s", got, callerTrace)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
