package provider

import (
	"net/url"
	"strings"
	"unicode/utf8"
)

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

	EndpointGenerateContent       // /v1beta/models/{model}:generateContent (gemini)
	EndpointStreamGenerateContent // /v1beta/models/{model}:streamGenerateContent (gemini)
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

	EndpointGenerateContent:       "generate_content",
	EndpointStreamGenerateContent: "stream_generate_content",
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
	if _, ep, ok := AzurePath(path); ok {
		return OpenAI, ep // Azure OpenAI speaks OpenAI's format
	}
	return OpenAI, EndpointUnknown
}

// Azure is the provider recorded for a call on an Azure OpenAI path
// (AzurePath); its bodies, usage and streams are OpenAI's.
const Azure = "azure"

// maxDeployment bounds a deployment name taken from a path: Azure allows
// 64 characters, and the name goes into every record of the call.
const maxDeployment = 256

// AzurePath reads an Azure OpenAI path (query string allowed; it is
// ignored, api-version travels with it to the upstream):
//
//	/openai/deployments/{deployment}/chat/completions  chat_completions
//	/openai/deployments/{deployment}/completions       completions
//	/openai/deployments/{deployment}/embeddings        embeddings
//	/openai/deployments/{deployment}/…                 unknown (images, audio, …)
//	/openai/responses, /openai/v1/responses            responses
//	/openai/v1/chat/completions, …/completions, …/embeddings
//
// The deployment is percent-decoded; "" for the paths without one (the v1
// API names its model in the body). ok is false for any other path, and
// for a deployment segment that is empty, too long, not UTF-8 or holds a
// control character or an encoded slash, which no Azure deployment has.
func AzurePath(path string) (deployment string, ep Endpoint, ok bool) {
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	rest, found := strings.CutPrefix(path, "/openai/")
	if !found {
		return "", EndpointUnknown, false
	}
	switch rest {
	case "responses", "v1/responses":
		return "", EndpointResponses, true
	case "v1/chat/completions":
		return "", EndpointChatCompletions, true
	case "v1/completions":
		return "", EndpointCompletions, true
	case "v1/embeddings":
		return "", EndpointEmbeddings, true
	}
	rest, found = strings.CutPrefix(rest, "deployments/")
	if !found {
		return "", EndpointUnknown, false
	}
	name, op, found := strings.Cut(rest, "/")
	if !found || op == "" {
		return "", EndpointUnknown, false
	}
	if deployment, ok = deploymentName(name); !ok {
		return "", EndpointUnknown, false
	}
	switch op {
	case "chat/completions":
		ep = EndpointChatCompletions
	case "completions":
		ep = EndpointCompletions
	case "embeddings":
		ep = EndpointEmbeddings
	}
	return deployment, ep, true
}

// deploymentName decodes one path segment and checks it could name a
// deployment.
func deploymentName(seg string) (string, bool) {
	if strings.IndexByte(seg, '%') >= 0 {
		d, err := url.PathUnescape(seg)
		if err != nil {
			return "", false
		}
		seg = d
	}
	if seg == "" || len(seg) > maxDeployment || !utf8.ValidString(seg) {
		return "", false
	}
	for _, r := range seg {
		if r < 0x20 || r == 0x7f || r == '/' {
			return "", false
		}
	}
	return seg, true
}
