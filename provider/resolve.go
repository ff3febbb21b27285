package provider

import "strings"

// Resolve maps a request path (query string allowed; it is ignored) to the
// provider that serves it, the wire format its bodies are in, and the
// endpoint. It is Classify plus the providers routed by path (Registered):
//
//	/v1beta/models/{model}:generateContent        gemini, gemini, generate_content
//	/v1beta/models/{model}:streamGenerateContent  gemini, gemini, stream_generate_content
//	/v1beta/openai/chat/completions (…)           gemini, openai, chat_completions
//	/together/v1/chat/completions                 together, openai, chat_completions
//	/groq/openai/v1/chat/completions              groq, openai, chat_completions
//
// An OpenAI-compatible provider's path is read as OpenAI's once its route
// and its API prefix are taken off; a path outside the prefix is that
// provider's with an unknown endpoint. Azure paths give (OpenAI, OpenAI, …):
// the processor names Azure itself. For every other path name == format.
func Resolve(path string) (name, format string, ep Endpoint) {
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	u, rest, ok := routeOf(path)
	if !ok {
		format, ep = Classify(path)
		return format, format, ep
	}
	if u.Format == Gemini {
		if _, stream, ok := GeminiPath(path); ok {
			if stream {
				return Gemini, Gemini, EndpointStreamGenerateContent
			}
			return Gemini, Gemini, EndpointGenerateContent
		}
		if compat, found := strings.CutPrefix(path, "/v1beta/openai"); found && strings.HasPrefix(compat, "/") {
			return Gemini, OpenAI, openAIEndpoint(compat)
		}
		return Gemini, Gemini, EndpointUnknown
	}
	api, found := strings.CutPrefix(rest, u.Prefix)
	if !found || (api != "" && api[0] != '/') {
		return u.Name, u.Format, EndpointUnknown
	}
	return u.Name, u.Format, openAIEndpoint(api)
}

// openAIEndpoint is the endpoint of an OpenAI path after its API prefix
// ("/chat/completions" for /v1/chat/completions), read as Classify reads
// OpenAI's paths; without building the whole path, as this runs on every
// call.
func openAIEndpoint(rest string) Endpoint {
	switch rest {
	case "/chat/completions":
		return EndpointChatCompletions
	case "/completions":
		return EndpointCompletions
	case "/embeddings":
		return EndpointEmbeddings
	case "/responses":
		return EndpointResponses
	case "/models":
		return EndpointModels
	}
	if strings.HasPrefix(rest, "/models/") {
		return EndpointModels
	}
	return EndpointUnknown
}

// maxGeminiModel bounds a model name taken from a Gemini path; it goes
// into every record of the call.
const maxGeminiModel = 256

// GeminiPath reads a Gemini generate path, /v1beta/models/{model}:generateContent
// or …:streamGenerateContent (query string allowed: alt=sse, key=… stay
// with the request): the model, percent-decoded, and whether the method
// streams. ok is false for any other path and for a model segment that is
// empty, too long, not UTF-8 or holds a control character or a slash.
func GeminiPath(path string) (model string, stream, ok bool) {
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	rest, found := strings.CutPrefix(path, "/v1beta/models/")
	if !found {
		return "", false, false
	}
	i := strings.LastIndexByte(rest, ':')
	if i < 0 {
		return "", false, false
	}
	switch rest[i+1:] {
	case "generateContent":
	case "streamGenerateContent":
		stream = true
	default:
		return "", false, false
	}
	name, ok := deploymentName(rest[:i])
	if !ok || len(name) > maxGeminiModel {
		return "", false, false
	}
	return name, stream, true
}
