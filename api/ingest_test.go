package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tollgate-dev/tollgate/policies"
	tollgatev1 "github.com/tollgate-dev/tollgate/proto/tollgate/v1"
	"github.com/tollgate-dev/tollgate/record"
	"github.com/tollgate-dev/tollgate/storage/chstore"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func newIngest(t *testing.T) (http.Handler, *record.Memory) {
	t.Helper()
	mem := record.NewMemory()
	return New(Options{Sink: mem, Now: fixedClock(t0)}), mem
}

// manualBody builds a manual-logger payload the way Helicone's
// HeliconeManualLogger.sendLog does.
func manualBody(req, respJSON, textBody string, provider string, startMs, endMs int64, ttft *int64) string {
	m := map[string]any{
		"providerRequest": map[string]any{"url": "custom-model-nopath", "json": json.RawMessage(req), "meta": map[string]string{}},
		"providerResponse": map[string]any{
			"headers": map[string]string{}, "status": 200, "json": json.RawMessage(respJSON),
		},
		"timing": map[string]any{
			"startTime": map[string]int64{"seconds": startMs / 1000, "milliseconds": startMs % 1000},
			"endTime":   map[string]int64{"seconds": endMs / 1000, "milliseconds": endMs % 1000},
		},
	}
	if textBody != "" {
		m["providerResponse"].(map[string]any)["textBody"] = textBody
	}
	if ttft != nil {
		m["timing"].(map[string]any)["timeToFirstToken"] = *ttft
	}
	if provider != "" {
		m["provider"] = provider
	}
	b, _ := json.Marshal(m)
	return string(b)
}

const (
	openAIReq  = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"user":"body-user"}`
	openAIResp = `{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"Hello"},"finish_reason":"stop"}],"usage":{"prompt_tokens":100,"completion_tokens":20,"total_tokens":120,"prompt_tokens_details":{"cached_tokens":40}}}`
	// (60 × 0.15 + 40 × 0.075 + 20 × 0.60) / 1e6
	openAICost = 24e-6

	anthropicReq  = `{"model":"claude-sonnet-4-5","max_tokens":100,"messages":[{"role":"user","content":"hi"}],"metadata":{"user_id":"meta-user"}}`
	anthropicResp = `{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[{"type":"text","text":"Hello"}],"usage":{"input_tokens":50,"cache_read_input_tokens":100,"cache_creation_input_tokens":10,"output_tokens":30}}`
	// (50 × 3 + 100 × 0.30 + 10 × 3.75 + 30 × 15) / 1e6
	anthropicCost = 667.5e-6

	openAIStream = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n" +
		"data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-mini\",\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":5,\"total_tokens\":15}}\n\n" +
		"data: [DONE]\n\n"
	openAIStreamCost = 4.5e-6 // (10 × 0.15 + 5 × 0.60) / 1e6

	anthropicStream = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"type\":\"message\",\"model\":\"claude-sonnet-4-5\",\"usage\":{\"input_tokens\":20,\"output_tokens\":1}}}\n\n" +
		"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}\n\n" +
		"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":12}}\n\n" +
		"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
	anthropicStreamCost = 240e-6 // (20 × 3 + 12 × 15) / 1e6
)

func TestManualLoggerFormats(t *testing.T) {
	start := t0.Add(5*time.Second + 250*time.Millisecond).UnixMilli()
	ttft := int64(120)
	const reqID = "0193a5c4-1111-7aaa-8bbb-000000000001"
	cases := []struct {
		name, path, body string
		headers          map[string]string
		check            func(t *testing.T, r *record.Record)
	}{
		{"oai json", "/oai/v1/log", manualBody(openAIReq, openAIResp, "", "", start, start+1500, nil),
			map[string]string{"Helicone-Property-Env": "prod", "Helicone-Session-Id": "s-1", "Helicone-Request-Id": reqID},
			func(t *testing.T, r *record.Record) {
				want := record.Record{Provider: "openai", Model: "gpt-4o-mini", ResponseModel: "gpt-4o-mini-2024-07-18",
					PromptTokens: 100, CompletionTokens: 20, CachedTokens: 40, LatencyMs: 1500, Status: 200,
					UserID: "body-user", SessionID: "s-1", RequestID: reqID}
				same(t, r, want, openAICost)
				if len(r.Properties) != 1 || r.Properties[0] != (record.Property{Key: "env", Value: "prod"}) {
					t.Errorf("properties %+v", r.Properties)
				}
				if !r.CreatedAt.Equal(time.UnixMilli(start)) {
					t.Errorf("created_at %v, want %v", r.CreatedAt, time.UnixMilli(start).UTC())
				}
				if r.RequestBody != openAIReq || r.ResponseBody != openAIResp {
					t.Errorf("bodies %q / %q", r.RequestBody, r.ResponseBody)
				}
			}},
		{"anthropic json", "/anthropic/v1/log", manualBody(anthropicReq, anthropicResp, "", "", start, start+800, nil),
			map[string]string{"Helicone-User-Id": "hdr-user", "Helicone-Omit-Response": "true"},
			func(t *testing.T, r *record.Record) {
				same(t, r, record.Record{Provider: "anthropic", Model: "claude-sonnet-4-5", ResponseModel: "claude-sonnet-4-5-20250929",
					PromptTokens: 160, CompletionTokens: 30, CachedTokens: 100, CacheWriteTokens: 10, LatencyMs: 800, Status: 200,
					UserID: "hdr-user"}, anthropicCost)
				if r.ResponseBody != "" || r.RequestBody == "" {
					t.Errorf("omit-response: bodies %q / %q", r.RequestBody, r.ResponseBody)
				}
			}},
		{"custom provider field, streamed textBody", "/custom/v1/log",
			manualBody(`{"model":"gpt-4o-mini","stream":true,"messages":[]}`, `{}`, openAIStream, "OPENAI", start, start+2000, &ttft),
			nil,
			func(t *testing.T, r *record.Record) {
				same(t, r, record.Record{Provider: "openai", Model: "gpt-4o-mini", ResponseModel: "gpt-4o-mini", Stream: true,
					PromptTokens: 10, CompletionTokens: 5, LatencyMs: 2000, TTFTMs: 120, Status: 200}, openAIStreamCost)
				if r.ResponseBody != openAIStream {
					t.Errorf("response body %q", r.ResponseBody)
				}
			}},
		{"anthropic streamed textBody", "/anthropic/v1/log",
			manualBody(`{"model":"claude-sonnet-4-5","stream":true,"messages":[]}`, `{}`, anthropicStream, "", start, start+900, &ttft),
			nil,
			func(t *testing.T, r *record.Record) {
				same(t, r, record.Record{Provider: "anthropic", Model: "claude-sonnet-4-5", ResponseModel: "claude-sonnet-4-5", Stream: true,
					PromptTokens: 20, CompletionTokens: 12, LatencyMs: 900, TTFTMs: 120, Status: 200}, anthropicStreamCost)
			}},
		{"custom without provider, JSON textBody (logSingleRequest)", "/custom/v1/log",
			manualBody(openAIReq, `{}`, openAIResp, "", start, start+10, nil), nil,
			func(t *testing.T, r *record.Record) {
				same(t, r, record.Record{Provider: "openai", Model: "gpt-4o-mini", ResponseModel: "gpt-4o-mini-2024-07-18",
					PromptTokens: 100, CompletionTokens: 20, CachedTokens: 40, LatencyMs: 10, Status: 200, UserID: "body-user"}, openAICost)
			}},
		{"custom model without usage", "/custom/v1/log",
			manualBody(`{"model":"my-local-model","prompt":"x"}`, `{"text":"y"}`, "", "", start, start+10, nil), nil,
			func(t *testing.T, r *record.Record) {
				same(t, r, record.Record{Provider: "openai", Model: "my-local-model", LatencyMs: 10, Status: 200}, 0)
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, mem := newIngest(t)
			hdr := map[string]string{"Authorization": "Bearer sk-helicone-abc", "Content-Type": "application/json"}
			for k, v := range c.headers {
				hdr[k] = v
			}
			var out struct{ ID string }
			rr := do(t, h, "POST", c.path, local, hdr, c.body, &out)
			if rr.Code != 200 {
				t.Fatalf("status %d: %s", rr.Code, rr.Body)
			}
			recs := mem.Records()
			if len(recs) != 1 {
				t.Fatalf("%d records", len(recs))
			}
			r := recs[0]
			if out.ID == "" || out.ID != r.RequestID {
				t.Errorf("answered id %q, record id %q", out.ID, r.RequestID)
			}
			if r.Tenant != policies.DefaultTenant && !strings.HasPrefix(r.Tenant, "key-") {
				t.Errorf("tenant %q", r.Tenant)
			}
			c.check(t, r)
		})
	}
}

// same compares the fields the manual logger sets.
func same(t *testing.T, got *record.Record, want record.Record, cost float64) {
	t.Helper()
	type view struct {
		Provider, Model, ResponseModel, UserID, SessionID string
		Stream                                            bool
		Status                                            int32
		P, C, Cached, Write, Lat, TTFT                    int64
	}
	g := view{got.Provider, got.Model, got.ResponseModel, got.UserID, got.SessionID, got.Stream, got.Status,
		got.PromptTokens, got.CompletionTokens, got.CachedTokens, got.CacheWriteTokens, got.LatencyMs, got.TTFTMs}
	w := view{want.Provider, want.Model, want.ResponseModel, want.UserID, want.SessionID, want.Stream, want.Status,
		want.PromptTokens, want.CompletionTokens, want.CachedTokens, want.CacheWriteTokens, want.LatencyMs, want.TTFTMs}
	if g != w {
		t.Errorf("record\n got %+v\nwant %+v", g, w)
	}
	if !near(got.CostUSD, cost) {
		t.Errorf("cost %.12f, want %.12f", got.CostUSD, cost)
	}
	if want.RequestID != "" && got.RequestID != want.RequestID {
		t.Errorf("request id %q, want %q", got.RequestID, want.RequestID)
	}
}

func TestManualLoggerTenant(t *testing.T) {
	auth, err := policies.NewAuth([]policies.APIKey{{SHA256: policies.HashKey("sk-acme"), Tenant: "acme"}}, true)
	if err != nil {
		t.Fatal(err)
	}
	mem := record.NewMemory()
	h := New(Options{Sink: mem, Auth: auth, APIKey: "admin-key", Now: fixedClock(t0)})
	body := manualBody(openAIReq, openAIResp, "", "", t0.UnixMilli(), t0.UnixMilli()+5, nil)
	remote := "10.1.2.3:5000"
	// A Helicone key known to the tenant auth policy authenticates the call
	// (Helicone's helpers send it as Authorization) and names the tenant.
	if rr := do(t, h, "POST", "/oai/v1/log", remote, map[string]string{"Authorization": "Bearer sk-acme"}, body, nil); rr.Code != 200 {
		t.Fatalf("helicone key: %d %s", rr.Code, rr.Body)
	}
	// The API key with the tenant in Helicone-Auth.
	if rr := do(t, h, "POST", "/oai/v1/log", remote, map[string]string{"Authorization": "Bearer admin-key", "Helicone-Auth": "Bearer sk-acme"}, body, nil); rr.Code != 200 {
		t.Fatalf("api key + helicone-auth: %d %s", rr.Code, rr.Body)
	}
	if rr := do(t, h, "POST", "/oai/v1/log", remote, map[string]string{"Authorization": "Bearer sk-unknown"}, body, nil); rr.Code != 401 {
		t.Fatalf("unknown key: %d %s", rr.Code, rr.Body)
	}
	if rr := do(t, h, "POST", "/oai/v1/log", remote, nil, body, nil); rr.Code != 401 {
		t.Fatalf("no key: %d %s", rr.Code, rr.Body)
	}
	recs := mem.Records()
	if len(recs) != 2 || recs[0].Tenant != "acme" || recs[1].Tenant != "acme" {
		t.Fatalf("records %+v", recs)
	}
}

func TestManualLoggerBadInput(t *testing.T) {
	h, mem := newIngest(t)
	for _, c := range []struct{ body, header, want string }{
		{`not json`, "", "body must be"},
		{`{"providerRequest":{"json":[1]}}`, "", "providerRequest.json"},
		{`{"providerResponse":{"status":"ok"}}`, "", "providerResponse.status"},
		{`{"timing":{"startTime":{"seconds":-5,"milliseconds":0}}}`, "", "timing.startTime"},
		{`{"timing":{"startTime":{"seconds":10,"milliseconds":0},"endTime":{"seconds":9,"milliseconds":0}}}`, "", "timing.endTime"},
	} {
		hdr := map[string]string{}
		if c.header != "" {
			hdr["Helicone-Request-Id"] = c.header
		}
		rr := do(t, h, "POST", "/custom/v1/log", local, hdr, c.body, nil)
		if rr.Code != 400 || !strings.Contains(errorMessage(t, rr), c.want) {
			t.Errorf("%s: %d %s, want 400 naming %s", c.body, rr.Code, rr.Body, c.want)
		}
	}
	if n := len(mem.Records()); n != 0 {
		t.Errorf("%d records written for bad input", n)
	}
}

func TestLogRequestOwnFormat(t *testing.T) {
	h, mem := newIngest(t)
	const id = "0193a5c4-2222-7aaa-8bbb-000000000002"
	body := `{"record":{"requestId":"` + id + `","createdAt":"2026-03-01T09:00:00.500Z","userId":"u9",
	 "properties":[{"key":"Env","value":"prod"},{"key":"app","value":"x"}],"provider":"openai","model":"gpt-4o-mini",
	 "status":200,"promptTokens":"100","completionTokens":"20","cachedTokens":"40","latencyMs":"321",
	 "attempts":2,"retryPolicy":"num=3 factor=2 min_timeout_ms=1000 max_timeout_ms=10000",
	 "workloadNamespace":"team-a","workloadServiceAccount":"chatbot","workloadName":"chatbot-7d9f",
	 "policyRule":"openai-only","policyDecision":"allow",
	 "requestBody":"{}","responseBody":"{}"}}`
	var out struct{ ID string }
	rr := do(t, h, "POST", "/v1/log/request", local, map[string]string{"Helicone-Auth": "Bearer k1"}, body, &out)
	if rr.Code != 200 || out.ID != id {
		t.Fatalf("%d %s", rr.Code, rr.Body)
	}
	r := mem.Records()[0]
	same(t, r, record.Record{Provider: "openai", Model: "gpt-4o-mini", UserID: "u9", Status: 200,
		PromptTokens: 100, CompletionTokens: 20, CachedTokens: 40, LatencyMs: 321, RequestID: id}, openAICost)
	if !r.CreatedAt.Equal(time.Date(2026, 3, 1, 9, 0, 0, 500e6, time.UTC)) || !strings.HasPrefix(r.Tenant, "key-") {
		t.Errorf("created_at %v tenant %q", r.CreatedAt, r.Tenant)
	}
	if len(r.Properties) != 2 || r.Properties[0].Key != "app" || r.Properties[1] != (record.Property{Key: "env", Value: "prod"}) {
		t.Errorf("properties %+v", r.Properties)
	}
	if r.Attempts != 2 || r.RetryPolicy != "num=3 factor=2 min_timeout_ms=1000 max_timeout_ms=10000" ||
		r.WorkloadNamespace != "team-a" || r.WorkloadServiceAccount != "chatbot" || r.WorkloadName != "chatbot-7d9f" ||
		r.PolicyRule != "openai-only" || r.PolicyDecision != "allow" {
		t.Errorf("retry, workload and policy fields: %+v", r)
	}

	// A given cost is kept; no request id gets one; snake_case names work too.
	rr = do(t, h, "POST", "/v1/log/request", local, nil, `{"record":{"model":"gpt-4o-mini","provider":"openai","prompt_tokens":"5","cost_usd":1.5,
	 "workload_namespace":"ns","policy_decision":"deny: not allowed"}}`, &out)
	if rr.Code != 200 || out.ID == "" {
		t.Fatalf("%d %s", rr.Code, rr.Body)
	}
	if r := mem.Records()[1]; r.CostUSD != 1.5 || r.RequestID != out.ID || r.Tenant != policies.DefaultTenant || !r.CreatedAt.Equal(t0) ||
		r.WorkloadNamespace != "ns" || r.PolicyDecision != "deny: not allowed" || r.Attempts != 0 {
		t.Errorf("record %+v", r)
	}

	for _, c := range []struct{ body, want string }{
		{`{"record":{"requestId":"x"}}`, "record.request_id"},
		{`{}`, "record"},
		{`{"record":{"latencyMs":"-1"}}`, "record.latency_ms"},
		{`{"record":{"attempts":-1}}`, "record.attempts"},
		{`{"record":{"nope":1}}`, "tollgate.v1.LogRequest"},
	} {
		rr := do(t, h, "POST", "/v1/log/request", local, nil, c.body, nil)
		if rr.Code != 400 || !strings.Contains(errorMessage(t, rr), c.want) {
			t.Errorf("%s: %d %s, want 400 naming %s", c.body, rr.Code, rr.Body, c.want)
		}
	}
}

// TestLogRecordCoversRecord: every LogRecord field is a record.Record
// field of the same (column) name, and ingest maps every one of them.
func TestLogRecordCoversRecord(t *testing.T) {
	jsonNames := map[string]bool{}
	typ := reflect.TypeFor[record.Record]()
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		jsonNames[name] = true
	}
	fields := (&tollgatev1.LogRecord{}).ProtoReflect().Descriptor().Fields()
	for i := range fields.Len() {
		if name := string(fields.Get(i).Name()); !jsonNames[name] {
			t.Errorf("LogRecord.%s is no record.Record field", name)
		}
	}
	if fields.Len() != len(jsonNames) {
		t.Errorf("LogRecord has %d fields, record.Record %d", fields.Len(), len(jsonNames))
	}

	p := &tollgatev1.LogRecord{
		RequestId: "0193a5c4-4444-7aaa-8bbb-000000000004", CreatedAt: timestamppb.New(t0), Tenant: "acme",
		UserId: "u", SessionId: "s", SessionPath: "/p", SessionName: "n", RequestName: "r",
		Properties: []*tollgatev1.Property{{Key: "k", Value: "v"}},
		Provider:   "openai", Model: "gpt-4o-mini", ResponseModel: "gpt-4o-mini-2024-07-18", Method: "POST",
		Path: "/v1/chat/completions", TargetUrl: "https://example.test", Status: 200, Stream: true,
		PromptTokens: 10, CompletionTokens: 5, CachedTokens: 2, CacheWriteTokens: 1, ReasoningTokens: 1, CostUsd: 1,
		LatencyMs: 100, TtftMs: 10, CacheHit: true, CacheReferenceId: "ref", RateLimited: true,
		PromptId: "pr", PromptVersion: 2, FallbackIndex: 1,
		Attempts: 3, RetryPolicy: "num=3", WorkloadNamespace: "ns", WorkloadServiceAccount: "sa", WorkloadName: "w",
		PolicyRule: "rule", PolicyDecision: "allow",
		RequestBody: "{}", ResponseBody: "{}", Error: "e",
		ModelOverride: "gpt-4o", Warnings: "Helicone-Request-Id \"x\" is not a UUID", ProxyKeyId: "contractor-alice",
		UsageSource: "estimated", CacheSimilarity: 0.97,
	}
	rec, field, err := (&server{o: Options{Now: fixedClock(t0)}}).fromProto(p)
	if err != nil {
		t.Fatalf("%s: %v", field, err)
	}
	v := reflect.ValueOf(rec).Elem()
	for i := range typ.NumField() {
		if v.Field(i).IsZero() {
			t.Errorf("ingest leaves %s zero", typ.Field(i).Name)
		}
	}
}

func TestFeedbackValidation(t *testing.T) {
	var got []chstore.Feedback
	h := New(Options{Now: fixedClock(t0), Query: knownRequests{}, Feedback: func(_ context.Context, fb chstore.Feedback) error {
		got = append(got, fb)
		return nil
	}})
	const id = "0193a5c4-3333-7aaa-8bbb-000000000003"
	for _, c := range []struct {
		path, body, want string
		code             int
	}{
		{"/v1/request/not-a-uuid/feedback", `{"rating":true}`, "id", 400},
		{"/v1/request/" + id + "/feedback", `{"rating":"yes"}`, "rating", 400},
		{"/v1/request/" + id + "/feedback", `{}`, "rating", 400},
		{"/v1/request/" + id + "/feedback", `{"rating":false}`, "", 200},
	} {
		rr := do(t, h, "POST", c.path, local, nil, c.body, nil)
		if rr.Code != c.code || (c.want != "" && !strings.HasPrefix(errorMessage(t, rr), c.want)) {
			t.Errorf("%s %s: %d %s", c.path, c.body, rr.Code, rr.Body)
		}
	}
	if len(got) != 1 || got[0].RequestID != id || got[0].Rating || got[0].Tenant != policies.DefaultTenant || !got[0].CreatedAt.Equal(t0) {
		t.Errorf("stored %+v", got)
	}

	failing := New(Options{Query: knownRequests{}, Feedback: func(context.Context, chstore.Feedback) error { return errors.New("down") }})
	if rr := do(t, failing, "POST", "/v1/request/"+id+"/feedback", local, nil, `{"rating":true}`, nil); rr.Code != 503 {
		t.Errorf("failing store: %d", rr.Code)
	}
}

func TestUnconfigured(t *testing.T) {
	h := New(Options{})
	for _, c := range []struct{ method, path, body, want string }{
		{"POST", "/v1/request/0193a5c4-3333-7aaa-8bbb-000000000003/feedback", `{"rating":true}`, "feedback needs ClickHouse"},
		{"GET", "/v1/requests", "", "query API needs ClickHouse"},
		{"GET", "/v1/requests/0193a5c4-3333-7aaa-8bbb-000000000003", "", "query API needs ClickHouse"},
		{"GET", "/v1/stats", "", "query API needs ClickHouse"},
	} {
		rr := do(t, h, c.method, c.path, local, nil, c.body, nil)
		if rr.Code != 503 || errorMessage(t, rr) != c.want {
			t.Errorf("%s %s: %d %s", c.method, c.path, rr.Code, rr.Body)
		}
	}
}

func TestAccess(t *testing.T) {
	const fbPath = "/v1/request/0193a5c4-3333-7aaa-8bbb-000000000003/feedback"
	store := func(context.Context, chstore.Feedback) error { return nil }
	body := manualBody(openAIReq, openAIResp, "", "", t0.UnixMilli(), t0.UnixMilli(), nil)

	open := New(Options{Sink: record.NewMemory(), Feedback: store, Query: knownRequests{}})
	for _, c := range []struct {
		path, addr, body string
		code             int
	}{
		{fbPath, "127.0.0.1:1", `{"rating":true}`, 200},
		{fbPath, "[::1]:1", `{"rating":true}`, 200},
		{fbPath, "192.0.2.7:1", `{"rating":true}`, 403},
		{"/oai/v1/log", "127.0.0.1:1", body, 200},
		{"/oai/v1/log", "192.0.2.7:1", body, 403},
		{"/v1/log/request", "192.0.2.7:1", `{"record":{}}`, 403},
	} {
		if rr := do(t, open, "POST", c.path, c.addr, map[string]string{"Authorization": "Bearer whatever"}, c.body, nil); rr.Code != c.code {
			t.Errorf("no API key, %s from %s: %d, want %d (%s)", c.path, c.addr, rr.Code, c.code, rr.Body)
		}
	}

	keyed := New(Options{Sink: record.NewMemory(), Feedback: store, Query: knownRequests{}, APIKey: "s3cret"})
	for _, c := range []struct {
		path, addr, auth, body string
		code                   int
	}{
		{fbPath, "127.0.0.1:1", "", `{"rating":true}`, 401},
		{fbPath, "127.0.0.1:1", "Bearer wrong", `{"rating":true}`, 401},
		{fbPath, "192.0.2.7:1", "Bearer s3cret", `{"rating":true}`, 200},
		{fbPath, "192.0.2.7:1", "bearer s3cret", `{"rating":true}`, 200},
		{"/v1/log/request", "127.0.0.1:1", "", `{"record":{}}`, 401},
		{"/oai/v1/log", "192.0.2.7:1", "Bearer s3cret", body, 200},
		// No tenant keys configured: a Helicone key alone does not pass.
		{"/oai/v1/log", "127.0.0.1:1", "Bearer sk-helicone", body, 401},
	} {
		if rr := do(t, keyed, "POST", c.path, c.addr, map[string]string{"Authorization": c.auth}, c.body, nil); rr.Code != c.code {
			t.Errorf("API key, %s from %s with %q: %d, want %d (%s)", c.path, c.addr, c.auth, rr.Code, c.code, rr.Body)
		}
	}
	if rr := do(t, keyed, "GET", "/v1/requests", "127.0.0.1:1", nil, "", nil); rr.Code != 401 || rr.Header().Get("WWW-Authenticate") == "" {
		t.Errorf("GET without key: %d", rr.Code)
	}
}

// knownRequests is a query backend in which every request exists, for the
// feedback tests that do not need ClickHouse (its other methods are not
// called).
type knownRequests struct{ Queries }

func (knownRequests) Exists(context.Context, string, string) (bool, error) { return true, nil }

// usage_source is "provider", "estimated" or empty; an ingested record
// with counts and none is the provider's.
func TestIngestUsageSource(t *testing.T) {
	s := &server{o: Options{Now: fixedClock(t0)}}
	if _, field, err := s.fromProto(&tollgatev1.LogRecord{UsageSource: "guessed"}); err == nil || field != "record.usage_source" {
		t.Errorf("usage_source guessed: %s %v, want refused", field, err)
	}
	mem := record.NewMemory()
	s.o.Sink = mem
	rr := httptest.NewRecorder()
	for _, p := range []*tollgatev1.LogRecord{{PromptTokens: 3}, {}, {PromptTokens: 3, UsageSource: record.UsageEstimated}} {
		rec, field, err := s.fromProto(p)
		if err != nil {
			t.Fatalf("%s: %v", field, err)
		}
		s.write(rr, rec)
	}
	recs := mem.Records()
	if len(recs) != 3 || recs[0].UsageSource != record.UsageProvider || recs[1].UsageSource != "" || recs[2].UsageSource != record.UsageEstimated {
		t.Errorf("usage sources %+v", recs)
	}
}
