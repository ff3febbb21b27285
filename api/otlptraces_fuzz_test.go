package api

import (
	"math"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/tollgate-dev/tollgate/provider"
)

// FuzzOTLPTraces feeds arbitrary bodies, as protobuf and as JSON, to the
// /v1/traces decoder and the span-to-record mapping: no panic, an error
// that says something, and records ClickHouse can store. Seeds:
// testdata/fuzz/FuzzOTLPTraces (OTLP JSON GenAI spans and edge cases)
// and the protobuf requests below.
func FuzzOTLPTraces(f *testing.F) {
	for _, sp := range []*tracepb.Span{chatSpan(), chatSpan(kvInt("gen_ai.usage.input_tokens", -1)), chatSpan(kvStr("tollgate.cache", "semantic"))} {
		b, _ := proto.Marshal(traceRequest(sp))
		f.Add(b, false)
	}
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	prices := provider.DefaultPrices()
	f.Fuzz(func(t *testing.T, body []byte, jsonBody bool) {
		req, err := decodeTraces(body, jsonBody)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		recs, skipped, err := spanRecords(req, prices, now)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if skipped.spans > 0 && skipped.message() == "" {
			t.Fatal("skipped spans without a message")
		}
		for _, r := range recs {
			if r.RequestID == "" || r.Provider == "" {
				t.Fatalf("incomplete record %+v", r)
			}
			if math.IsNaN(r.CostUSD) || math.IsInf(r.CostUSD, 0) || r.CostUSD < 0 {
				t.Fatalf("cost %v", r.CostUSD)
			}
			if r.LatencyMs < 0 || r.TTFTMs < 0 || r.PromptTokens < 0 || r.CompletionTokens < 0 || r.Attempts < 0 {
				t.Fatalf("negative figure in %+v", r)
			}
			if r.CreatedAt.Before(time.Unix(0, 0)) || r.CreatedAt.Year() > 2106 {
				t.Fatalf("created_at %v", r.CreatedAt)
			}
		}
	})
}
