package processor

import (
	"math"
	"strings"
	"testing"
)

// TestGeminiNativeRecord: a generateContent path names the provider, the
// model (from the path) and the stream (from the method); usage and cost
// come from usageMetadata, cached content at its cache read price, and the
// key in the query string is not in the record.
func TestGeminiNativeRecord(t *testing.T) {
	s, sink := newTestServer(t)
	run(s, nil,
		reqHeaders(false, ":method", "POST", ":path", "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse&key=AIzaSECRET",
			"x-goog-api-key", "AIzaSECRET2"),
		reqBody(`{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}`),
		respHeaders(false, ":status", "200", "content-type", "text/event-stream"),
		respBody("data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hello\"}]}}],\"usageMetadata\":{\"promptTokenCount\":1000,\"candidatesTokenCount\":100,\"cachedContentTokenCount\":400,\"thoughtsTokenCount\":50},\"modelVersion\":\"gemini-2.5-flash\"}\n\n", true))
	r := sink.Records()[0]
	if r.Provider != "gemini" || r.Model != "gemini-2.5-flash" || !r.Stream || r.Path != "/v1beta/models/gemini-2.5-flash:streamGenerateContent" {
		t.Fatalf("record %+v", r)
	}
	if r.PromptTokens != 1000 || r.CompletionTokens != 150 || r.CachedTokens != 400 || r.ReasoningTokens != 50 {
		t.Fatalf("usage %+v", r)
	}
	// 600 × 0.30 + 400 × 0.03 + 150 × 2.50 per million.
	if want := (600*0.30 + 400*0.03 + 150*2.50) / 1e6; math.Abs(r.CostUSD-want) > 1e-12 {
		t.Fatalf("cost %v, want %v", r.CostUSD, want)
	}
	if strings.Contains(r.RequestBody+r.Path+r.TargetURL, "AIza") {
		t.Fatalf("key in the record: %+v", r)
	}
}

// TestCompatibleProviderRecord: /groq/openai/v1/chat/completions is
// OpenAI's format (stream usage asked for), provider groq, priced from
// its section.
func TestCompatibleProviderRecord(t *testing.T) {
	s, sink := newTestServer(t)
	run(s, nil,
		reqHeaders(false, ":method", "POST", ":path", "/groq/openai/v1/chat/completions"),
		reqBody(`{"model":"llama-3.3-70b-versatile","user":"u1","messages":[{"role":"user","content":"hi"}]}`),
		respHeaders(false, ":status", "200", "content-type", "application/json"),
		respBody(`{"model":"llama-3.3-70b-versatile","usage":{"prompt_tokens":1000000,"completion_tokens":1000000}}`, true))
	r := sink.Records()[0]
	if r.Provider != "groq" || r.Model != "llama-3.3-70b-versatile" || r.UserID != "u1" {
		t.Fatalf("record %+v", r)
	}
	if math.Abs(r.CostUSD-(0.59+0.79)) > 1e-9 {
		t.Fatalf("cost %v", r.CostUSD)
	}
}
