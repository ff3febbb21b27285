package mockprovider_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/tollgate-dev/tollgate/mockprovider"
)

const chatBody = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello to the world"}]}`

func TestChatCompletion(t *testing.T) {
	_, url := start(t, mockprovider.Options{})
	resp, body := do(t, "POST", url+"/v1/chat/completions", chatBody)
	wantStatus(t, resp, body, 200)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("content-type = %q", ct)
	}
	if !strings.HasPrefix(resp.Header.Get("x-request-id"), "req_") {
		t.Errorf("x-request-id = %q", resp.Header.Get("x-request-id"))
	}
	prompt := mockprovider.PromptTokens([]byte(chatBody))
	want := map[string]any{
		"object":                                    "chat.completion",
		"model":                                     "gpt-4o-mini",
		"choices.0.message.role":                    "assistant",
		"choices.0.message.content":                 mockprovider.CompletionText,
		"choices.0.finish_reason":                   "stop",
		"usage.prompt_tokens":                       prompt,
		"usage.completion_tokens":                   int64(mockprovider.CompletionTokens),
		"usage.total_tokens":                        prompt + mockprovider.CompletionTokens,
		"usage.prompt_tokens_details.cached_tokens": int64(0),
		"usage.completion_tokens_details.reasoning_tokens": int64(0),
	}
	checkJSON(t, body, want)
	if !strings.HasPrefix(gjson.GetBytes(body, "id").String(), "chatcmpl-") {
		t.Errorf("id = %s", gjson.GetBytes(body, "id"))
	}
}

func TestChatStream(t *testing.T) {
	_, url := start(t, mockprovider.Options{})
	for _, includeUsage := range []bool{false, true} {
		name := "without include_usage"
		body := `{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}`
		if includeUsage {
			name = "with include_usage"
			body = `{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`
		}
		t.Run(name, func(t *testing.T) {
			resp, raw := do(t, "POST", url+"/v1/chat/completions", body)
			wantStatus(t, resp, raw, 200)
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
				t.Fatalf("content-type = %q", ct)
			}
			events := parseSSE(t, raw)
			if last := events[len(events)-1]; last.data != "[DONE]" {
				t.Fatalf("last event = %q, want [DONE]", last.data)
			}
			var text strings.Builder
			var usageChunks int
			for i, e := range events[:len(events)-1] {
				if e.name != "" {
					t.Errorf("chat streams have no event: lines, got %q", e.name)
				}
				if !gjson.Valid(e.data) {
					t.Fatalf("chunk %d is not JSON: %s", i, e.data)
				}
				chunk := gjson.Parse(e.data)
				if chunk.Get("object").String() != "chat.completion.chunk" || chunk.Get("model").String() != "gpt-4o" {
					t.Errorf("chunk %d: %s", i, e.data)
				}
				text.WriteString(chunk.Get("choices.0.delta.content").String())
				u := chunk.Get("usage")
				switch {
				case !includeUsage && u.Exists():
					t.Errorf("chunk %d carries usage without include_usage: %s", i, e.data)
				case includeUsage && u.Type == gjson.JSON:
					usageChunks++
					if i != len(events)-2 || len(chunk.Get("choices").Array()) != 0 {
						t.Errorf("usage chunk must be the last, with no choices: %s", e.data)
					}
					if u.Get("prompt_tokens").Int() != 1 || u.Get("completion_tokens").Int() != mockprovider.CompletionTokens {
						t.Errorf("usage = %s", u.Raw)
					}
				case includeUsage && u.Type != gjson.Null:
					t.Errorf("chunk %d: usage must be null before the final chunk: %s", i, e.data)
				}
			}
			if text.String() != mockprovider.CompletionText {
				t.Errorf("deltas = %q, want %q", text.String(), mockprovider.CompletionText)
			}
			if want := map[bool]int{false: 0, true: 1}[includeUsage]; usageChunks != want {
				t.Errorf("usage chunks = %d, want %d", usageChunks, want)
			}
			// role chunk + one per word + finish chunk (+ usage) + [DONE]
			want := 1 + len(strings.Fields(mockprovider.CompletionText)) + 1 + usageChunks + 1
			if len(events) != want {
				t.Errorf("events = %d, want %d", len(events), want)
			}
		})
	}
}

func TestLegacyCompletions(t *testing.T) {
	_, url := start(t, mockprovider.Options{})
	resp, body := do(t, "POST", url+"/v1/completions", `{"model":"gpt-3.5-turbo-instruct","prompt":"Say this is a test"}`)
	wantStatus(t, resp, body, 200)
	checkJSON(t, body, map[string]any{
		"object":                  "text_completion",
		"model":                   "gpt-3.5-turbo-instruct",
		"choices.0.text":          mockprovider.CompletionText,
		"usage.prompt_tokens":     int64(5),
		"usage.completion_tokens": int64(mockprovider.CompletionTokens),
	})

	resp, body = do(t, "POST", url+"/v1/completions", `{"model":"m","prompt":"x","stream":true,"stream_options":{"include_usage":true}}`)
	wantStatus(t, resp, body, 200)
	events := parseSSE(t, body)
	var text strings.Builder
	for _, e := range events[:len(events)-1] {
		text.WriteString(gjson.Get(e.data, "choices.0.text").String())
	}
	if text.String() != mockprovider.CompletionText {
		t.Errorf("text = %q", text.String())
	}
	if u := gjson.Get(events[len(events)-2].data, "usage.completion_tokens"); u.Int() != mockprovider.CompletionTokens {
		t.Errorf("final usage chunk = %s", events[len(events)-2].data)
	}
}

func TestEmbeddings(t *testing.T) {
	_, url := start(t, mockprovider.Options{})
	resp, body := do(t, "POST", url+"/v1/embeddings", `{"model":"text-embedding-3-small","input":["one two","three"]}`)
	wantStatus(t, resp, body, 200)
	checkJSON(t, body, map[string]any{
		"object":              "list",
		"model":               "text-embedding-3-small",
		"data.#":              int64(2),
		"data.1.index":        int64(1),
		"data.0.embedding.#":  int64(256),
		"usage.prompt_tokens": int64(3),
		"usage.total_tokens":  int64(3),
	})
	a := gjson.GetBytes(body, "data.0.embedding").Raw
	if b := gjson.GetBytes(body, "data.1.embedding").Raw; a == b {
		t.Error("different inputs got the same vector")
	}

	// Same input again: same vector (determinism), and base64 on request.
	_, again := do(t, "POST", url+"/v1/embeddings", `{"model":"m","input":"one two"}`)
	if got := gjson.GetBytes(again, "data.0.embedding").Raw; got != a {
		t.Errorf("vector changed between calls: %s vs %s", got, a)
	}
	_, b64 := do(t, "POST", url+"/v1/embeddings", `{"model":"m","input":"one two","encoding_format":"base64","dimensions":4}`)
	raw, err := base64.StdEncoding.DecodeString(gjson.GetBytes(b64, "data.0.embedding").String())
	if err != nil || len(raw) != 4*4 {
		t.Fatalf("base64 embedding: %v, %d bytes: %s", err, len(raw), b64)
	}
}

func TestModels(t *testing.T) {
	_, url := start(t, mockprovider.Options{})
	resp, body := do(t, "GET", url+"/v1/models", "")
	wantStatus(t, resp, body, 200)
	if gjson.GetBytes(body, "object").String() != "list" || gjson.GetBytes(body, "data.#").Int() == 0 ||
		gjson.GetBytes(body, "data.0.object").String() != "model" {
		t.Fatalf("models = %s", body)
	}
}

// checkJSON compares gjson paths with expected strings or integers.
func checkJSON(t *testing.T, body []byte, want map[string]any) {
	t.Helper()
	for path, w := range want {
		got := gjson.GetBytes(body, path)
		if !got.Exists() {
			t.Errorf("%s missing in %s", path, body)
			continue
		}
		switch w := w.(type) {
		case string:
			if got.String() != w {
				t.Errorf("%s = %q, want %q", path, got.String(), w)
			}
		case int64:
			if got.Type != gjson.Number || got.Int() != w {
				t.Errorf("%s = %s, want %d", path, got.Raw, w)
			}
		default:
			t.Fatalf("checkJSON: unsupported type %T", w)
		}
	}
}
