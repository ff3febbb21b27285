package tokenlimit

import (
	"strings"
	"testing"
)

func TestCountPrompt(t *testing.T) {
	tests := []struct {
		name, body, model string
		want              int
		ok                bool
	}{
		// OpenAI's count for this chat (o200k_base): 15 tokens of text, 2
		// roles, 3 a message, 3 of reply priming.
		{"openai chat", `{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Write a haiku about recursion in programming."}]}`, "", 26, true},
		{"model given", `{"messages":[{"role":"user","content":"hello"}]}`, "gpt-4o", 1 + 1 + 3 + 3, true},
		// Claude is estimated: "hello there" is 11 characters, 3 tokens.
		{"anthropic", `{"model":"claude-opus-4-1","system":"hello there","messages":[]}`, "", 3 + 3, true},
		{"no prompt", `{"model":"gpt-4o"}`, "", 0, false},
		{"not json", `nope`, "", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, ok := CountPrompt([]byte(tt.body), tt.model)
			if n != tt.want || ok != tt.ok {
				t.Errorf("CountPrompt = %d, %v, want %d, %v", n, ok, tt.want, tt.ok)
			}
		})
	}
}

// A prompt past exactWork is estimated, so the count's work stays bounded.
func TestCountPromptBounded(t *testing.T) {
	text := strings.Repeat("abcd", exactWork/4+1)
	n, ok := CountPrompt([]byte(`{"model":"gpt-4o","messages":[{"role":"user","content":"`+text+`"}]}`), "")
	if want := len(text)/4 + 1 + 3 + 3; !ok || n != want {
		t.Errorf("CountPrompt = %d, %v, want the estimate %d", n, ok, want)
	}
}
