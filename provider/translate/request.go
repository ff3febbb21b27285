package translate

import "errors"

// RequestOptions steer a request translation.
type RequestOptions struct {
	// Model replaces the client's model: the fallback entry's model.
	Model string
	// DefaultMaxTokens is Anthropic's max_tokens for an OpenAI request
	// without a limit whose model is not in the built-in table (0 means
	// FallbackMaxTokens).
	DefaultMaxTokens int64
	// LegacyMaxTokens writes OpenAI's max_tokens instead of
	// max_completion_tokens, for OpenAI-compatible servers that only know
	// the older name. OpenAI's reasoning models refuse max_tokens.
	LegacyMaxTokens bool
}

// Request is a translated request body and what the answer's translation
// needs to know about it.
type Request struct {
	Body   []byte
	Stream bool
	// IncludeUsage: the client wants usage in its stream (OpenAI
	// stream_options.include_usage, or always for an Anthropic client).
	IncludeUsage bool
}

var errNoModel = errors.New("translate: RequestOptions.Model is empty")
