package otelspan_test

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/tollgate-dev/tollgate/internal/app"
	"github.com/tollgate-dev/tollgate/internal/devtest"
	"github.com/tollgate-dev/tollgate/provider"
)

// TestSDKSpansBecomeRecords: an application instrumented with the
// OpenTelemetry SDK, its OTLP/HTTP exporter pointed at Tollgate's
// /v1/traces, gets a record per GenAI span in Tollgate's log (the
// JSON-lines store of `tollgate dev`), priced from the price table.
func TestSDKSpansBecomeRecords(t *testing.T) {
	d := devtest.StartDev(t, app.Run)
	ctx := context.Background()
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL("http://"+d.Addrs["http"]+"/v1/traces"))
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp))
	tracer := tp.Tracer("shop/llm")

	start := time.Date(2026, 11, 2, 9, 30, 0, 125_000_000, time.UTC)
	_, chat := tracer.Start(ctx, "chat claude-sonnet-4-5", trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(start),
		trace.WithAttributes(
			attribute.String("gen_ai.operation.name", "chat"), attribute.String("gen_ai.provider.name", "anthropic"),
			attribute.String("gen_ai.request.model", "claude-sonnet-4-5"), attribute.String("gen_ai.response.model", "claude-sonnet-4-5-20250929"),
			attribute.Int("gen_ai.usage.input_tokens", 2000), attribute.Int("gen_ai.usage.output_tokens", 300),
			attribute.Bool("gen_ai.request.stream", true), attribute.Float64("gen_ai.response.time_to_first_chunk", 0.4),
			attribute.String("user.id", "bob"), attribute.String("gen_ai.conversation.id", "conv-7"),
		))
	chat.End(trace.WithTimestamp(start.Add(2250 * time.Millisecond)))
	_, plain := tracer.Start(ctx, "GET /cart")
	plain.End()
	if err := tp.Shutdown(ctx); err != nil { // exports the batch
		t.Fatal(err)
	}

	recs := d.Records(t)
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1 (the plain span is skipped): %v", len(recs), recs)
	}
	for _, r := range recs {
		wantCost, _ := provider.DefaultPrices().CallCost("anthropic", provider.Usage{PromptTokens: 2000, CompletionTokens: 300}, "claude-sonnet-4-5-20250929", "claude-sonnet-4-5")
		if r.Provider != "anthropic" || r.Model != "claude-sonnet-4-5" || r.ResponseModel != "claude-sonnet-4-5-20250929" ||
			r.PromptTokens != 2000 || r.CompletionTokens != 300 || !r.Stream || r.TTFTMs != 400 ||
			r.UserID != "bob" || r.SessionID != "conv-7" || !r.CreatedAt.Equal(start) || r.LatencyMs != 2250 ||
			r.Status != 200 || r.Tenant != "default" || wantCost == 0 || r.CostUSD != wantCost {
			t.Errorf("record %+v; want cost %v", r, wantCost)
		}
	}
}
