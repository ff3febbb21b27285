package translate

import "strings"

// FallbackMaxTokens is the Anthropic max_tokens used when an OpenAI request
// sets no limit, the model is not in maxOutputTokens and RequestOptions has
// no DefaultMaxTokens.
const FallbackMaxTokens = 4096

// maxOutputTokens holds each Claude family's output limit, longest prefix
// first. Anthropic requires max_tokens while OpenAI defaults to "as much as
// the model allows", so an OpenAI request without a limit gets the model's.
var maxOutputTokens = []struct {
	prefix string
	tokens int64
}{
	{"claude-opus-4-5", 64000},
	{"claude-opus-4-1", 32000},
	{"claude-opus-4", 32000},
	{"claude-sonnet-4-5", 64000},
	{"claude-sonnet-4", 64000},
	{"claude-haiku-4-5", 64000},
	{"claude-3-7-sonnet", 64000},
	{"claude-3-5-sonnet", 8192},
	{"claude-3-5-haiku", 8192},
	{"claude-3-haiku", 4096},
	{"claude-3-opus", 4096},
}

// defaultMaxTokens picks the Anthropic max_tokens for a request without one.
func defaultMaxTokens(model string, configured int64) int64 {
	for _, e := range maxOutputTokens {
		if strings.HasPrefix(model, e.prefix) {
			return e.tokens
		}
	}
	if configured > 0 {
		return configured
	}
	return FallbackMaxTokens
}
