package provider

import "testing"

func TestModelProvider(t *testing.T) {
	// A table where an operator listed a house alias under OpenAI, and one
	// name under both providers: the table decides the first, the
	// prefixes (or nothing) the second.
	table := DefaultPrices().WithOverrides(map[string]map[string]Price{
		OpenAI:    {"house-chat": {Input: 1}, "shared-name": {Input: 1}},
		Anthropic: {"shared-name": {Input: 1}, "gpt-by-anthropic": {Input: 1}},
	})
	tests := []struct{ model, want string }{
		{"claude-sonnet-4-5", Anthropic},          // listed under anthropic
		{"Claude-Sonnet-4-5", Anthropic},          // case ignored
		{" gpt-4o ", OpenAI},                      // listed, spaces trimmed
		{"claude-sonnet-4-5-20250929", Anthropic}, // a snapshot: the prefix
		{"claude-future-9", Anthropic},
		{"gpt-4o-2024-08-06", OpenAI},
		{"gpt-6", OpenAI},
		{"chatgpt-4o-latest", OpenAI},
		{"o1", OpenAI},
		{"o3-mini", OpenAI},
		{"o4-mini-2025-04-16", OpenAI},
		{"text-embedding-3-small", OpenAI},
		{"house-chat", OpenAI},          // the table alone knows it
		{"gpt-by-anthropic", Anthropic}, // the table wins over the prefix
		{"shared-name", ""},             // under both: the table cannot tell
		{"o3x", ""},                     // a prefix is a whole word
		{"claudette", ""},
		{"gemini-2.5-pro", ""},
		{"llama-3.1-70b", ""},
		{"anthropic/claude-sonnet-4-5", ""}, // a router's name, not Anthropic's
		{"", ""},
	}
	for _, tt := range tests {
		if got := table.ModelProvider(tt.model); got != tt.want {
			t.Errorf("ModelProvider(%q) = %q, want %q", tt.model, got, tt.want)
		}
	}
	var none *PriceTable
	if got := none.ModelProvider("claude-sonnet-4-5"); got != Anthropic {
		t.Errorf("nil table: ModelProvider = %q, want the prefix's %q", got, Anthropic)
	}
}
