package mockprovider

import "strconv"

// Anthropic Messages API wire types.

type anthropicMessage struct {
	ID           string         `json:"id"`
	Type         string         `json:"type"`
	Role         string         `json:"role"`
	Model        string         `json:"model"`
	Content      any            `json:"content"` // []anthropicBlock or []anthropicToolUse
	StopReason   *string        `json:"stop_reason"`
	StopSequence *string        `json:"stop_sequence"`
	Usage        anthropicUsage `json:"usage"`
}

type anthropicBlock struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type anthropicUsage struct {
	InputTokens              int64 `json:"input_tokens"`
	CacheCreationInputTokens int64 `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int64 `json:"cache_read_input_tokens"`
	OutputTokens             int64 `json:"output_tokens"`
}

// anthropicEvent is every event of a Messages stream; each type fills its
// own fields. Index is a pointer because block 0 must be sent as 0.
type anthropicEvent struct {
	Type         string               `json:"type"`
	Message      *anthropicMessage    `json:"message,omitempty"`
	Index        *int                 `json:"index,omitempty"`
	ContentBlock any                  `json:"content_block,omitempty"` // *anthropicBlock or *anthropicToolUse
	Delta        any                  `json:"delta,omitempty"`
	Usage        *anthropicDeltaUsage `json:"usage,omitempty"`
}

type anthropicTextDelta struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type anthropicStopDelta struct {
	StopReason   string  `json:"stop_reason"`
	StopSequence *string `json:"stop_sequence"`
}

type anthropicDeltaUsage struct {
	OutputTokens int64 `json:"output_tokens"`
}

var endTurn = "end_turn"

func (s *Server) messages(c *call) {
	if s.messagesToolUse(c) { // tools.go
		return
	}
	u := c.plan.usage(PromptTokens(c.body))
	msg := anthropicMessage{
		ID: "msg_mock" + strconv.FormatUint(c.id, 10), Type: "message", Role: "assistant", Model: c.model,
		Content:    []anthropicBlock{{Type: "text", Text: CompletionText}},
		StopReason: &endTurn,
		Usage: anthropicUsage{
			InputTokens:              u.prompt,
			CacheCreationInputTokens: u.cacheWrite,
			CacheReadInputTokens:     u.cached,
			OutputTokens:             u.completion,
		},
	}
	if !c.stream {
		c.writeJSON(msg)
		return
	}

	// message_start carries the input side of usage and an output count of
	// 1, as the real stream does; message_delta carries the final output.
	start := msg
	start.Content, start.StopReason = []anthropicBlock{}, nil
	start.Usage.OutputTokens = 1
	sse := c.startSSE()
	send := func(e anthropicEvent) bool { return sse.event(e.Type, e) == nil }
	ok := send(anthropicEvent{Type: "message_start", Message: &start}) &&
		send(anthropicEvent{Type: "content_block_start", Index: &zeroIndex, ContentBlock: &anthropicBlock{Type: "text"}}) &&
		send(anthropicEvent{Type: "ping"})
	for _, word := range replyWords {
		ok = ok && send(anthropicEvent{Type: "content_block_delta", Index: &zeroIndex, Delta: anthropicTextDelta{Type: "text_delta", Text: word}})
	}
	_ = ok &&
		send(anthropicEvent{Type: "content_block_stop", Index: &zeroIndex}) &&
		send(anthropicEvent{Type: "message_delta", Delta: anthropicStopDelta{StopReason: endTurn}, Usage: &anthropicDeltaUsage{OutputTokens: u.completion}}) &&
		send(anthropicEvent{Type: "message_stop"})
}

type tokenCount struct {
	InputTokens int64 `json:"input_tokens"`
}

func (s *Server) countTokens(c *call) {
	c.writeJSON(tokenCount{InputTokens: PromptTokens(c.body)})
}
