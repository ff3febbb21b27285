package mockprovider_test

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/tollgate-dev/tollgate/mockprovider"
)

const messagesBody = `{"model":"claude-sonnet-4-5","max_tokens":100,"system":"be terse","messages":[{"role":"user","content":"hello there"}]}`

func TestMessages(t *testing.T) {
	_, url := start(t, mockprovider.Options{})
	resp, body := do(t, "POST", url+"/v1/messages", messagesBody,
		"x-mock-cached-tokens", "7", "x-mock-cache-write-tokens", "11")
	wantStatus(t, resp, body, 200)
	if !strings.HasPrefix(resp.Header.Get("request-id"), "req_") {
		t.Errorf("request-id = %q", resp.Header.Get("request-id"))
	}
	checkJSON(t, body, map[string]any{
		"type":                              "message",
		"role":                              "assistant",
		"model":                             "claude-sonnet-4-5",
		"content.0.type":                    "text",
		"content.0.text":                    mockprovider.CompletionText,
		"stop_reason":                       "end_turn",
		"usage.input_tokens":                int64(4),
		"usage.output_tokens":               int64(mockprovider.CompletionTokens),
		"usage.cache_read_input_tokens":     int64(7),
		"usage.cache_creation_input_tokens": int64(11),
	})
}

func TestMessagesStream(t *testing.T) {
	_, url := start(t, mockprovider.Options{})
	body := strings.Replace(messagesBody, `"max_tokens"`, `"stream":true,"max_tokens"`, 1)
	resp, raw := do(t, "POST", url+"/v1/messages", body, "x-mock-completion-tokens", "40")
	wantStatus(t, resp, raw, 200)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("content-type = %q", ct)
	}
	// Anthropic frames every event as "event: <type>\ndata: {...type...}\n\n".
	if !strings.HasPrefix(string(raw), "event: message_start\ndata: {") {
		t.Fatalf("stream starts %q", raw[:min(len(raw), 60)])
	}
	events := parseSSE(t, raw)
	var names []string
	var text strings.Builder
	for i, e := range events {
		d := gjson.Parse(e.data)
		if e.name == "" || e.name != d.Get("type").String() {
			t.Errorf("event %d: event line %q, data type %q", i, e.name, d.Get("type"))
		}
		if e.name == "content_block_delta" {
			if d.Get("delta.type").String() != "text_delta" {
				t.Errorf("delta = %s", e.data)
			}
			text.WriteString(d.Get("delta.text").String())
			continue
		}
		names = append(names, e.name)
	}
	want := "message_start,content_block_start,ping,content_block_stop,message_delta,message_stop"
	if strings.Join(names, ",") != want {
		t.Errorf("events = %v, want %s around the deltas", names, want)
	}
	if text.String() != mockprovider.CompletionText {
		t.Errorf("text = %q", text.String())
	}
	start := gjson.Get(events[0].data, "message")
	if start.Get("usage.input_tokens").Int() != 4 || start.Get("usage.output_tokens").Int() != 1 ||
		start.Get("model").String() != "claude-sonnet-4-5" || start.Get("content.#").Int() != 0 {
		t.Errorf("message_start = %s", start.Raw)
	}
	delta := gjson.Parse(events[len(events)-2].data)
	if delta.Get("usage.output_tokens").Int() != 40 || delta.Get("delta.stop_reason").String() != "end_turn" {
		t.Errorf("message_delta = %s", delta.Raw)
	}
}

func TestCountTokens(t *testing.T) {
	_, url := start(t, mockprovider.Options{})
	resp, body := do(t, "POST", url+"/v1/messages/count_tokens", messagesBody)
	wantStatus(t, resp, body, 200)
	if got := gjson.GetBytes(body, "input_tokens").Int(); got != 4 {
		t.Fatalf("count_tokens = %s", body)
	}
}
