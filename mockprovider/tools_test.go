package mockprovider_test

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/tollgate-dev/tollgate/mockprovider"
)

const (
	chatToolsBody = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"weather in Paris?"}],` +
		`"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}],"tool_choice":"required"}`
	messagesToolsBody = `{"model":"claude-sonnet-4-5","max_tokens":100,"messages":[{"role":"user","content":"weather in Paris?"}],` +
		`"tools":[{"name":"get_weather","input_schema":{"type":"object"}}],"tool_choice":{"type":"any"}}`
)

// A chat request that forces a tool gets a call of it, whole or streamed.
func TestChatToolCall(t *testing.T) {
	_, url := start(t, mockprovider.Options{})
	resp, body := do(t, "POST", url+"/v1/chat/completions", chatToolsBody)
	wantStatus(t, resp, body, 200)
	checkJSON(t, body, map[string]any{
		"choices.0.finish_reason":                           "tool_calls",
		"choices.0.message.tool_calls.0.type":               "function",
		"choices.0.message.tool_calls.0.function.name":      "get_weather",
		"choices.0.message.tool_calls.0.function.arguments": mockprovider.ToolArguments,
		"usage.completion_tokens":                           int64(mockprovider.CompletionTokens),
	})

	named := strings.Replace(chatToolsBody, `"required"`, `{"type":"function","function":{"name":"other"}}`, 1)
	stream := strings.Replace(named, `"model"`, `"stream":true,"stream_options":{"include_usage":true},"model"`, 1)
	resp, raw := do(t, "POST", url+"/v1/chat/completions", stream)
	wantStatus(t, resp, raw, 200)
	var args, name, finish string
	var completion int64
	for _, e := range parseSSE(t, raw) {
		if e.data == "[DONE]" {
			continue
		}
		d := gjson.Parse(e.data)
		name += d.Get("choices.0.delta.tool_calls.0.function.name").String()
		args += d.Get("choices.0.delta.tool_calls.0.function.arguments").String()
		finish += d.Get("choices.0.finish_reason").String()
		completion += d.Get("usage.completion_tokens").Int()
	}
	if name != "other" || args != mockprovider.ToolArguments || finish != "tool_calls" || completion != mockprovider.CompletionTokens {
		t.Errorf("stream: tool %q arguments %q finish %q completion %d", name, args, finish, completion)
	}

	// "auto" (or no tool_choice) is answered with text.
	resp, body = do(t, "POST", url+"/v1/chat/completions", strings.Replace(chatToolsBody, `"required"`, `"auto"`, 1))
	wantStatus(t, resp, body, 200)
	if got := gjson.GetBytes(body, "choices.0.message.content").String(); got != mockprovider.CompletionText {
		t.Errorf("tool_choice auto: content %q", got)
	}
}

// A messages request that forces a tool gets a tool_use block, whole or
// streamed as input_json_delta pieces.
func TestMessagesToolUse(t *testing.T) {
	_, url := start(t, mockprovider.Options{})
	resp, body := do(t, "POST", url+"/v1/messages", messagesToolsBody)
	wantStatus(t, resp, body, 200)
	checkJSON(t, body, map[string]any{
		"stop_reason":          "tool_use",
		"content.0.type":       "tool_use",
		"content.0.name":       "get_weather",
		"content.0.input.city": "Paris",
	})

	stream := strings.Replace(messagesToolsBody, `"max_tokens"`, `"stream":true,"max_tokens"`, 1)
	resp, raw := do(t, "POST", url+"/v1/messages", stream)
	wantStatus(t, resp, raw, 200)
	var names []string
	var name, args, stop string
	for _, e := range parseSSE(t, raw) {
		names = append(names, e.name)
		d := gjson.Parse(e.data)
		name += d.Get("content_block.name").String()
		args += d.Get("delta.partial_json").String()
		stop += d.Get("delta.stop_reason").String()
	}
	want := "message_start content_block_start content_block_delta content_block_delta content_block_stop message_delta message_stop"
	if strings.Join(names, " ") != want || name != "get_weather" || args != mockprovider.ToolArguments || stop != "tool_use" {
		t.Errorf("stream: events %v tool %q arguments %q stop %q", names, name, args, stop)
	}
}
