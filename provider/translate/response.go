package translate

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

// ResponseOptions steer a response translation.
type ResponseOptions struct {
	// Now stamps OpenAI's "created" on answers translated from Anthropic,
	// which has no timestamp; nil means time.Now.
	Now func() time.Time
}

func (o ResponseOptions) created() int64 {
	if o.Now == nil {
		return time.Now().Unix()
	}
	return o.Now().Unix()
}

// stop reasons: Anthropic → OpenAI finish_reason.
func finishReason(stop string) string {
	switch stop {
	case "max_tokens", "model_context_window_exceeded":
		return "length"
	case "tool_use":
		return "tool_calls"
	case "refusal":
		return "content_filter"
	case "":
		return ""
	}
	// end_turn, stop_sequence, pause_turn
	return "stop"
}

// OpenAI finish_reason → Anthropic stop_reason.
func stopReason(finish string) string {
	switch finish {
	case "length":
		return "max_tokens"
	case "tool_calls", "function_call":
		return "tool_use"
	case "content_filter":
		return "refusal"
	case "":
		return ""
	}
	return "end_turn"
}

type oaUsage struct {
	PromptTokens        int64          `json:"prompt_tokens"`
	CompletionTokens    int64          `json:"completion_tokens"`
	TotalTokens         int64          `json:"total_tokens"`
	PromptTokensDetails *oaPromptUsage `json:"prompt_tokens_details,omitempty"`
}

type oaPromptUsage struct {
	CachedTokens int64 `json:"cached_tokens"`
}

type anUsage struct {
	InputTokens              int64 `json:"input_tokens"`
	CacheCreationInputTokens int64 `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int64 `json:"cache_read_input_tokens"`
	OutputTokens             int64 `json:"output_tokens"`
}

// usageToOpenAI: OpenAI's prompt_tokens include cached ones, Anthropic's
// input_tokens exclude both cache reads and cache writes.
func usageToOpenAI(u anUsage) oaUsage {
	prompt := u.InputTokens + u.CacheReadInputTokens + u.CacheCreationInputTokens
	return oaUsage{
		PromptTokens:        prompt,
		CompletionTokens:    u.OutputTokens,
		TotalTokens:         prompt + u.OutputTokens,
		PromptTokensDetails: &oaPromptUsage{CachedTokens: u.CacheReadInputTokens},
	}
}

func usageToAnthropic(u gjson.Result) anUsage {
	cached := u.Get("prompt_tokens_details.cached_tokens").Int()
	return anUsage{
		InputTokens:          u.Get("prompt_tokens").Int() - cached,
		CacheReadInputTokens: cached,
		OutputTokens:         u.Get("completion_tokens").Int(),
	}
}

func anUsageOf(u gjson.Result) anUsage {
	return anUsage{
		InputTokens:              u.Get("input_tokens").Int(),
		CacheCreationInputTokens: u.Get("cache_creation_input_tokens").Int(),
		CacheReadInputTokens:     u.Get("cache_read_input_tokens").Int(),
		OutputTokens:             u.Get("output_tokens").Int(),
	}
}

type oaCompletion struct {
	ID      string     `json:"id"`
	Object  string     `json:"object"`
	Created int64      `json:"created"`
	Model   string     `json:"model"`
	Choices []oaChoice `json:"choices"`
	Usage   oaUsage    `json:"usage"`
}

type oaChoice struct {
	Index        int         `json:"index"`
	Message      oaAnswerMsg `json:"message"`
	Logprobs     *struct{}   `json:"logprobs"`
	FinishReason *string     `json:"finish_reason"`
}

type oaAnswerMsg struct {
	Role      string       `json:"role"`
	Content   *string      `json:"content"`
	Refusal   *string      `json:"refusal"`
	ToolCalls []oaToolCall `json:"tool_calls,omitempty"`
}

// AnthropicResponseToOpenAI translates a non-streamed Anthropic Messages
// answer (or error) into an OpenAI chat.completion (or error). The id and
// model are the provider's: the client learns which model answered.
func AnthropicResponseToOpenAI(body []byte, opt ResponseOptions) ([]byte, error) {
	if !gjson.ValidBytes(body) {
		return nil, &FieldError{Field: "body", Reason: "malformed JSON"}
	}
	r := gjson.ParseBytes(body)
	if r.Get("type").String() == "error" {
		return anthropicErrorToOpenAI(r), nil
	}
	if r.Get("type").String() != "message" {
		return nil, &FieldError{Field: "type", Reason: "want an Anthropic message"}
	}
	msg := oaAnswerMsg{Role: "assistant"}
	var text strings.Builder
	hasText := false
	for i, b := range r.Get("content").Array() {
		switch b.Get("type").String() {
		case "text":
			text.WriteString(b.Get("text").String())
			hasText = true
		case "tool_use":
			input := b.Get("input")
			if !input.IsObject() {
				return nil, &FieldError{Field: index("content", i) + ".input", Reason: "want an object"}
			}
			msg.ToolCalls = append(msg.ToolCalls, oaToolCall{
				ID: b.Get("id").String(), Type: "function",
				Function: oaFunction{Name: b.Get("name").String(), Arguments: compactJSON(json.RawMessage(input.Raw))},
			})
		case "thinking", "redacted_thinking":
			// Not requested by a translated request; nothing to show.
		default:
			return nil, unsupported(index("content", i)+".type", "no OpenAI equivalent for "+quote(b.Get("type").String()))
		}
	}
	stop := r.Get("stop_reason").String()
	if hasText || len(msg.ToolCalls) == 0 {
		s := text.String()
		if stop == "refusal" {
			msg.Refusal = &s
		} else {
			msg.Content = &s
		}
	}
	fr := finishReason(stop)
	out := oaCompletion{
		ID: r.Get("id").String(), Object: "chat.completion", Created: opt.created(),
		Model:   r.Get("model").String(),
		Choices: []oaChoice{{Message: msg, FinishReason: &fr}},
		Usage:   usageToOpenAI(anUsageOf(r.Get("usage"))),
	}
	return json.Marshal(out)
}

type anAnswer struct {
	ID           string    `json:"id"`
	Type         string    `json:"type"`
	Role         string    `json:"role"`
	Model        string    `json:"model"`
	Content      []anBlock `json:"content"`
	StopReason   *string   `json:"stop_reason"`
	StopSequence *string   `json:"stop_sequence"`
	Usage        anUsage   `json:"usage"`
}

// OpenAIResponseToAnthropic translates a non-streamed OpenAI chat.completion
// (or error) into an Anthropic message (or error).
func OpenAIResponseToAnthropic(body []byte) ([]byte, error) {
	if !gjson.ValidBytes(body) {
		return nil, &FieldError{Field: "body", Reason: "malformed JSON"}
	}
	r := gjson.ParseBytes(body)
	if e := r.Get("error"); e.IsObject() {
		return openAIErrorToAnthropic(e), nil
	}
	choices := r.Get("choices").Array()
	if len(choices) != 1 {
		return nil, &FieldError{Field: "choices", Reason: "want exactly one choice"}
	}
	c := choices[0]
	m := c.Get("message")
	out := anAnswer{
		ID: r.Get("id").String(), Type: "message", Role: "assistant",
		Model: r.Get("model").String(), Content: []anBlock{},
		Usage: usageToAnthropic(r.Get("usage")),
	}
	if s := m.Get("content").String(); s != "" {
		out.Content = append(out.Content, textBlock(s))
	}
	if s := m.Get("refusal").String(); s != "" {
		out.Content = append(out.Content, textBlock(s))
	}
	for i, tc := range m.Get("tool_calls").Array() {
		args := strings.TrimSpace(tc.Get("function.arguments").String())
		if args == "" {
			args = "{}"
		}
		if !gjson.Valid(args) || !gjson.Parse(args).IsObject() {
			return nil, &FieldError{Field: index("choices[0].message.tool_calls", i) + ".function.arguments",
				Reason: "the model's arguments are not a JSON object"}
		}
		out.Content = append(out.Content, anBlock{Type: "tool_use", ID: tc.Get("id").String(),
			Name: tc.Get("function.name").String(), Input: json.RawMessage(args)})
	}
	if sr := stopReason(c.Get("finish_reason").String()); sr != "" {
		out.StopReason = &sr
	}
	return json.Marshal(out)
}

// anthropicErrorTypes maps Anthropic error types to OpenAI's.
var anthropicErrorTypes = map[string]string{
	"invalid_request_error": "invalid_request_error",
	"authentication_error":  "authentication_error",
	"permission_error":      "permission_error",
	"not_found_error":       "not_found_error",
	"rate_limit_error":      "rate_limit_exceeded",
	"overloaded_error":      "server_error",
	"api_error":             "server_error",
}

func anthropicErrorToOpenAI(r gjson.Result) []byte {
	typ := anthropicErrorTypes[r.Get("error.type").String()]
	if typ == "" {
		typ = "server_error"
	}
	b, _ := json.Marshal(oaError{Error: oaErrorBody{Message: r.Get("error.message").String(), Type: typ}})
	return b
}

var openAIErrorTypes = map[string]string{
	"invalid_request_error": "invalid_request_error",
	"authentication_error":  "authentication_error",
	"permission_error":      "permission_error",
	"not_found_error":       "not_found_error",
	"rate_limit_exceeded":   "rate_limit_error",
	"insufficient_quota":    "rate_limit_error",
	"server_error":          "api_error",
}

func openAIErrorToAnthropic(e gjson.Result) []byte {
	typ := openAIErrorTypes[e.Get("type").String()]
	if typ == "" {
		typ = "api_error"
	}
	b, _ := json.Marshal(anError{Type: "error", Error: anErrorBody{Type: typ, Message: e.Get("message").String()}})
	return b
}

// Error bodies. Marshalling them cannot fail: they hold strings only.
type oaError struct {
	Error oaErrorBody `json:"error"`
}

type oaErrorBody struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

type anError struct {
	Type  string      `json:"type"`
	Error anErrorBody `json:"error"`
}

type anErrorBody struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}
