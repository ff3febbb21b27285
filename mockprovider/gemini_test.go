package mockprovider_test

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/tollgate-dev/tollgate/mockprovider"
)

const geminiBody = `{"contents":[{"role":"user","parts":[{"text":"say hello to me"}]}],"systemInstruction":{"parts":[{"text":"be brief"}]}}`

// TestGeminiGenerateContent: the model from the path, the reply in
// candidates, usageMetadata with the cached and thoughts counts the
// x-mock-* headers ask for (thoughts outside candidatesTokenCount).
func TestGeminiGenerateContent(t *testing.T) {
	_, url := start(t, mockprovider.Options{})
	resp, body := do(t, "POST", url+"/v1beta/models/gemini-2.5-flash:generateContent", geminiBody,
		mockprovider.HeaderCompletionTokens, "30", mockprovider.HeaderReasoningTokens, "10", mockprovider.HeaderCachedTokens, "2")
	wantStatus(t, resp, body, 200)
	got := gjson.GetManyBytes(body, "modelVersion", "candidates.0.content.parts.0.text", "usageMetadata.promptTokenCount",
		"usageMetadata.candidatesTokenCount", "usageMetadata.thoughtsTokenCount", "usageMetadata.cachedContentTokenCount", "usageMetadata.totalTokenCount")
	if got[0].Str != "gemini-2.5-flash" || got[1].Str != mockprovider.CompletionText || got[2].Int() != 6 ||
		got[3].Int() != 20 || got[4].Int() != 10 || got[5].Int() != 2 || got[6].Int() != 36 {
		t.Fatalf("response %s", body)
	}
}

// TestGeminiStream: alt=sse streams one event per word with running
// totals, the last with all counts; without alt=sse the same chunks come
// as one JSON array.
func TestGeminiStream(t *testing.T) {
	_, url := start(t, mockprovider.Options{})
	resp, body := do(t, "POST", url+"/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse", geminiBody)
	wantStatus(t, resp, body, 200)
	if ct := resp.Header.Get("content-type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("content-type %q", ct)
	}
	events := parseSSE(t, body)
	var text strings.Builder
	for _, e := range events {
		text.WriteString(gjson.Get(e.data, "candidates.0.content.parts.0.text").Str)
	}
	last := events[len(events)-1].data
	if text.String() != mockprovider.CompletionText || gjson.Get(last, "usageMetadata.candidatesTokenCount").Int() != mockprovider.CompletionTokens ||
		gjson.Get(last, "candidates.0.finishReason").Str != "STOP" || gjson.Get(last, "modelVersion").Str != "gemini-2.0-flash" {
		t.Fatalf("stream %q, last %s", text.String(), last)
	}
	resp, body = do(t, "POST", url+"/v1beta/models/gemini-2.0-flash:streamGenerateContent", geminiBody)
	wantStatus(t, resp, body, 200)
	if n := gjson.GetBytes(body, "#").Int(); n != int64(len(events)) {
		t.Fatalf("array of %d chunks, want %d: %s", n, len(events), body)
	}
}

// TestGeminiOpenAICompatibleAndErrors: /v1beta/openai/… answers in
// OpenAI's format; a failure Gemini's way.
func TestGeminiOpenAICompatibleAndErrors(t *testing.T) {
	_, url := start(t, mockprovider.Options{})
	resp, body := do(t, "POST", url+"/v1beta/openai/chat/completions", `{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"hi"}]}`)
	wantStatus(t, resp, body, 200)
	if gjson.GetBytes(body, "object").Str != "chat.completion" {
		t.Fatalf("response %s", body)
	}
	resp, body = do(t, "POST", url+"/v1beta/models/gemini-2.5-flash:generateContent", geminiBody, mockprovider.HeaderStatus, "429")
	wantStatus(t, resp, body, 429)
	if gjson.GetBytes(body, "error.status").Str != "RESOURCE_EXHAUSTED" || gjson.GetBytes(body, "error.code").Int() != 429 {
		t.Fatalf("error %s", body)
	}
	resp, body = do(t, "POST", url+"/v1beta/models/gemini-2.5-flash:predict", geminiBody)
	wantStatus(t, resp, body, 404)
}

// TestGeminiStableAPIAndOtherMethods: the stable API's /v1/models/… paths
// answer as /v1beta's; countTokens answers the prompt's count without
// usageMetadata, embedContent and batchEmbedContents their vectors without
// token counts, as Google's do.
func TestGeminiStableAPIAndOtherMethods(t *testing.T) {
	_, url := start(t, mockprovider.Options{})
	resp, body := do(t, "POST", url+"/v1/models/gemini-2.5-flash:generateContent", geminiBody)
	wantStatus(t, resp, body, 200)
	if gjson.GetBytes(body, "modelVersion").Str != "gemini-2.5-flash" || gjson.GetBytes(body, "usageMetadata.promptTokenCount").Int() != 6 {
		t.Fatalf("response %s", body)
	}
	resp, body = do(t, "POST", url+"/v1/models/gemini-2.5-flash:streamGenerateContent?alt=sse", geminiBody)
	wantStatus(t, resp, body, 200)
	if len(parseSSE(t, body)) != len(strings.Fields(mockprovider.CompletionText)) {
		t.Fatalf("stream %s", body)
	}
	for _, base := range []string{"/v1beta", "/v1"} {
		resp, body = do(t, "POST", url+base+"/models/gemini-2.5-flash:countTokens", geminiBody)
		wantStatus(t, resp, body, 200)
		if gjson.GetBytes(body, "totalTokens").Int() != 6 || gjson.GetBytes(body, "usageMetadata").Exists() {
			t.Fatalf("%s countTokens: %s", base, body)
		}
	}
	resp, body = do(t, "POST", url+"/v1beta/models/gemini-embedding-001:embedContent",
		`{"content":{"parts":[{"text":"the weather in Paris"}]},"outputDimensionality":8}`)
	wantStatus(t, resp, body, 200)
	if gjson.GetBytes(body, "embedding.values.#").Int() != 8 || gjson.GetBytes(body, "usageMetadata").Exists() {
		t.Fatalf("embedContent: %s", body)
	}
	resp, body = do(t, "POST", url+"/v1beta/models/gemini-embedding-001:batchEmbedContents",
		`{"requests":[{"model":"models/gemini-embedding-001","content":{"parts":[{"text":"a"}]}},{"model":"models/gemini-embedding-001","content":{"parts":[{"text":"b"}]}}]}`)
	wantStatus(t, resp, body, 200)
	if gjson.GetBytes(body, "embeddings.#").Int() != 2 || gjson.GetBytes(body, "embeddings.0.values.#").Int() == 0 {
		t.Fatalf("batchEmbedContents: %s", body)
	}
}
