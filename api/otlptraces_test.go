package api

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/tollgate-dev/tollgate/otelspan"
	"github.com/tollgate-dev/tollgate/provider"
	"github.com/tollgate-dev/tollgate/record"
)

const (
	spanTraceHex = "0af7651916cd43dd8448eb211c80319c"
	spanIDHex    = "b7ad6b7169203331"
)

var spanStart = time.Date(2026, 3, 1, 9, 0, 0, 250_000_000, time.UTC) // an hour before t0

func kvStr(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

func kvInt(k string, v int64) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: v}}}
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// chatSpan is a GenAI span as an instrumented OpenAI client sends it.
func chatSpan(attrs ...*commonpb.KeyValue) *tracepb.Span {
	return &tracepb.Span{
		TraceId: mustHex(spanTraceHex), SpanId: mustHex(spanIDHex), Name: "chat gpt-4o-mini",
		Kind:              tracepb.Span_SPAN_KIND_CLIENT,
		StartTimeUnixNano: uint64(spanStart.UnixNano()), EndTimeUnixNano: uint64(spanStart.Add(1500 * time.Millisecond).UnixNano()),
		Attributes: append([]*commonpb.KeyValue{
			kvStr("gen_ai.operation.name", "chat"), kvStr("gen_ai.provider.name", "openai"),
			kvStr("gen_ai.request.model", "gpt-4o-mini"), kvStr("gen_ai.response.model", "gpt-4o-mini-2024-07-18"),
			kvInt("gen_ai.usage.input_tokens", 1000), kvInt("gen_ai.usage.output_tokens", 200),
			kvStr("user.id", "alice"), kvStr("session.id", "s-9"), kvStr("tollgate.property.Team", "search"),
		}, attrs...),
	}
}

// traceRequest holds a GenAI span, a plain HTTP span (skipped) and a span
// of Tollgate's own exporter (skipped).
func traceRequest(genAI *tracepb.Span) *coltracepb.ExportTraceServiceRequest {
	plain := &tracepb.Span{TraceId: mustHex(spanTraceHex), SpanId: mustHex("00f067aa0ba902b7"), Name: "GET /",
		Attributes: []*commonpb.KeyValue{kvStr("http.request.method", "GET")}}
	own := chatSpan(kvStr("tollgate.request_id", "0190c3a4-0000-7000-8000-000000000001"))
	return &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{kvStr("service.name", "shop")}},
		ScopeSpans: []*tracepb.ScopeSpans{
			{Scope: &commonpb.InstrumentationScope{Name: "openai-instrumentation"}, Spans: []*tracepb.Span{genAI, plain}},
			{Scope: &commonpb.InstrumentationScope{Name: otelspan.ScopeName}, Spans: []*tracepb.Span{own}},
		},
	}}}
}

// postTraces sends body to /v1/traces from loopback with contentType.
func postTraces(t *testing.T, h http.Handler, contentType string, body []byte, headers map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest("POST", "/v1/traces", bytes.NewReader(body))
	req.RemoteAddr, req.Host = local, "localhost:8080"
	req.Header.Set("Content-Type", contentType)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, req)
	return rr
}

func TestTracesTurnGenAISpansIntoRecords(t *testing.T) {
	pb, err := proto.Marshal(traceRequest(chatSpan()))
	if err != nil {
		t.Fatal(err)
	}
	js, err := protojson.Marshal(traceRequest(chatSpan()))
	if err != nil {
		t.Fatal(err)
	}
	// OTLP's JSON writes ids in hex where protojson writes base64.
	js = bytes.ReplaceAll(js, []byte(`"`+b64(spanTraceHex)+`"`), []byte(`"`+spanTraceHex+`"`))
	js = bytes.ReplaceAll(js, []byte(`"`+b64(spanIDHex)+`"`), []byte(`"`+spanIDHex+`"`))
	js = bytes.ReplaceAll(js, []byte(`"`+b64("00f067aa0ba902b7")+`"`), []byte(`"00f067aa0ba902b7"`))
	if !bytes.Contains(js, []byte(spanTraceHex)) {
		t.Fatalf("JSON body without hex ids: %s", js)
	}

	var ids []string
	for _, enc := range []struct {
		contentType string
		body        []byte
	}{{"application/x-protobuf", pb}, {"application/json", js}} {
		mem := record.NewMemory()
		h := New(Options{Sink: mem, Now: fixedClock(t0)})
		rr := postTraces(t, h, enc.contentType, enc.body, nil)
		if rr.Code != 200 || rr.Header().Get("Content-Type") != enc.contentType {
			t.Fatalf("%s: status %d (%s) %s", enc.contentType, rr.Code, rr.Header().Get("Content-Type"), rr.Body)
		}
		var resp coltracepb.ExportTraceServiceResponse
		if enc.contentType == "application/json" {
			err = protojson.Unmarshal(rr.Body.Bytes(), &resp)
		} else {
			err = proto.Unmarshal(rr.Body.Bytes(), &resp)
		}
		if err != nil {
			t.Fatal(err)
		}
		if ps := resp.GetPartialSuccess(); ps.GetRejectedSpans() != 2 || !strings.Contains(ps.GetErrorMessage(), "without gen_ai") ||
			!strings.Contains(ps.GetErrorMessage(), "Tollgate itself") {
			t.Errorf("%s: partial success %v, want 2 rejected (one plain, one of Tollgate's own)", enc.contentType, ps)
		}
		recs := mem.Records()
		if len(recs) != 1 {
			t.Fatalf("%s: %d records, want 1", enc.contentType, len(recs))
		}
		r := recs[0]
		wantCost, _ := provider.DefaultPrices().CallCost("openai", provider.Usage{PromptTokens: 1000, CompletionTokens: 200}, "gpt-4o-mini-2024-07-18", "gpt-4o-mini")
		if r.Provider != "openai" || r.Model != "gpt-4o-mini" || r.ResponseModel != "gpt-4o-mini-2024-07-18" ||
			r.PromptTokens != 1000 || r.CompletionTokens != 200 || r.UserID != "alice" || r.SessionID != "s-9" ||
			!r.CreatedAt.Equal(spanStart) || r.LatencyMs != 1500 || r.Status != 200 || r.Tenant != "default" ||
			len(r.Properties) != 1 || r.Properties[0] != (record.Property{Key: "team", Value: "search"}) ||
			r.UsageSource != record.UsageProvider || wantCost == 0 || !near(r.CostUSD, wantCost) {
			t.Errorf("%s: record %+v (want cost %v)", enc.contentType, r, wantCost)
		}
		ids = append(ids, r.RequestID)
	}
	// The id comes from the span's ids: a retried batch makes the same rows.
	if ids[0] != ids[1] || ids[0] == "" {
		t.Errorf("request ids %v: want the same id from the same span in either encoding", ids)
	}
}

// b64 is protojson's spelling of an id: standard base64.
func b64(hexID string) string { return base64.StdEncoding.EncodeToString(mustHex(hexID)) }

func TestTracesKeepsTheSpansCostAndReadsErrors(t *testing.T) {
	mem := record.NewMemory()
	h := New(Options{Sink: mem, Now: fixedClock(t0)})
	sp := chatSpan(&commonpb.KeyValue{Key: "tollgate.cost_usd", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: 0.25}}},
		kvStr("error.type", "429"), kvStr("tollgate.cache", "hit"), kvStr("tollgate.cache_reference_id", "ref-1"))
	sp.Status = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: "rate limited upstream"}
	body, _ := proto.Marshal(&coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{sp}}}}}})
	if rr := postTraces(t, h, "application/x-protobuf", body, nil); rr.Code != 200 {
		t.Fatalf("status %d %s", rr.Code, rr.Body)
	}
	r := mem.Records()[0]
	if r.CostUSD != 0.25 || r.Status != 429 || r.Error != "rate limited upstream" || !r.CacheHit || r.CacheReferenceID != "ref-1" {
		t.Errorf("record %+v", r)
	}
}

func TestTracesRefusesBadInputNamingTheField(t *testing.T) {
	h := New(Options{Sink: record.NewMemory(), Now: fixedClock(t0)})
	pbOf := func(sp *tracepb.Span) []byte {
		b, _ := proto.Marshal(traceRequest(sp))
		return b
	}
	late := chatSpan()
	late.EndTimeUnixNano = late.StartTimeUnixNano - 1
	for _, tc := range []struct {
		name, contentType string
		body              []byte
		status            int
		want              string
	}{
		{"negative tokens", "application/x-protobuf", pbOf(chatSpan(kvInt("gen_ai.usage.output_tokens", -3))), 400,
			`resourceSpans[0].scopeSpans[0].spans[0].attributes["gen_ai.usage.output_tokens"]: must not be negative`},
		{"tokens as text", "application/x-protobuf", pbOf(chatSpan(kvStr("gen_ai.usage.input_tokens", "many"))), 400,
			`attributes["gen_ai.usage.input_tokens"]: must be a non-negative integer`},
		{"ends before it starts", "application/x-protobuf", pbOf(late), 400, "spans[0].endTimeUnixNano: must not be before startTimeUnixNano"},
		{"started too long ago", "application/x-protobuf", pbOf(startingAt(t0.Add(-31 * 24 * time.Hour))), 400,
			"resourceSpans[0].scopeSpans[0].spans[0].startTimeUnixNano: must be within the last 30 days"},
		{"starts in the future", "application/x-protobuf", pbOf(startingAt(t0.Add(2 * time.Hour))), 400,
			"resourceSpans[0].scopeSpans[0].spans[0].startTimeUnixNano: must not be more than an hour ahead"},
		{"not protobuf", "application/x-protobuf", []byte("\xff\xff\xff"), 400, "OTLP ExportTraceServiceRequest in protobuf"},
		{"not JSON", "application/json", []byte("{"), 400, "OTLP ExportTraceServiceRequest in JSON"},
		{"trace id not hex", "application/json", []byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"}]}]}]}`), 400,
			"resourceSpans[0].scopeSpans[0].spans[0].traceId: must be 32 hex digits"},
	} {
		rr := postTraces(t, h, tc.contentType, tc.body, nil)
		var st status.Status
		var err error
		if tc.contentType == "application/json" {
			err = protojson.Unmarshal(rr.Body.Bytes(), &st)
		} else {
			err = proto.Unmarshal(rr.Body.Bytes(), &st)
		}
		if rr.Code != tc.status || err != nil || !strings.Contains(st.GetMessage(), tc.want) {
			t.Errorf("%s: status %d, message %q (%v); want %d with %q", tc.name, rr.Code, st.GetMessage(), err, tc.status, tc.want)
		}
	}
	if rr := postTraces(t, h, "text/plain", []byte("x"), nil); rr.Code != http.StatusForbidden && rr.Code != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain: status %d", rr.Code)
	}
}

func TestTracesAuthAndGzip(t *testing.T) {
	auth := twoTenantAuth(t)
	mem := record.NewMemory()
	h := New(Options{Sink: mem, Auth: auth, APIKey: "admin-key", Now: fixedClock(t0)})
	pb, _ := proto.Marshal(traceRequest(chatSpan()))
	if rr := postTraces(t, h, "application/x-protobuf", pb, nil); rr.Code != http.StatusUnauthorized {
		t.Errorf("without a key: status %d, want 401", rr.Code)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(pb)
	zw.Close()
	rr := postTraces(t, h, "application/x-protobuf", gz.Bytes(), map[string]string{"Authorization": "Bearer sk-acme", "Content-Encoding": "gzip"})
	if rr.Code != 200 {
		t.Fatalf("gzip with a Helicone key: status %d %s", rr.Code, rr.Body)
	}
	if recs := mem.Records(); len(recs) != 1 || recs[0].Tenant != "acme" {
		t.Errorf("records %+v, want one of tenant acme", recs)
	}
}

// startingAt is chatSpan started at t, lasting a second.
func startingAt(t time.Time) *tracepb.Span {
	sp := chatSpan()
	sp.StartTimeUnixNano, sp.EndTimeUnixNano = uint64(t.UnixNano()), uint64(t.Add(time.Second).UnixNano())
	return sp
}

// A span naming a proxied call's request id (and its start) must not
// overwrite that call's record: the id comes from the span's own ids.
func TestTracesNeverTakeARequestIDFromAnAttribute(t *testing.T) {
	mem := record.NewMemory()
	h := New(Options{Sink: mem, Now: fixedClock(t0)})
	proxied := "0190c3a4-0000-7000-8000-0000000000aa"
	body, _ := proto.Marshal(&coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{ScopeSpans: []*tracepb.ScopeSpans{{
		Spans: []*tracepb.Span{chatSpan(kvStr("tollgate.request_id", proxied))}}}}}})
	if rr := postTraces(t, h, "application/x-protobuf", body, nil); rr.Code != 200 {
		t.Fatalf("status %d %s", rr.Code, rr.Body)
	}
	recs := mem.Records()
	if len(recs) != 1 || recs[0].RequestID == proxied || recs[0].RequestID == "" {
		t.Errorf("records %+v: want one whose id is not the attribute's %s", recs, proxied)
	}
}
