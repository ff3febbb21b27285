package processor

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/tidwall/gjson"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/record"
)

const requestID = "0192f0c4-5a1e-7cc0-8f00-1234567890ab"

// stepClock advances 10 ms per reading: start, first chunk, end.
func stepClock() func() time.Time {
	t := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	return func() time.Time { t = t.Add(10 * time.Millisecond); return t.Add(-10 * time.Millisecond) }
}

func newTestServer(t *testing.T, mutate ...func(*Options)) (*Server, *record.Memory) {
	t.Helper()
	sink := record.NewMemory()
	o := Options{Sink: sink, Now: stepClock(), AllowedTargetOrigins: []string{"https://api.together.xyz"}}
	for _, m := range mutate {
		m(&o)
	}
	return New(o), sink
}

func set(key, value string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header: &corev3.HeaderValue{Key: key, RawValue: []byte(value)},
		Append: wrapperspb.Bool(false),
	}
}

// approxCost compares costs written by hand with the float arithmetic that
// produced them: equal to nine significant digits.
var approxCost = cmpopts.EquateApprox(1e-9, 0)

func diff(t *testing.T, want, got any) {
	t.Helper()
	if d := cmp.Diff(want, got, protocmp.Transform()); d != "" {
		t.Fatalf("replies differ (-want +got):\n%s", d)
	}
}

const chatBody = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hi"}],"user":"body-user"}`
const chatResponse = `{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4o-mini-2024-07-18",
 "choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}],
 "usage":{"prompt_tokens":1200,"completion_tokens":300,"total_tokens":1500,
  "prompt_tokens_details":{"cached_tokens":200},"completion_tokens_details":{"reasoning_tokens":50}}}`

// chatCost is chatResponse's cost, worked out by hand from gpt-4o-mini in
// provider/prices.yaml (USD per million tokens: input 0.15, cached input
// 0.075, output 0.60); reasoning tokens are part of the completion tokens.
//
//	(1200-200) uncached × 0.15  = 150
//	 200 cached         × 0.075 =  15
//	 300 completion     × 0.60  = 180
//	 345 / 1e6 = 0.000345 USD
const chatCost = 0.000345

func TestOpenAIChatBufferedPhases(t *testing.T) {
	s, sink := newTestServer(t)
	replies, err := run(s, nil,
		reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions?x=1", ":authority", "localhost",
			"content-type", "application/json", "authorization", "Bearer sk-provider-secret",
			"helicone-auth", "Bearer sk-helicone-secret", "helicone-user-id", "alice",
			"helicone-session-id", "s1", "helicone-session-path", "/a/b", "helicone-session-name", "trip",
			"helicone-request-id", requestID, "helicone-property-Team", "search", "helicone-request-name", "greet"),
		reqBody(chatBody),
		respHeaders(false, ":status", "200", "content-type", "application/json"),
		respBody(chatResponse, true),
	)
	if err != nil {
		t.Fatal(err)
	}
	want := []*extprocv3.ProcessingResponse{
		requestHeadersReply(&extprocv3.CommonResponse{HeaderMutation: &extprocv3.HeaderMutation{RemoveHeaders: []string{
			"helicone-auth", "helicone-user-id", "helicone-session-id", "helicone-session-path", "helicone-session-name",
			"helicone-request-id", "helicone-property-team", "helicone-request-name"}}}),
		requestBodyReply(nil),
		responseHeadersReply(&extprocv3.CommonResponse{HeaderMutation: &extprocv3.HeaderMutation{
			SetHeaders: []*corev3.HeaderValueOption{set("helicone-id", requestID)}}}),
		responseBodyReply(nil),
	}
	diff(t, want, replies)

	recs := sink.Records()
	if len(recs) != 1 {
		t.Fatalf("want 1 record, got %d", len(recs))
	}
	r := recs[0]
	got := *r
	got.CreatedAt = time.Time{}
	wantRec := record.Record{
		RequestID: requestID, Tenant: "key-" + policies.HashKey("sk-helicone-secret")[:16],
		UserID: "alice", SessionID: "s1", SessionPath: "/a/b", SessionName: "trip", RequestName: "greet",
		Properties: []record.Property{{Key: "team", Value: "search"}},
		Provider:   "openai", Model: "gpt-4o-mini", ResponseModel: "gpt-4o-mini-2024-07-18",
		Method: "POST", Path: "/v1/chat/completions", Status: 200, Attempts: 1,
		PromptTokens: 1200, CompletionTokens: 300, CachedTokens: 200, ReasoningTokens: 50,
		CostUSD: chatCost, UsageSource: record.UsageProvider, LatencyMs: 20, TTFTMs: 10,
		RequestBody: chatBody, ResponseBody: chatResponse,
	}
	if d := cmp.Diff(wantRec, got, approxCost); d != "" {
		t.Fatalf("record (-want +got):\n%s", d)
	}
	line, _ := json.Marshal(r)
	for _, secret := range []string{"sk-provider-secret", "sk-helicone-secret"} {
		if strings.Contains(string(line), secret) {
			t.Fatalf("record leaks %s: %s", secret, line)
		}
	}
}

func TestUserFallsBackToBodyAndIDIsGenerated(t *testing.T) {
	s, sink := newTestServer(t)
	replies, _ := run(s, nil,
		reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions"),
		reqBody(chatBody),
		respHeaders(false, ":status", "200", "content-type", "application/json"),
		respBody(chatResponse, true))
	r := sink.Records()[0]
	if r.UserID != "body-user" || r.Tenant != policies.DefaultTenant {
		t.Fatalf("user %q tenant %q", r.UserID, r.Tenant)
	}
	if len(r.RequestID) != 36 || r.RequestID[14] != '7' {
		t.Fatalf("request id %q is not a UUIDv7", r.RequestID)
	}
	id := replies[2].GetResponseHeaders().GetResponse().GetHeaderMutation().GetSetHeaders()[0].GetHeader()
	if id.GetKey() != "helicone-id" || string(id.GetRawValue()) != r.RequestID || id.GetValue() != "" {
		t.Fatalf("Helicone-Id header %v, want raw_value %s only", id, r.RequestID)
	}
}

const openAIStream = "data: {\"id\":\"c\",\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n" +
	"data: {\"id\":\"c\",\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\n\n" +
	"data: {\"id\":\"c\",\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":2,\"total_tokens\":13}}\n\n" +
	"data: [DONE]\n\n"

func TestOpenAIStreamAddsUsageAndStreams(t *testing.T) {
	s, sink := newTestServer(t)
	body := `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}`
	split := strings.Index(openAIStream, "lo\"")
	replies, err := run(s, nil,
		reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions"),
		reqBody(body),
		respHeaders(false, ":status", "200", "content-type", "text/event-stream; charset=utf-8"),
		respBody(openAIStream[:split], false),
		respBody(openAIStream[split:], false),
		respBody("", true),
	)
	if err != nil {
		t.Fatal(err)
	}
	bodyReply := replies[1].GetRequestBody().GetResponse()
	newBody := bodyReply.GetBodyMutation().GetBody()
	if !gjson.GetBytes(newBody, "stream_options.include_usage").Bool() || gjson.GetBytes(newBody, "model").String() != "gpt-4o-mini" {
		t.Fatalf("rewritten body %s", newBody)
	}
	diff(t, &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{set("content-length", itoa(len(newBody)))}}, bodyReply.GetHeaderMutation())
	diff(t, streamedResponseMode, replies[2].GetModeOverride())
	if len(replies) != 6 {
		t.Fatalf("want a reply per message, got %d", len(replies))
	}
	r := sink.Records()[0]
	if !r.Stream || r.PromptTokens != 11 || r.CompletionTokens != 2 || r.ResponseModel != "gpt-4o-mini-2024-07-18" || r.TTFTMs != 10 || r.LatencyMs != 20 {
		t.Fatalf("record %+v", r)
	}
	if r.ResponseBody != openAIStream {
		t.Fatalf("logged response body %q", r.ResponseBody)
	}
}

func TestStreamUsageKeptWhenDisabledOrExplicit(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts func(*Options)
		body string
	}{
		{"disabled by config", func(o *Options) { o.DisableStreamUsage = true }, `{"model":"gpt-4o","stream":true}`},
		{"not a stream", func(o *Options) {}, `{"model":"gpt-4o"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newTestServer(t, tc.opts)
			replies, _ := run(s, nil, reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions"), reqBody(tc.body))
			diff(t, requestBodyReply(nil), replies[1])
		})
	}
}

const anthropicStream = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"claude-sonnet-4-5\",\"usage\":{\"input_tokens\":100,\"cache_read_input_tokens\":40,\"cache_creation_input_tokens\":10,\"output_tokens\":1}}}\n\n" +
	"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n" +
	"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":25}}\n\n" +
	"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"

// anthropicStreamCost is anthropicStream's cost, worked out by hand from
// claude-sonnet-4-5 in provider/prices.yaml (USD per million tokens: input
// 3.00, cache read 0.30, cache write 3.75, output 15.00). Its 150 prompt
// tokens are 100 + 40 read from the cache + 10 written to it.
//
//	100 uncached    × 3.00  = 300
//	 40 cache read  × 0.30  =  12
//	 10 cache write × 3.75  =  37.5
//	 25 output      × 15.00 = 375
//	724.5 / 1e6 = 0.0007245 USD
const anthropicStreamCost = 0.0007245

func TestAnthropicStreamUsageAndCost(t *testing.T) {
	s, sink := newTestServer(t)
	body := `{"model":"claude-sonnet-4-5","stream":true,"max_tokens":64,"messages":[{"role":"user","content":"hi"}],"metadata":{"user_id":"u-9"}}`
	replies, err := run(s, nil,
		reqHeaders(false, ":method", "POST", ":path", "/v1/messages", "x-api-key", "sk-ant-secret"),
		reqBody(body),
		respHeaders(false, ":status", "200", "content-type", "text/event-stream"),
		respBody(anthropicStream, false),
		respBody("", true),
	)
	if err != nil {
		t.Fatal(err)
	}
	diff(t, requestBodyReply(nil), replies[1]) // Anthropic streams always report usage
	r := sink.Records()[0]
	if r.Provider != "anthropic" || r.UserID != "u-9" || r.PromptTokens != 150 || r.CompletionTokens != 25 ||
		r.CachedTokens != 40 || r.CacheWriteTokens != 10 || cmp.Diff(anthropicStreamCost, r.CostUSD, approxCost) != "" {
		t.Fatalf("record %+v, want cost %v", r, anthropicStreamCost)
	}
}

func TestStreamEndingEarlyIsLogged(t *testing.T) {
	for _, tc := range []struct {
		name   string
		end    error
		status int32
	}{
		{"client cancelled", status.Error(codes.Canceled, "context canceled"), record.StatusClientCancelled},
		{"deadline", status.Error(codes.DeadlineExceeded, "deadline exceeded"), record.StatusTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, sink := newTestServer(t)
			_, err := run(s, tc.end,
				reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions"),
				reqBody(`{"model":"gpt-4o-mini","stream":true}`),
				respHeaders(false, ":status", "200", "content-type", "text/event-stream"),
				respBody(openAIStream[:strings.Index(openAIStream, "data: [DONE]")], false),
			)
			if status.Code(err) != status.Code(tc.end) {
				t.Fatalf("Process returned %v", err)
			}
			recs := sink.Records()
			if len(recs) != 1 || recs[0].Status != tc.status || recs[0].PromptTokens != 11 || recs[0].Error == "" {
				t.Fatalf("records %+v", recs)
			}
		})
	}
}

func TestStreamWithoutMessagesLogsNothing(t *testing.T) {
	s, sink := newTestServer(t)
	if _, err := run(s, nil); err != nil {
		t.Fatal(err)
	}
	if n := len(sink.Records()); n != 0 {
		t.Fatalf("got %d records for an empty stream", n)
	}
}

func TestRejections(t *testing.T) {
	big := `{"model":"gpt-4o","messages":[{"role":"user","content":"` + strings.Repeat("x", 2000) + `"}]}`
	tests := []struct {
		name      string
		opts      func(*Options)
		script    []*extprocv3.ProcessingRequest
		status    int
		code      string
		mentioned string
	}{
		// A Helicone-Request-Id that is not a UUID, or a switch other than
		// true/false, is not refused: Helicone takes them (dropin_test.go).
		{"target not allowed", nil, []*extprocv3.ProcessingRequest{reqHeaders(false, ":path", "/v1/chat/completions", "helicone-target-url", "https://evil.example")},
			403, "target_not_allowed", "Helicone-Target-URL"},
		{"target not a URL", nil, []*extprocv3.ProcessingRequest{reqHeaders(false, ":path", "/v1/chat/completions", "helicone-target-url", "::")},
			400, "invalid_header", "Helicone-Target-URL"},
		{"unknown auth key", func(o *Options) {
			o.Auth, _ = policies.NewAuth([]policies.APIKey{{SHA256: policies.HashKey("good"), Tenant: "acme"}}, true)
		}, []*extprocv3.ProcessingRequest{reqHeaders(false, ":path", "/v1/chat/completions", "helicone-auth", "Bearer bad")},
			401, "unauthorized", "Helicone-Auth"},
		{"non-JSON body", nil, []*extprocv3.ProcessingRequest{reqHeaders(false, ":path", "/v1/chat/completions", "content-type", "text/plain"), reqBody("hello")},
			400, "invalid_body", "JSON"},
		{"body too large", func(o *Options) { o.MaxRequestBody = 1000 }, []*extprocv3.ProcessingRequest{reqHeaders(false, ":path", "/v1/chat/completions"), reqBody(big)},
			413, "request_too_large", "limit is 1000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mut []func(*Options)
			if tt.opts != nil {
				mut = append(mut, tt.opts)
			}
			s, sink := newTestServer(t, mut...)
			replies, err := run(s, nil, tt.script...)
			if err != nil {
				t.Fatal(err)
			}
			imm := replies[len(replies)-1].GetImmediateResponse()
			if imm == nil || imm.GetStatus().GetCode() != typev3.StatusCode(tt.status) {
				t.Fatalf("want immediate %d, got %v", tt.status, replies[len(replies)-1])
			}
			msg := gjson.GetBytes(imm.GetBody(), "error.message").String()
			if !strings.Contains(msg, tt.mentioned) || gjson.GetBytes(imm.GetBody(), "error.code").String() != tt.code {
				t.Fatalf("body %s should name %q with code %s", imm.GetBody(), tt.mentioned, tt.code)
			}
			var sawID bool
			for _, h := range imm.GetHeaders().GetSetHeaders() {
				if h.GetHeader().GetValue() != "" {
					t.Fatalf("header %s sets value; Envoy wants raw_value only", h.GetHeader().GetKey())
				}
				sawID = sawID || h.GetHeader().GetKey() == "helicone-id"
			}
			recs := sink.Records()
			if len(recs) != 1 || recs[0].Status != int32(tt.status) || recs[0].Error != msg || !sawID {
				t.Fatalf("records %+v (helicone-id sent: %v)", recs, sawID)
			}
		})
	}
}

func TestTargetURLSetsUpstreamAndClearsRoute(t *testing.T) {
	s, sink := newTestServer(t)
	replies, _ := run(s, nil,
		reqHeaders(true, ":method", "GET", ":path", "/v1/models", "helicone-target-url", "https://API.together.xyz/ignored/path?q=1"),
		respHeaders(true, ":status", "200"))
	diff(t, requestHeadersReply(&extprocv3.CommonResponse{
		ClearRouteCache: true,
		HeaderMutation: &extprocv3.HeaderMutation{
			SetHeaders:    []*corev3.HeaderValueOption{set("x-tollgate-upstream", "https://api.together.xyz"), set("x-tollgate-upstream-host", "api.together.xyz")},
			RemoveHeaders: []string{"helicone-target-url"},
		}}), replies[0])
	r := sink.Records()[0]
	// The origin of a provider routed by path names it (provider.ByOrigin).
	if r.TargetURL != "https://api.together.xyz" || r.Provider != "together" || r.Status != 200 {
		t.Fatalf("record %+v", r)
	}
}

func TestOmitBodiesAndUnknownPaths(t *testing.T) {
	s, sink := newTestServer(t)
	run(s, nil,
		reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions", "helicone-omit-request", "true", "helicone-omit-response", "TRUE"),
		reqBody(chatBody),
		respHeaders(false, ":status", "200", "content-type", "application/json"),
		respBody(chatResponse, true))
	run(s, nil,
		reqHeaders(false, ":method", "POST", ":path", "/v1/audio/transcriptions", "content-type", "multipart/form-data"),
		reqBody("--boundary binary"),
		respHeaders(false, ":status", "200", "content-type", "application/json"),
		respBody(`{"text":"hi"}`, true))
	recs := sink.Records()
	if recs[0].RequestBody != "" || recs[0].ResponseBody != "" || recs[0].PromptTokens != 1200 {
		t.Fatalf("omitted bodies logged: %+v", recs[0])
	}
	if recs[1].Path != "/v1/audio/transcriptions" || recs[1].Status != 200 || recs[1].RequestBody != "--boundary binary" {
		t.Fatalf("unknown path record %+v", recs[1])
	}
}

func TestUnknownModelCostsZeroAndIsCounted(t *testing.T) {
	s, sink := newTestServer(t)
	run(s, nil,
		reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions"),
		reqBody(`{"model":"my-finetune-xyz"}`),
		respHeaders(false, ":status", "200", "content-type", "application/json"),
		respBody(`{"model":"my-finetune-xyz","usage":{"prompt_tokens":5,"completion_tokens":5}}`, true))
	if r := sink.Records()[0]; r.CostUSD != 0 || r.PromptTokens != 5 {
		t.Fatalf("record %+v", r)
	}
	if n := testutil.ToFloat64(s.metrics.unknownModel.WithLabelValues("openai")); n != 1 {
		t.Fatalf("unknown model counter %v", n)
	}
}

func TestLoggedBodiesAreCapped(t *testing.T) {
	s, sink := newTestServer(t, func(o *Options) { o.MaxLoggedBody = 16 })
	run(s, nil,
		reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions"),
		reqBody(chatBody),
		respHeaders(false, ":status", "200", "content-type", "application/json"),
		respBody(chatResponse, true))
	r := sink.Records()[0]
	if r.RequestBody != chatBody[:16] || r.ResponseBody != chatResponse[:16] || r.PromptTokens != 1200 {
		t.Fatalf("record %+v", r)
	}
}
