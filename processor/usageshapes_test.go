package processor

import (
	"math"
	"testing"
)

// TestGeminiUsageThroughTheProxy: a Gemini call on a path Tollgate does not
// classify is recorded with its tokens and priced, answered as JSON or as
// an alt=sse stream. Helicone reads usageMetadata the same way
// (packages/cost/usage/googleUsageProcessor.ts; thoughts count as output in
// valhalla/jawn/src/lib/shared/bodyProcessors/googleBodyProcessor.ts).
func TestGeminiUsageThroughTheProxy(t *testing.T) {
	const usage = `"usageMetadata":{"promptTokenCount":100,"candidatesTokenCount":20,"thoughtsTokenCount":20,"totalTokenCount":140},"modelVersion":"gemini-2.5-flash"`
	// gemini-2.5-flash in provider/prices.yaml: input 0.30, output 2.50 USD
	// per million tokens: (100 × 0.30 + 40 × 2.50) / 1e6 = 130e-6.
	const cost = 130e-6
	for _, tc := range []struct {
		name, path, contentType, body string
	}{
		{"json", "/v1beta/models/gemini-2.5-flash:generateContent", "application/json; charset=UTF-8",
			`{"candidates":[{"content":{"parts":[{"text":"hi"}]}}],` + usage + `}`},
		{"sse", "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", "text/event-stream",
			"data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"hi\"}]}}]," + usage + "}\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, sink := newTestServer(t)
			_, err := run(s, nil,
				reqHeaders(false, ":method", "POST", ":path", tc.path),
				reqBody(`{"contents":[{"parts":[{"text":"hi"}]}]}`),
				respHeaders(false, ":status", "200", "content-type", tc.contentType),
				respBody(tc.body, true),
			)
			if err != nil {
				t.Fatal(err)
			}
			r := sink.Records()[0]
			if r.PromptTokens != 100 || r.CompletionTokens != 40 || r.ReasoningTokens != 20 ||
				r.ResponseModel != "gemini-2.5-flash" || math.Abs(r.CostUSD-cost) > 1e-12 {
				t.Fatalf("record %+v", r)
			}
		})
	}
}
