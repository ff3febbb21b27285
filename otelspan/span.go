package otelspan

import (
	"context"
	"strings"
	"time"

	"github.com/tidwall/gjson"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/tollgate-dev/tollgate/record"
)

// spanData is what a queued call keeps: the record without its bodies
// (which may be a megabyte each), and the few fields read from them.
type spanData struct {
	rec         record.Record
	parent      trace.SpanContext
	responseID  string
	maxTokens   int64
	temperature float64
	hasTemp     bool
}

// Bounds on what is read of a call's bodies and kept of its error.
const (
	maxScannedBody = 256 << 10 // larger request bodies are not read for max_tokens/temperature
	maxSSEScan     = 8 << 10   // the first event of a stream names its id
	maxIDLen       = 256
	maxErrorLen    = 512
)

func (d *spanData) fill(rec *record.Record, parent trace.SpanContext) {
	d.rec = *rec
	d.rec.RequestBody, d.rec.ResponseBody = "", ""
	d.rec.Error = clip(rec.Error, maxErrorLen)
	d.parent = parent
	d.responseID = responseID(rec.ResponseBody)
	if len(rec.RequestBody) <= maxScannedBody && rec.RequestBody != "" {
		res := gjson.GetMany(rec.RequestBody, "max_tokens", "max_completion_tokens", "max_output_tokens",
			"generationConfig.maxOutputTokens", "temperature", "generationConfig.temperature")
		for _, r := range res[:4] {
			if r.Type == gjson.Number && r.Int() > 0 {
				d.maxTokens = r.Int()
				break
			}
		}
		for _, r := range res[4:] {
			if r.Type == gjson.Number {
				d.temperature, d.hasTemp = r.Float(), true
				break
			}
		}
	}
}

// responseID is the provider's id of the answer: "id" of an OpenAI or
// Anthropic JSON body, "responseId" of Gemini's, or the same in a stream's
// first event (Anthropic's message_start holds it in message.id).
func responseID(body string) string {
	b := strings.TrimLeft(body, " \t\r\n")
	if !strings.HasPrefix(b, "{") {
		if len(b) > maxSSEScan {
			b = b[:maxSSEScan]
		}
		for line := range strings.Lines(b) {
			data, ok := strings.CutPrefix(line, "data:")
			if data = strings.TrimSpace(data); ok && strings.HasPrefix(data, "{") {
				b = data
				break
			}
		}
		if !strings.HasPrefix(b, "{") {
			return ""
		}
	}
	for _, r := range gjson.GetMany(b, "id", "message.id", "responseId") {
		if r.Type == gjson.String && r.Str != "" {
			return strings.Clone(clip(r.Str, maxIDLen)) // not a view that keeps the body
		}
	}
	return ""
}

func clip(s string, n int) string {
	if len(s) > n {
		return strings.ToValidUTF8(s[:n], "")
	}
	return s
}

// emit builds and ends the call's span: kind CLIENT, from the call's start
// to its end, child of the caller's span when there was one.
func (e *Exporter) emit(d *spanData) {
	r := &d.rec
	op := Operation(r.Path)
	name := op
	if r.Model != "" {
		name = op + " " + r.Model
	}
	ctx := context.Background()
	if d.parent.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, d.parent)
	}
	start := r.CreatedAt
	_, span := e.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithTimestamp(start), trace.WithAttributes(attributes(d, op)...))
	if et := ErrorType(r.Status); et != "" {
		msg := r.Error
		if msg == "" {
			msg = "status " + et
		}
		span.SetStatus(codes.Error, msg)
	}
	span.End(trace.WithTimestamp(start.Add(time.Duration(r.LatencyMs) * time.Millisecond)))
}

// attributes are the span's: the GenAI conventions' and Tollgate's own.
// Never a body, a key or a header: what a record holds of those stays in
// the log.
func attributes(d *spanData, op string) []attribute.KeyValue {
	r := &d.rec
	a := make([]attribute.KeyValue, 0, 24+len(r.Properties))
	a = append(a,
		attribute.String(AttrOperation, op),
		attribute.String(AttrProviderName, ProviderName(r.Provider)),
		attribute.String(AttrSystem, systemName(r.Provider)),
		attribute.String(AttrRequestID, r.RequestID),
		attribute.String(AttrTenant, r.Tenant),
		attribute.Float64(AttrCostUSD, r.CostUSD),
		attribute.String(AttrCache, CacheOutcome(r)),
		attribute.Bool(AttrRateLimited, r.RateLimited),
		attribute.Bool(AttrRequestStream, r.Stream),
		attribute.Int64(AttrInputTokens, r.PromptTokens),
		attribute.Int64(AttrOutputTokens, r.CompletionTokens),
	)
	str := func(k, v string) {
		if v != "" {
			a = append(a, attribute.String(k, v))
		}
	}
	num := func(k string, v int64) {
		if v > 0 {
			a = append(a, attribute.Int64(k, v))
		}
	}
	str(AttrRequestModel, r.Model)
	str(AttrResponseModel, r.ResponseModel)
	str(AttrResponseID, d.responseID)
	str(AttrUserID, r.UserID)
	str(AttrSessionID, r.SessionID)
	str(AttrConversationID, r.SessionID)
	str(AttrSessionPath, r.SessionPath)
	str(AttrSessionName, r.SessionName)
	str(AttrRequestName, r.RequestName)
	str(AttrPromptID, r.PromptID)
	str(AttrCacheRef, r.CacheReferenceID)
	str(AttrUsageSource, r.UsageSource)
	str(AttrURLPath, r.Path)
	str(AttrErrorType, ErrorType(r.Status))
	num(AttrCacheReadTokens, r.CachedTokens)
	num(AttrCacheWriteTkns, r.CacheWriteTokens)
	num(AttrReasoningTokens, r.ReasoningTokens)
	num(AttrMaxTokens, d.maxTokens)
	num(AttrPromptVersion, int64(r.PromptVersion))
	num(AttrFallbackIndex, int64(r.FallbackIndex))
	num(AttrAttempts, int64(r.Attempts))
	if r.Status > 0 {
		a = append(a, attribute.Int(AttrHTTPStatus, int(r.Status)))
	}
	if d.hasTemp {
		a = append(a, attribute.Float64(AttrTemperature, d.temperature))
	}
	if r.Stream && r.TTFTMs > 0 {
		a = append(a, attribute.Float64(AttrTimeToFirstChunk, float64(r.TTFTMs)/1000))
	}
	for _, p := range r.Properties {
		a = append(a, attribute.String(AttrPropertyPrefix+p.Key, p.Value))
	}
	return a
}
