package otelspan_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/tollgate-dev/tollgate/internal/app"
	"github.com/tollgate-dev/tollgate/internal/devtest"
	"github.com/tollgate-dev/tollgate/internal/testenv"
	"github.com/tollgate-dev/tollgate/provider"
	"github.com/tollgate-dev/tollgate/storage/chstore/chtest"
)

// These tests play an application instrumented with the OpenTelemetry
// SDK, its OTLP/HTTP exporter pointed at Tollgate's /v1/traces: each
// GenAI span must become a record in Tollgate's store, priced from the
// price table.

// spanStart is recent: /v1/traces refuses spans older than 30 days.
var spanStart = time.Now().UTC().Add(-time.Hour).Truncate(time.Second).Add(125 * time.Millisecond)

const spanLatency = 2250 * time.Millisecond

// exportSpans sends a GenAI chat span and a plain span to api (host:port)
// with the SDK, and waits for the export to finish.
func exportSpans(t *testing.T, api string) {
	t.Helper()
	ctx := context.Background()
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL("http://"+api+"/v1/traces"))
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp))
	tracer := tp.Tracer("shop/llm")
	_, chat := tracer.Start(ctx, "chat claude-sonnet-4-5", trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(spanStart),
		trace.WithAttributes(
			attribute.String("gen_ai.operation.name", "chat"), attribute.String("gen_ai.provider.name", "anthropic"),
			attribute.String("gen_ai.request.model", "claude-sonnet-4-5"), attribute.String("gen_ai.response.model", "claude-sonnet-4-5-20250929"),
			attribute.Int("gen_ai.usage.input_tokens", 2000), attribute.Int("gen_ai.usage.output_tokens", 300),
			attribute.Bool("gen_ai.request.stream", true), attribute.Float64("gen_ai.response.time_to_first_chunk", 0.4),
			attribute.String("user.id", "bob"), attribute.String("gen_ai.conversation.id", "conv-7"),
		))
	chat.End(trace.WithTimestamp(spanStart.Add(spanLatency)))
	_, plain := tracer.Start(ctx, "GET /cart")
	plain.End()
	if err := tp.Shutdown(ctx); err != nil { // exports the batch
		t.Fatal(err)
	}
}

func wantCost(t *testing.T) float64 {
	cost, ok := provider.DefaultPrices().CallCost("anthropic", provider.Usage{PromptTokens: 2000, CompletionTokens: 300}, "claude-sonnet-4-5-20250929", "claude-sonnet-4-5")
	if !ok || cost == 0 {
		t.Fatal("claude-sonnet-4-5 has no price")
	}
	return cost
}

func TestSDKSpansBecomeRecords(t *testing.T) {
	d := devtest.StartDev(t, app.Run)
	exportSpans(t, d.Addrs["http"])
	recs := d.Records(t) // the JSON-lines store of tollgate dev
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1 (the plain span is skipped): %v", len(recs), recs)
	}
	for _, r := range recs {
		if r.Provider != "anthropic" || r.Model != "claude-sonnet-4-5" || r.ResponseModel != "claude-sonnet-4-5-20250929" ||
			r.PromptTokens != 2000 || r.CompletionTokens != 300 || !r.Stream || r.TTFTMs != 400 ||
			r.UserID != "bob" || r.SessionID != "conv-7" || !r.CreatedAt.Equal(spanStart) || r.LatencyMs != spanLatency.Milliseconds() ||
			r.Status != 200 || r.Tenant != "default" || r.CostUSD != wantCost(t) {
			t.Errorf("record %+v; want cost %v", r, wantCost(t))
		}
	}
}

// TestSDKSpansLandInClickHouse: the same through the ClickHouse writer,
// read back from the requests table.
func TestSDKSpansLandInClickHouse(t *testing.T) {
	chURL, conn, db := chtest.EmptyDatabase(t, "tollgate_otel")
	d := devtest.StartDev(t, app.Run, "--clickhouse", chURL, "--spool-dir", t.TempDir())
	exportSpans(t, d.Addrs["http"])
	if err := d.Stop(); err != nil { // flushes the writer
		t.Fatal(err)
	}
	type row struct {
		Provider   string    `ch:"provider"`
		Model      string    `ch:"model"`
		Response   string    `ch:"response_model"`
		Prompt     int64     `ch:"prompt_tokens"`
		Completion int64     `ch:"completion_tokens"`
		Cost       float64   `ch:"cost_usd"`
		User       string    `ch:"user_id"`
		Session    string    `ch:"session_id"`
		Latency    int64     `ch:"latency_ms"`
		TTFT       int64     `ch:"ttft_ms"`
		Created    time.Time `ch:"created_at"`
	}
	var rows []row
	testenv.Eventually(t, 30*time.Second, func() error {
		rows = rows[:0]
		if err := conn.Select(context.Background(), &rows, `SELECT provider, model, response_model, prompt_tokens, completion_tokens,
			cost_usd, user_id, session_id, latency_ms, ttft_ms, created_at FROM `+db+`.requests FINAL`); err != nil {
			return err
		}
		if len(rows) != 1 {
			return fmt.Errorf("%d rows, want 1", len(rows))
		}
		return nil
	})
	r := rows[0]
	if r.Provider != "anthropic" || r.Model != "claude-sonnet-4-5" || r.Response != "claude-sonnet-4-5-20250929" ||
		r.Prompt != 2000 || r.Completion != 300 || r.Cost != wantCost(t) || r.User != "bob" || r.Session != "conv-7" ||
		r.Latency != spanLatency.Milliseconds() || r.TTFT != 400 || !r.Created.Equal(spanStart.Truncate(time.Second)) {
		t.Errorf("row %+v", r)
	}
}
