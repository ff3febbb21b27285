package provider

import (
	"strings"
	"testing"
)

// usageShapes are the usage objects Helicone reads besides OpenAI's and
// Anthropic's own, each with the Helicone source that reads it. Tollgate's
// Usage counts all input in PromptTokens and all output (reasoning
// included) in CompletionTokens; Helicone splits the same numbers into
// uncached input, cache reads and so on.
var usageShapes = []struct {
	name, provider, body string
	want                 Usage
}{
	// packages/cost/usage/googleUsageProcessor.ts and
	// valhalla/jawn/src/lib/shared/bodyProcessors/googleBodyProcessor.ts:
	// promptTokenCount includes cachedContentTokenCount; thoughts are
	// output (completionTokens = thoughtsTokenCount + candidatesTokenCount).
	{"gemini usageMetadata", "google",
		`{"candidates":[{"content":{"parts":[{"text":"Hi"}],"role":"model"}}],"usageMetadata":{"promptTokenCount":120,"candidatesTokenCount":30,"totalTokenCount":190,"cachedContentTokenCount":100,"thoughtsTokenCount":40},"modelVersion":"gemini-2.5-flash"}`,
		Usage{PromptTokens: 120, CompletionTokens: 70, CachedTokens: 100, ReasoningTokens: 40}},
	{"gemini under the openai route", OpenAI,
		`{"usageMetadata":{"promptTokenCount":8,"candidatesTokenCount":2,"totalTokenCount":10},"modelVersion":"gemini-2.0-flash"}`,
		Usage{PromptTokens: 8, CompletionTokens: 2}},
	{"gemini total only", "google", `{"usageMetadata":{"totalTokenCount":10}}`, Usage{PromptTokens: 10}},
	// googleBodyProcessor.ts: an array of responses (streamGenerateContent
	// without alt=sse); the usage is on the response that carries it.
	{"gemini response array", "google",
		`[{"candidates":[],"usageMetadata":{"promptTokenCount":8}},{"usageMetadata":{"promptTokenCount":8,"candidatesTokenCount":5,"totalTokenCount":13},"modelVersion":"gemini-2.5-pro"}]`,
		Usage{PromptTokens: 8, CompletionTokens: 5}},
	// googleUsageProcessor.ts, "Alternative format (OpenAI-compatible)":
	// camelCase promptTokens / completionTokens.
	{"camelCase openai-compatible", "google", `{"usage":{"promptTokens":7,"completionTokens":3}}`,
		Usage{PromptTokens: 7, CompletionTokens: 3}},
	// packages/cost/usage/openAIUsageProcessor.ts: prompt_tokens ??
	// input_tokens, completion_tokens ?? output_tokens (the Responses API).
	{"responses api", OpenAI,
		`{"model":"gpt-4.1","usage":{"input_tokens":50,"input_tokens_details":{"cached_tokens":20},"output_tokens":9,"output_tokens_details":{"reasoning_tokens":4}}}`,
		Usage{PromptTokens: 50, CompletionTokens: 9, CachedTokens: 20, ReasoningTokens: 4}},
	// packages/cost/usage/bedrockUsageProcessor.ts: Claude's usage shape
	// under another provider; input excludes the cache.
	{"anthropic shape under bedrock", "bedrock",
		`{"usage":{"input_tokens":10,"output_tokens":4,"cache_read_input_tokens":30,"cache_creation_input_tokens":5}}`,
		Usage{PromptTokens: 45, CompletionTokens: 4, CachedTokens: 30, CacheWriteTokens: 5}},
	{"bedrock converse camelCase", "bedrock",
		`{"usage":{"inputTokens":10,"outputTokens":4,"totalTokens":44,"cacheReadInputTokens":30}}`,
		Usage{PromptTokens: 40, CompletionTokens: 4, CachedTokens: 30}},
	// valhalla/jawn/src/lib/shared/bodyProcessors/vercelBodyProcessor.ts:
	// the AI SDK's inputTokens / outputTokens (cached input included).
	{"vercel ai sdk", "vercel",
		`{"text":"hi","usage":{"inputTokens":30,"outputTokens":6,"totalTokens":36,"cachedInputTokens":10,"reasoningTokens":2}}`,
		Usage{PromptTokens: 30, CompletionTokens: 6, CachedTokens: 10, ReasoningTokens: 2}},
	// packages/cost/usage/deepseekUsageProcessor.ts: prompt_tokens = hit +
	// miss; the hit tokens are the cached input.
	{"deepseek cache counts", "deepseek",
		`{"usage":{"prompt_tokens":100,"completion_tokens":5,"prompt_cache_hit_tokens":64,"prompt_cache_miss_tokens":36}}`,
		Usage{PromptTokens: 100, CompletionTokens: 5, CachedTokens: 64}},
	// genericBodyProcessor.ts: no usage object, top-level counts
	// (Bedrock's Llama models).
	{"top-level counts", "bedrock", `{"generation":"hi","prompt_token_count":12,"generation_token_count":3}`,
		Usage{PromptTokens: 12, CompletionTokens: 3}},
}

func TestParseResponseUsageShapes(t *testing.T) {
	for _, tt := range usageShapes {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := ParseResponse(tt.provider, []byte(tt.body))
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
	_, model, _ := ParseResponse("google", []byte(usageShapes[0].body))
	if model != "gemini-2.5-flash" {
		t.Fatalf("model %q, want Gemini's modelVersion", model)
	}
}

// TestStreamUsageShapes: the same usage objects at the end of a stream.
// Gemini's alt=sse events each carry running totals
// (valhalla/jawn/src/lib/shared/bodyProcessors/googleStreamBodyProcessor.ts
// takes the last); Groq puts the usage in x_groq.usage
// (packages/cost/usage/groqUsageProcessor.ts).
func TestStreamUsageShapes(t *testing.T) {
	gemini := "data: " + `{"candidates":[{"content":{"parts":[{"text":"Hel"}]}}],"usageMetadata":{"promptTokenCount":8,"totalTokenCount":8},"modelVersion":"gemini-2.5-flash"}` + "\r\n\r\n" +
		"data: " + `{"candidates":[{"content":{"parts":[{"text":"lo"}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":8,"candidatesTokenCount":2,"thoughtsTokenCount":5,"totalTokenCount":15},"modelVersion":"gemini-2.5-flash"}` + "\r\n\r\n"
	groq := "data: " + `{"id":"x","model":"llama-3.1-8b-instant","choices":[{"index":0,"delta":{"content":"Hi"}}]}` + "\n\n" +
		"data: " + `{"id":"x","model":"llama-3.1-8b-instant","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"x_groq":{"usage":{"prompt_tokens":11,"completion_tokens":1,"total_tokens":12}}}` + "\n\n" +
		"data: [DONE]\n\n"
	claudeOnVertex := "event: message_start\ndata: " + `{"type":"message_start","message":{"model":"claude-sonnet-4-5","usage":{"input_tokens":5,"cache_read_input_tokens":20,"output_tokens":1}}}` + "\n\n" +
		"event: message_delta\ndata: " + `{"type":"message_delta","usage":{"output_tokens":9}}` + "\n\n"
	for _, tt := range []struct {
		name, provider, stream, model, text string
		want                                Usage
	}{
		{"gemini sse", "google", gemini, "gemini-2.5-flash", "Hello", Usage{PromptTokens: 8, CompletionTokens: 7, ReasoningTokens: 5}},
		{"groq x_groq", OpenAI, groq, "llama-3.1-8b-instant", "Hi", Usage{PromptTokens: 11, CompletionTokens: 1}},
		{"claude events logged as vertex", "vertex", claudeOnVertex, "claude-sonnet-4-5", "", Usage{PromptTokens: 25, CompletionTokens: 9, CachedTokens: 20}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := NewStreamAccumulator(tt.provider)
			for _, part := range strings.SplitAfter(tt.stream, "\n") {
				a.Write([]byte(part))
			}
			a.Finish()
			if a.Usage() != tt.want || a.Model() != tt.model || a.Text() != tt.text {
				t.Fatalf("usage %+v model %q text %q; want %+v %q %q", a.Usage(), a.Model(), a.Text(), tt.want, tt.model, tt.text)
			}
		})
	}
}

// TestGeminiPriced: Gemini calls cost what prices.yaml lists; thoughts are
// billed as output, cached content at the cache read price.
// gemini-2.5-flash: input 0.30, cached 0.03, output 2.50 USD per million
// tokens; 120 prompt tokens of which 100 cached, and 30 + 40 output tokens:
// (20 × 0.30 + 100 × 0.03 + 70 × 2.50) / 1e6 = 184e-6.
func TestGeminiPriced(t *testing.T) {
	u, model, _ := ParseResponse(Gemini, []byte(usageShapes[0].body))
	cost, priced := DefaultPrices().CallCost(Gemini, u, model)
	if !priced || cost < 184e-6-1e-12 || cost > 184e-6+1e-12 {
		t.Fatalf("cost %v priced %v", cost, priced)
	}
	// A versioned name and the "models/" prefix find the same price.
	if p, ok := DefaultPrices().Lookup("", "models/gemini-2.5-flash-preview-05-20"); !ok || p.Output != 2.50 {
		t.Fatalf("lookup %+v %v", p, ok)
	}
}
