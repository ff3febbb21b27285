package mockprovider

import "strconv"

// OpenAI Responses API wire types.

type responseObject struct {
	ID                string          `json:"id"`
	Object            string          `json:"object"`
	CreatedAt         int64           `json:"created_at"`
	Status            string          `json:"status"`
	Model             string          `json:"model"`
	Output            []responseItem  `json:"output"`
	Error             any             `json:"error"`
	IncompleteDetails any             `json:"incomplete_details"`
	Usage             *responsesUsage `json:"usage"`
}

type responseItem struct {
	Type    string         `json:"type"`
	ID      string         `json:"id"`
	Status  string         `json:"status"`
	Role    string         `json:"role"`
	Content []responsePart `json:"content"`
}

type responsePart struct {
	Type        string `json:"type"`
	Text        string `json:"text"`
	Annotations []any  `json:"annotations"`
}

type responsesUsage struct {
	InputTokens         int64                  `json:"input_tokens"`
	InputTokensDetails  responsesInputDetails  `json:"input_tokens_details"`
	OutputTokens        int64                  `json:"output_tokens"`
	OutputTokensDetails responsesOutputDetails `json:"output_tokens_details"`
	TotalTokens         int64                  `json:"total_tokens"`
}

type responsesInputDetails struct {
	CachedTokens int64 `json:"cached_tokens"`
}

type responsesOutputDetails struct {
	ReasoningTokens int64 `json:"reasoning_tokens"`
}

// responsesEvent is every event of a Responses stream; each type fills its
// own fields. Indexes are pointers because 0 is a real index that must be
// sent, while events without one must not carry it.
type responsesEvent struct {
	Type           string          `json:"type"`
	SequenceNumber int             `json:"sequence_number"`
	Response       *responseObject `json:"response,omitempty"`
	OutputIndex    *int            `json:"output_index,omitempty"`
	ItemID         string          `json:"item_id,omitempty"`
	ContentIndex   *int            `json:"content_index,omitempty"`
	Item           *responseItem   `json:"item,omitempty"`
	Part           *responsePart   `json:"part,omitempty"`
	Delta          string          `json:"delta,omitempty"`
	Text           *string         `json:"text,omitempty"`
}

var zeroIndex = 0

func (s *Server) responses(c *call) {
	u := c.plan.usage(PromptTokens(c.body))
	n := strconv.FormatUint(c.id, 10)
	itemID := "msg_mock" + n
	done := responseObject{
		ID: "resp_mock" + n, Object: "response", CreatedAt: now(), Status: "completed", Model: c.model,
		Output: []responseItem{{
			Type: "message", ID: itemID, Status: "completed", Role: "assistant",
			Content: []responsePart{{Type: "output_text", Text: CompletionText, Annotations: noItems}},
		}},
		Usage: &responsesUsage{
			InputTokens:         u.prompt,
			InputTokensDetails:  responsesInputDetails{CachedTokens: u.cached},
			OutputTokens:        u.completion,
			OutputTokensDetails: responsesOutputDetails{ReasoningTokens: u.reasoning},
			TotalTokens:         u.prompt + u.completion,
		},
	}
	if !c.stream {
		c.writeJSON(done)
		return
	}

	pending := done
	pending.Status, pending.Output, pending.Usage = "in_progress", []responseItem{}, nil
	emptyItem := responseItem{Type: "message", ID: itemID, Status: "in_progress", Role: "assistant", Content: []responsePart{}}
	emptyPart := responsePart{Type: "output_text", Text: "", Annotations: noItems}
	fullPart := done.Output[0].Content[0]
	text := CompletionText

	sse := c.startSSE()
	seq := 0
	send := func(e responsesEvent) bool {
		e.SequenceNumber = seq
		seq++
		return sse.event(e.Type, e) == nil
	}
	inItem := func(e responsesEvent) responsesEvent {
		e.OutputIndex, e.ItemID, e.ContentIndex = &zeroIndex, itemID, &zeroIndex
		return e
	}
	ok := send(responsesEvent{Type: "response.created", Response: &pending}) &&
		send(responsesEvent{Type: "response.in_progress", Response: &pending}) &&
		send(responsesEvent{Type: "response.output_item.added", OutputIndex: &zeroIndex, Item: &emptyItem}) &&
		send(inItem(responsesEvent{Type: "response.content_part.added", Part: &emptyPart}))
	for _, word := range replyWords {
		ok = ok && send(inItem(responsesEvent{Type: "response.output_text.delta", Delta: word}))
	}
	_ = ok &&
		send(inItem(responsesEvent{Type: "response.output_text.done", Text: &text})) &&
		send(inItem(responsesEvent{Type: "response.content_part.done", Part: &fullPart})) &&
		send(responsesEvent{Type: "response.output_item.done", OutputIndex: &zeroIndex, Item: &done.Output[0]}) &&
		send(responsesEvent{Type: "response.completed", Response: &done})
}
