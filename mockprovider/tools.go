package mockprovider

import (
	"strconv"

	"github.com/tidwall/gjson"
)

// Tool calls. A request that forces a tool call is answered with one, the
// way the real APIs answer it:
//
//	OpenAI chat:        "tool_choice": "required" (the first of "tools") or
//	                    {"type":"function","function":{"name":…}}
//	Anthropic messages: "tool_choice": {"type":"any"} (the first of "tools")
//	                    or {"type":"tool","name":…}
//
// The call's arguments are always [ToolArguments]; the finish reason is
// "tool_calls" (OpenAI) or "tool_use" (Anthropic). Streams send the
// arguments in two pieces, as the real streams split them. Any other
// request (no tool_choice, "auto", "none") is answered with text as before,
// so clients that only declare tools see no change.

// ToolArguments are the JSON arguments of every tool call the mock makes.
const ToolArguments = `{"city":"Paris"}`

// toolArgumentPieces is ToolArguments as a stream sends it.
var toolArgumentPieces = []string{ToolArguments[:8], ToolArguments[8:]}

// forcedOpenAITool is the function a chat request forces, or "".
func forcedOpenAITool(body []byte) string {
	choice := gjson.GetBytes(body, "tool_choice")
	switch {
	case choice.String() == "required":
		return gjson.GetBytes(body, "tools.0.function.name").String()
	case choice.Get("type").String() == "function":
		return choice.Get("function.name").String()
	}
	return ""
}

// forcedAnthropicTool is the tool a messages request forces, or "".
func forcedAnthropicTool(body []byte) string {
	choice := gjson.GetBytes(body, "tool_choice")
	switch choice.Get("type").String() {
	case "any":
		return gjson.GetBytes(body, "tools.0.name").String()
	case "tool":
		return choice.Get("name").String()
	}
	return ""
}

type toolFunction struct {
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments"`
}

type toolCall struct {
	Index    *int         `json:"index,omitempty"` // stream deltas only
	ID       string       `json:"id,omitempty"`
	Type     string       `json:"type,omitempty"`
	Function toolFunction `json:"function"`
}

type toolMessage struct {
	Role        string     `json:"role,omitempty"`
	Content     *string    `json:"content"`
	Refusal     *string    `json:"refusal"`
	ToolCalls   []toolCall `json:"tool_calls"`
	Annotations []any      `json:"annotations,omitempty"`
}

type toolChoice struct {
	Index        int          `json:"index"`
	Message      *toolMessage `json:"message,omitempty"`
	Delta        *toolMessage `json:"delta,omitempty"`
	Logprobs     any          `json:"logprobs"`
	FinishReason *string      `json:"finish_reason"`
}

type toolCompletion struct {
	ID                string       `json:"id"`
	Object            string       `json:"object"`
	Created           int64        `json:"created"`
	Model             string       `json:"model"`
	Choices           []toolChoice `json:"choices"`
	SystemFingerprint string       `json:"system_fingerprint"`
	Usage             any          `json:"usage,omitempty"`
}

var finishToolCalls, stopToolUse = "tool_calls", "tool_use"

// chatToolCall answers a chat request that forces a tool call; it reports
// whether it did.
func (s *Server) chatToolCall(c *call) bool {
	name := forcedOpenAITool(c.body)
	if name == "" {
		return false
	}
	u := chatUsage(c.plan.usage(PromptTokens(c.body)))
	id := "chatcmpl-mock" + strconv.FormatUint(c.id, 10)
	callID := "call_mock" + strconv.FormatUint(c.id, 10)
	base := toolCompletion{ID: id, Object: "chat.completion", Created: now(), Model: c.model, SystemFingerprint: fingerprint}
	if !c.stream {
		base.Usage = u
		base.Choices = []toolChoice{{
			Message: &toolMessage{Role: "assistant", ToolCalls: []toolCall{{
				ID: callID, Type: "function", Function: toolFunction{Name: name, Arguments: ToolArguments},
			}}, Annotations: noItems},
			FinishReason: &finishToolCalls,
		}}
		c.writeJSON(base)
		return true
	}
	base.Object = "chat.completion.chunk"
	includeUsage := gjson.GetBytes(c.body, "stream_options.include_usage").Bool()
	if includeUsage {
		base.Usage = jsonNull
	}
	first := 0
	deltas := []toolChoice{{Delta: &toolMessage{Role: "assistant", ToolCalls: []toolCall{{
		Index: &first, ID: callID, Type: "function", Function: toolFunction{Name: name},
	}}}}}
	for _, piece := range toolArgumentPieces {
		deltas = append(deltas, toolChoice{Delta: &toolMessage{ToolCalls: []toolCall{{Index: &first, Function: toolFunction{Arguments: piece}}}}})
	}
	deltas = append(deltas, toolChoice{Delta: &toolMessage{}, FinishReason: &finishToolCalls})
	sse := c.startSSE()
	for _, d := range deltas {
		chunk := base
		chunk.Choices = []toolChoice{d}
		if sse.event("", chunk) != nil {
			return true
		}
	}
	if includeUsage {
		final := base
		final.Choices = []toolChoice{}
		final.Usage = u
		if sse.event("", final) != nil {
			return true
		}
	}
	_ = sse.done()
	return true
}

type anthropicToolUse struct {
	Type  string `json:"type"`
	ID    string `json:"id"`
	Name  string `json:"name"`
	Input any    `json:"input"`
}

type anthropicJSONDelta struct {
	Type        string `json:"type"`
	PartialJSON string `json:"partial_json"`
}

// messagesToolUse answers a messages request that forces a tool; it reports
// whether it did.
func (s *Server) messagesToolUse(c *call) bool {
	name := forcedAnthropicTool(c.body)
	if name == "" {
		return false
	}
	u := c.plan.usage(PromptTokens(c.body))
	usage := anthropicUsage{InputTokens: u.prompt, CacheCreationInputTokens: u.cacheWrite, CacheReadInputTokens: u.cached, OutputTokens: u.completion}
	msgID := "msg_mock" + strconv.FormatUint(c.id, 10)
	block := anthropicToolUse{Type: "tool_use", ID: "toolu_mock" + strconv.FormatUint(c.id, 10), Name: name}
	if !c.stream {
		block.Input = gjson.Parse(ToolArguments).Value()
		c.writeJSON(anthropicMessage{ID: msgID, Type: "message", Role: "assistant", Model: c.model,
			Content: []anthropicToolUse{block}, StopReason: &stopToolUse, Usage: usage})
		return true
	}
	start := anthropicMessage{ID: msgID, Type: "message", Role: "assistant", Model: c.model, Content: []anthropicBlock{}, Usage: usage}
	start.Usage.OutputTokens = 1
	block.Input = map[string]any{}
	sse := c.startSSE()
	send := func(e anthropicEvent) bool { return sse.event(e.Type, e) == nil }
	ok := send(anthropicEvent{Type: "message_start", Message: &start}) &&
		send(anthropicEvent{Type: "content_block_start", Index: &zeroIndex, ContentBlock: &block})
	for _, piece := range toolArgumentPieces {
		ok = ok && send(anthropicEvent{Type: "content_block_delta", Index: &zeroIndex, Delta: anthropicJSONDelta{Type: "input_json_delta", PartialJSON: piece}})
	}
	_ = ok &&
		send(anthropicEvent{Type: "content_block_stop", Index: &zeroIndex}) &&
		send(anthropicEvent{Type: "message_delta", Delta: anthropicStopDelta{StopReason: stopToolUse}, Usage: &anthropicDeltaUsage{OutputTokens: u.completion}}) &&
		send(anthropicEvent{Type: "message_stop"})
	return true
}
