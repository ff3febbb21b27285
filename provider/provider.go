// Package provider knows the wire formats of the LLM APIs Tollgate sits in
// front of (OpenAI and Anthropic): which endpoint a path is, what a request
// asks for, how many tokens a response or a stream used, and what that costs.
//
// Everything here runs on every proxied call, so bodies are read with gjson
// (no reflection, no intermediate maps) and the SSE parser reuses its buffers.
package provider

import "errors"

// Provider names, as used in Classify results, price tables and logs.
const (
	OpenAI    = "openai"
	Anthropic = "anthropic"
)

// The public origins of OpenAI's and Anthropic's APIs (the other built-in
// providers' are in upstreams.go).
const (
	OpenAIOrigin    = "https://api.openai.com"
	AnthropicOrigin = "https://api.anthropic.com"
)

// PublicOrigin is the public origin of OpenAI's or Anthropic's API for
// that provider name, "" for any other.
func PublicOrigin(name string) string {
	switch name {
	case OpenAI:
		return OpenAIOrigin
	case Anthropic:
		return AnthropicOrigin
	}
	return ""
}

// ErrNotJSONObject is wrapped by the errors of ParseRequest and
// EnsureStreamUsage; its text is fit to send back to the client in a 400.
var ErrNotJSONObject = errors.New("request body is not a JSON object")

// ErrInvalidJSON is wrapped by the error ParseResponse returns for a body
// that is not JSON (an HTML error page from a load balancer, say).
var ErrInvalidJSON = errors.New("response body is not valid JSON")
