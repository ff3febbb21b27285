package mockprovider_test

import (
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/mockprovider"
)

func TestCompletionTokensMatchesText(t *testing.T) {
	if got := len(strings.Fields(mockprovider.CompletionText)); got != mockprovider.CompletionTokens {
		t.Fatalf("CompletionText has %d words, CompletionTokens = %d", got, mockprovider.CompletionTokens)
	}
}

func TestPromptTokens(t *testing.T) {
	tests := []struct {
		name string
		body string
		want int64
	}{
		{"chat string content", `{"model":"m","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hello there  world"}]}`, 5},
		{"chat content parts", `{"messages":[{"role":"user","content":[{"type":"text","text":"one two"},{"type":"image_url","image_url":{"url":"http://x"}}]}]}`, 2},
		{"assistant without content", `{"messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"a"}]},{"role":"user","content":"ok"}]}`, 1},
		{"anthropic system blocks", `{"system":[{"type":"text","text":"you are terse"}],"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}`, 4},
		{"anthropic system string and tool result", `{"system":"sys","messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"forty two"}]}]}`, 3},
		{"legacy prompt string", `{"prompt":"Say this is a test"}`, 5},
		{"legacy prompt list", `{"prompt":["a b","c"]}`, 3},
		{"embedding batch", `{"input":["first text","second"]}`, 3},
		{"embedding token array", `{"input":[101,2023,102]}`, 3},
		{"responses input and instructions", `{"instructions":"be kind","input":[{"role":"user","content":[{"type":"input_text","text":"what is up"}]}]}`, 5},
		{"responses input string", `{"input":"tell me a story"}`, 4},
		{"escaped whitespace", `{"prompt":"a\nb\tc"}`, 3},
		{"unicode", `{"prompt":"héllo wörld\u00a0again"}`, 3},
		{"nothing to count", `{"model":"m"}`, 1},
		{"other fields ignored", `{"model":"many words here","user":"u v w","prompt":"x"}`, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mockprovider.PromptTokens([]byte(tt.body)); got != tt.want {
				t.Fatalf("PromptTokens = %d, want %d", got, tt.want)
			}
		})
	}
}
