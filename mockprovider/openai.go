package mockprovider

import (
	"encoding/json"
	"strconv"

	"github.com/tidwall/gjson"
)

// OpenAI wire types, limited to the fields clients and the processor read.

type openAIUsage struct {
	PromptTokens            int64                    `json:"prompt_tokens"`
	CompletionTokens        int64                    `json:"completion_tokens"`
	TotalTokens             int64                    `json:"total_tokens"`
	PromptTokensDetails     *openAIPromptDetails     `json:"prompt_tokens_details,omitempty"`
	CompletionTokensDetails *openAICompletionDetails `json:"completion_tokens_details,omitempty"`
}

type openAIPromptDetails struct {
	CachedTokens int64 `json:"cached_tokens"`
	AudioTokens  int64 `json:"audio_tokens"`
}

type openAICompletionDetails struct {
	ReasoningTokens          int64 `json:"reasoning_tokens"`
	AudioTokens              int64 `json:"audio_tokens"`
	AcceptedPredictionTokens int64 `json:"accepted_prediction_tokens"`
	RejectedPredictionTokens int64 `json:"rejected_prediction_tokens"`
}

// chatUsage carries the details block, as chat completions do today.
func chatUsage(u usage) *openAIUsage {
	return &openAIUsage{
		PromptTokens:            u.prompt,
		CompletionTokens:        u.completion,
		TotalTokens:             u.prompt + u.completion,
		PromptTokensDetails:     &openAIPromptDetails{CachedTokens: u.cached},
		CompletionTokensDetails: &openAICompletionDetails{ReasoningTokens: u.reasoning},
	}
}

// completion is both a chat completion and a chunk of one, and the legacy
// text completion; omitempty keeps each shape to its own fields.
type completion struct {
	ID                string             `json:"id"`
	Object            string             `json:"object"`
	Created           int64              `json:"created"`
	Model             string             `json:"model"`
	Choices           []completionChoice `json:"choices"`
	SystemFingerprint string             `json:"system_fingerprint,omitempty"`
	// Usage is *openAIUsage, or jsonNull in the chunks of a stream that will
	// end with a usage chunk (the real API marks them so), or nil to leave
	// the field out.
	Usage any `json:"usage,omitempty"`
}

var jsonNull = json.RawMessage("null")

type completionChoice struct {
	Index        int          `json:"index"`
	Message      *chatMessage `json:"message,omitempty"`
	Delta        *chatDelta   `json:"delta,omitempty"`
	Text         *string      `json:"text,omitempty"`
	Logprobs     any          `json:"logprobs"`
	FinishReason *string      `json:"finish_reason"`
}

type chatMessage struct {
	Role        string  `json:"role"`
	Content     string  `json:"content"`
	Refusal     *string `json:"refusal"`
	Annotations []any   `json:"annotations"`
}

type chatDelta struct {
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
}

var (
	finishStop = "stop"
	emptyText  = ""
	noItems    = []any{}
)

const fingerprint = "fp_tollgate_mock"

func (s *Server) chatCompletions(c *call) {
	if s.chatToolCall(c) { // tools.go
		return
	}
	u := c.plan.usage(PromptTokens(c.body))
	id := "chatcmpl-mock" + strconv.FormatUint(c.id, 10)
	if !c.stream {
		c.writeJSON(completion{
			ID: id, Object: "chat.completion", Created: now(), Model: c.model,
			Choices: []completionChoice{{
				Message:      &chatMessage{Role: "assistant", Content: CompletionText, Annotations: noItems},
				FinishReason: &finishStop,
			}},
			SystemFingerprint: fingerprint,
			Usage:             chatUsage(u),
		})
		return
	}
	choices := []completionChoice{{Delta: &chatDelta{Role: "assistant", Content: &emptyText}}}
	for _, word := range replyWords {
		choices = append(choices, completionChoice{Delta: &chatDelta{Content: &word}})
	}
	choices = append(choices, completionChoice{Delta: &chatDelta{}, FinishReason: &finishStop})
	c.streamCompletion(completion{
		ID: id, Object: "chat.completion.chunk", Created: now(), Model: c.model,
		SystemFingerprint: fingerprint,
	}, choices, chatUsage(u))
}

// completions is the legacy text completion API.
func (s *Server) completions(c *call) {
	u := c.plan.usage(PromptTokens(c.body))
	id := "cmpl-mock" + strconv.FormatUint(c.id, 10)
	plainUsage := &openAIUsage{PromptTokens: u.prompt, CompletionTokens: u.completion, TotalTokens: u.prompt + u.completion}
	if !c.stream {
		text := CompletionText
		c.writeJSON(completion{
			ID: id, Object: "text_completion", Created: now(), Model: c.model,
			Choices: []completionChoice{{Text: &text, FinishReason: &finishStop}},
			Usage:   plainUsage,
		})
		return
	}
	var choices []completionChoice
	for _, word := range replyWords {
		choices = append(choices, completionChoice{Text: &word})
	}
	choices = append(choices, completionChoice{Text: &emptyText, FinishReason: &finishStop})
	c.streamCompletion(completion{ID: id, Object: "text_completion", Created: now(), Model: c.model}, choices, plainUsage)
}

// streamCompletion streams a chat or text completion: base once with each
// of choices, then, when the client asked for it
// (stream_options.include_usage), a usage chunk without choices. Until then
// every chunk's usage is null, as the real API marks them.
func (c *call) streamCompletion(base completion, choices []completionChoice, u *openAIUsage) {
	includeUsage := gjson.GetBytes(c.body, "stream_options.include_usage").Bool()
	if includeUsage {
		base.Usage = jsonNull
	}
	sse := c.startSSE()
	for _, choice := range choices {
		chunk := base
		chunk.Choices = []completionChoice{choice}
		if sse.event("", chunk) != nil {
			return
		}
	}
	if includeUsage {
		final := base
		final.Choices = []completionChoice{}
		final.Usage = u
		if sse.event("", final) != nil {
			return
		}
	}
	_ = sse.done()
}

type modelList struct {
	Object string  `json:"object"`
	Data   []model `json:"data"`
}

type model struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// mockModels is a fixed, plausible catalogue; created dates are constants
// so the listing never changes between runs.
var mockModels = modelList{Object: "list", Data: []model{
	{"gpt-4o", "model", 1715367049, "system"},
	{"gpt-4o-mini", "model", 1721172741, "system"},
	{"gpt-4.1", "model", 1744316542, "system"},
	{"gpt-4.1-mini", "model", 1744318173, "system"},
	{"o3-mini", "model", 1737146383, "system"},
	{"text-embedding-3-small", "model", 1705948997, "system"},
}}

func (s *Server) models(c *call) { c.writeJSON(mockModels) }
