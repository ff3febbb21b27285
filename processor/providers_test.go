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

// TestEgressChecksTheNamedProvider: a policy that allows openai only
// refuses the providers routed by path (their bodies are OpenAI's, their
// provider is not), and a Helicone-Target-URL to a listed provider's
// origin is checked as that provider too.
func TestEgressChecksTheNamedProvider(t *testing.T) {
	const policy = "defaults:\n  allow: {providers: [openai, groq]}\n"
	for _, tt := range []struct {
		path   string
		extra  []string
		denied bool
	}{
		{"/together/v1/chat/completions", nil, true},
		{"/v1beta/openai/chat/completions", nil, true},
		{"/v1beta/models/gemini-2.5-flash:generateContent", nil, true},
		{"/groq/openai/v1/chat/completions", nil, false},
		{"/v1/chat/completions", nil, false},
		{"/v1/chat/completions", []string{"helicone-target-url", "https://api.together.xyz"}, true},
	} {
		s, sink := newTestServer(t, func(o *Options) { o.Egress = mustPolicy(t, policy) })
		kv := append([]string{":method", "POST", ":path", tt.path}, tt.extra...)
		replies, _ := run(s, nil, reqHeaders(false, kv...), reqBody(`{"model":"m"}`))
		ir := replies[0].GetImmediateResponse()
		if denied := ir != nil && ir.GetStatus().GetCode() == 403; denied != tt.denied {
			t.Errorf("%s: denied %v, want %v (%v)", tt.path, denied, tt.denied, replies)
		}
		if tt.extra != nil && !strings.Contains(string(ir.GetBody()), `provider \"together\"`) {
			t.Errorf("target URL: %s, want the provider together named", ir.GetBody())
		}
		if tt.denied && !strings.HasPrefix(sink.Records()[0].PolicyDecision, "deny: ") {
			t.Errorf("%s: decision %q", tt.path, sink.Records()[0].PolicyDecision)
		}
	}
}
