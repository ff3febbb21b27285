package api

import (
	"math"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/helicone"
	"github.com/tollgate-dev/tollgate/provider"
)

// FuzzParseManualLog feeds arbitrary bodies to the manual-logger parser and
// record builder: no panic, and a record that ClickHouse can store with
// sane figures. Seeds: testdata/fuzz/FuzzParseManualLog (Helicone helper
// payloads: JSON, streamed OpenAI and Anthropic textBody, edge cases; meta
// headers, JSON-lines and Gemini bodies).
func FuzzParseManualLog(f *testing.F) {
	f.Add([]byte(manualBody(openAIReq, openAIResp, "", "", 1772359200250, 1772359201750, nil)))
	f.Add([]byte(manualBody(anthropicReq, `{}`, anthropicStream, "anthropic", 1772359200250, 1772359201750, nil)))
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	defaultPrices := provider.DefaultPrices()
	f.Fuzz(func(t *testing.T, body []byte) {
		ml, err := parseManualLog(body)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		// providerRequest.meta is Helicone-* headers from the body.
		hh, err := manualLogHeaders(ml.ProviderRequest.Meta, nil)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty meta error message")
			}
			hh = helicone.Headers{}
		}
		for _, route := range []string{"custom", "openai", "anthropic"} {
			rec := buildManualRecord(ml, route, hh, defaultPrices, now)
			if rec.RequestID == "" || rec.Provider == "" || rec.Status == 0 {
				t.Fatalf("incomplete record %+v", rec)
			}
			if math.IsNaN(rec.CostUSD) || math.IsInf(rec.CostUSD, 0) || rec.CostUSD < 0 {
				t.Fatalf("cost %v", rec.CostUSD)
			}
			if rec.LatencyMs < 0 || rec.TTFTMs < 0 {
				t.Fatalf("latency %d ttft %d", rec.LatencyMs, rec.TTFTMs)
			}
			if rec.CreatedAt.Before(time.Unix(0, 0)) || rec.CreatedAt.Year() > 2106 {
				t.Fatalf("created_at %v", rec.CreatedAt)
			}
			if rec.PromptTokens < 0 || rec.CompletionTokens < 0 {
				t.Fatalf("tokens %d %d", rec.PromptTokens, rec.CompletionTokens)
			}
		}
	})
}
