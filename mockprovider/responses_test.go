package mockprovider_test

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/tollgate-dev/tollgate/mockprovider"
)

func TestResponses(t *testing.T) {
	_, url := start(t, mockprovider.Options{})
	resp, body := do(t, "POST", url+"/v1/responses", `{"model":"gpt-4.1","instructions":"be kind","input":"tell me a story"}`,
		"x-mock-cached-tokens", "2", "x-mock-reasoning-tokens", "3")
	wantStatus(t, resp, body, 200)
	checkJSON(t, body, map[string]any{
		"object":                  "response",
		"status":                  "completed",
		"model":                   "gpt-4.1",
		"output.0.type":           "message",
		"output.0.content.0.type": "output_text",
		"output.0.content.0.text": mockprovider.CompletionText,
		"usage.input_tokens":      int64(6),
		"usage.output_tokens":     int64(mockprovider.CompletionTokens),
		"usage.total_tokens":      int64(6 + mockprovider.CompletionTokens),
		"usage.input_tokens_details.cached_tokens":     int64(2),
		"usage.output_tokens_details.reasoning_tokens": int64(3),
	})
}

func TestResponsesStream(t *testing.T) {
	_, url := start(t, mockprovider.Options{})
	resp, body := do(t, "POST", url+"/v1/responses", `{"model":"gpt-4.1","input":"hi","stream":true}`)
	wantStatus(t, resp, body, 200)
	events := parseSSE(t, body)

	var names []string
	var text strings.Builder
	for i, e := range events {
		d := gjson.Parse(e.data)
		if e.name != d.Get("type").String() {
			t.Errorf("event %d: event line %q but type %q", i, e.name, d.Get("type"))
		}
		if d.Get("sequence_number").Int() != int64(i) {
			t.Errorf("event %d: sequence_number %d", i, d.Get("sequence_number").Int())
		}
		if e.name == "response.output_text.delta" {
			text.WriteString(d.Get("delta").String())
		} else {
			names = append(names, e.name)
		}
	}
	wantNames := []string{
		"response.created", "response.in_progress", "response.output_item.added",
		"response.content_part.added", "response.output_text.done", "response.content_part.done",
		"response.output_item.done", "response.completed",
	}
	if strings.Join(names, ",") != strings.Join(wantNames, ",") {
		t.Errorf("events = %v, want %v around the deltas", names, wantNames)
	}
	if text.String() != mockprovider.CompletionText {
		t.Errorf("deltas = %q", text.String())
	}
	if got := gjson.Get(events[0].data, "response.usage"); got.Type != gjson.Null {
		t.Errorf("response.created usage = %s, want null", got.Raw)
	}
	completed := gjson.Get(events[len(events)-1].data, "response")
	if completed.Get("usage.input_tokens").Int() != 1 || completed.Get("usage.output_tokens").Int() != mockprovider.CompletionTokens ||
		completed.Get("status").String() != "completed" {
		t.Errorf("response.completed = %s", completed.Raw)
	}
}
