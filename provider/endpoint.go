package provider

import "strings"

// Endpoint is the API operation a request path names.
type Endpoint int

const (
	EndpointUnknown         Endpoint = iota
	EndpointChatCompletions          // /v1/chat/completions (openai)
	EndpointCompletions              // /v1/completions (openai)
	EndpointEmbeddings               // /v1/embeddings (openai)
	EndpointResponses                // /v1/responses (openai)
	EndpointModels                   // /v1/models and /v1/models/... (openai)
	EndpointMessages                 // /v1/messages (anthropic)
	EndpointCountTokens              // /v1/messages/count_tokens (anthropic)
)

// endpointNames are snake_case so they can go straight into metric labels
// and log fields.
var endpointNames = [...]string{
	EndpointUnknown:         "unknown",
	EndpointChatCompletions: "chat_completions",
	EndpointCompletions:     "completions",
	EndpointEmbeddings:      "embeddings",
	EndpointResponses:       "responses",
	EndpointModels:          "models",
	EndpointMessages:        "messages",
	EndpointCountTokens:     "count_tokens",
}

// String returns the endpoint's label; out-of-range values read "unknown"
// so a label set never grows past the known endpoints.
func (e Endpoint) String() string {
	if e < 0 || int(e) >= len(endpointNames) {
		return endpointNames[EndpointUnknown]
	}
	return endpointNames[e]
}

// Classify maps a request path (query string allowed; it is ignored) to its
// provider and endpoint. Unknown paths return (OpenAI, EndpointUnknown):
// they are passed through to the OpenAI-compatible upstream and logged.
func Classify(path string) (provider string, ep Endpoint) {
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	switch path {
	case "/v1/chat/completions":
		return OpenAI, EndpointChatCompletions
	case "/v1/completions":
		return OpenAI, EndpointCompletions
	case "/v1/embeddings":
		return OpenAI, EndpointEmbeddings
	case "/v1/responses":
		return OpenAI, EndpointResponses
	case "/v1/models":
		return OpenAI, EndpointModels
	case "/v1/messages":
		return Anthropic, EndpointMessages
	case "/v1/messages/count_tokens":
		return Anthropic, EndpointCountTokens
	}
	if strings.HasPrefix(path, "/v1/models/") {
		return OpenAI, EndpointModels
	}
	if strings.HasPrefix(path, "/v1/messages/") {
		// Routed to Anthropic like every path under /v1/messages (the
		// Envoy routes' path_separated_prefix), e.g. message batches.
		return Anthropic, EndpointUnknown
	}
	return OpenAI, EndpointUnknown
}
