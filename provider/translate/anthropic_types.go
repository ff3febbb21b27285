package translate

import "encoding/json"

// The Anthropic Messages request as this package writes it. Field order
// follows Anthropic's documentation so golden files read naturally.
type anRequest struct {
	Model         string        `json:"model"`
	System        any           `json:"system,omitempty"` // string or []anBlock
	Messages      []anMessage   `json:"messages"`
	MaxTokens     int64         `json:"max_tokens"`
	StopSequences []string      `json:"stop_sequences,omitempty"`
	Temperature   *float64      `json:"temperature,omitempty"`
	TopP          *float64      `json:"top_p,omitempty"`
	Stream        bool          `json:"stream,omitempty"`
	Metadata      *anMetadata   `json:"metadata,omitempty"`
	Tools         []anTool      `json:"tools,omitempty"`
	ToolChoice    *anToolChoice `json:"tool_choice,omitempty"`
}

type anMetadata struct {
	UserID string `json:"user_id"`
}

type anMessage struct {
	Role    string `json:"role"`
	Content any    `json:"content"` // string or []anBlock
}

// anBlock is every content block kind this package writes; omitempty keeps
// each kind to its own fields.
type anBlock struct {
	Type      string          `json:"type"`
	Text      *string         `json:"text,omitempty"`
	Source    *anSource       `json:"source,omitempty"`
	ID        string          `json:"id,omitempty"`
	Name      string          `json:"name,omitempty"`
	Input     json.RawMessage `json:"input,omitempty"`
	ToolUseID string          `json:"tool_use_id,omitempty"`
	Content   any             `json:"content,omitempty"` // tool_result: string or []anBlock
}

type anSource struct {
	Type      string `json:"type"` // base64 or url
	MediaType string `json:"media_type,omitempty"`
	Data      string `json:"data,omitempty"`
	URL       string `json:"url,omitempty"`
}

type anTool struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	InputSchema json.RawMessage `json:"input_schema"`
}

func textBlock(s string) anBlock { return anBlock{Type: "text", Text: &s} }

type anToolChoice struct {
	Type                   string `json:"type"`
	Name                   string `json:"name,omitempty"`
	DisableParallelToolUse bool   `json:"disable_parallel_tool_use,omitempty"`
}
