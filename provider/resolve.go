package provider

import (
	"regexp"
	"slices"
	"strings"
)

// Resolve maps a request path (query string allowed; it is ignored) to the
// provider that serves it, the wire format its bodies are in, and the
// endpoint. It is Classify plus the providers routed by path (Registered):
//
//	/v1beta/models/{model}:generateContent        gemini, gemini, generate_content
//	/v1beta/models/{model}:streamGenerateContent  gemini, gemini, stream_generate_content
//	/v1beta/models/{model}:countTokens            gemini, gemini, count_tokens
//	/v1beta/models/{model}:embedContent (batch…)  gemini, gemini, embeddings
//	/v1/models/{model}:generateContent (…)        as /v1beta: Gemini's stable API
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
		if strings.HasPrefix(path, "/v1/models/") && geminiStableRE.MatchString(path) {
			// Gemini's stable API: named by the very expression the
			// routes send it to Google with, so that what is checked
			// and priced as gemini is what goes there.
			return Gemini, Gemini, geminiMethods[path[strings.LastIndexByte(path, ':')+1:]]
		}
		format, ep = Classify(path)
		return format, format, ep
	}
	if u.Format == Gemini {
		if _, ep, ok := geminiCall(path); ok {
			return Gemini, Gemini, ep
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

// geminiMethods are the methods of Gemini's models that Tollgate reads,
// and the endpoint each is: generateContent and streamGenerateContent
// (parsed and priced), countTokens (free: recorded with its model, no
// usage) and embedContent, batchEmbedContents (recorded with their model;
// Google's answers carry no token counts, so they cost 0).
var geminiMethods = map[string]Endpoint{
	"generateContent":       EndpointGenerateContent,
	"streamGenerateContent": EndpointStreamGenerateContent,
	"countTokens":           EndpointCountTokens,
	"embedContent":          EndpointEmbeddings,
	"batchEmbedContents":    EndpointEmbeddings,
}

// GeminiStableRoute matches, as a whole path without its query, the calls
// of Gemini's stable API (/v1/models/{model}:{method}, for the methods of
// geminiMethods). Its /v1/models/… paths are OpenAI's too, so these are
// told apart by the method after the colon, which no OpenAI model id ends
// with (a fine-tuned one, ft:…:{id}, ends with its job's id). The data
// plane routes by this expression (Upstream.RouteRegex) and envoy/*.yaml's
// gemini_v1 routes match with the same one (RE2 in both).
const GeminiStableRoute = `^/v1/models/[^/:]+:(generateContent|streamGenerateContent|countTokens|embedContent|batchEmbedContents)$`

var geminiStableRE = regexp.MustCompile(GeminiStableRoute)

// geminiModelPrefixes are the API versions Gemini's model paths come
// under: the beta API (the SDKs' default) and the stable one.
var geminiModelPrefixes = [...]string{"/v1beta/models/", "/v1/models/"}

// GeminiPath reads a Gemini model path, /v1beta/models/{model}:{method} or
// /v1/models/{model}:{method} for a method of geminiMethods (query string
// allowed: alt=sse, key=… stay with the request): the model,
// percent-decoded, and whether the method streams (streamGenerateContent).
// ok is false for any other path and for a model segment that is empty,
// too long, not UTF-8 or holds a control character, a slash or a colon.
func GeminiPath(path string) (model string, stream, ok bool) {
	model, ep, ok := geminiCall(path)
	return model, ep == EndpointStreamGenerateContent, ok
}

// geminiCall is GeminiPath with the method's endpoint.
func geminiCall(path string) (model string, ep Endpoint, ok bool) {
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	var rest string
	found := false
	for _, p := range geminiModelPrefixes {
		if rest, found = strings.CutPrefix(path, p); found {
			break
		}
	}
	if !found {
		return "", EndpointUnknown, false
	}
	i := strings.IndexByte(rest, ':')
	if i < 0 {
		return "", EndpointUnknown, false
	}
	ep, ok = geminiMethods[rest[i+1:]]
	if !ok {
		return "", EndpointUnknown, false
	}
	name, ok := deploymentName(rest[:i])
	if !ok || len(name) > maxGeminiModel || strings.IndexByte(name, ':') >= 0 {
		return "", EndpointUnknown, false
	}
	return name, ep, true
}

// ResolveOn is Resolve for a call sent to the origin of provider name
// itself, with that provider's own paths (/openai/v1/chat/completions on
// api.groq.com), as a mesh sidecar sends an application's calls: the Host
// picks the provider there, and the sidecar's configuration names it
// (x-tollgate-provider). Names are OpenAI, Anthropic (whose
// /v1/chat/completions is its OpenAI-compatible API) and the registered
// providers; ok is false for any other name (Azure's resources are told
// by their paths): such a call is read by its path alone.
func ResolveOn(name, path string) (format string, ep Endpoint, ok bool) {
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	switch name {
	case OpenAI, Anthropic:
		if f, ep := Classify(path); f == Anthropic {
			if name == OpenAI {
				return OpenAI, EndpointUnknown, true // not OpenAI's path: it answers as it will
			}
			return Anthropic, ep, true
		}
		if api, found := strings.CutPrefix(path, "/v1"); found && (api == "" || api[0] == '/') {
			return OpenAI, openAIEndpoint(api), true
		}
		return OpenAI, EndpointUnknown, true
	}
	registered.RLock()
	i := slices.IndexFunc(registered.list, func(u Upstream) bool { return u.Name == name })
	var u Upstream
	if i >= 0 {
		u = registered.list[i]
	}
	registered.RUnlock()
	switch {
	case i < 0:
		return "", EndpointUnknown, false
	case u.Format == Gemini:
		if _, ep, ok := geminiCall(path); ok {
			return Gemini, ep, true
		}
		if compat, found := strings.CutPrefix(path, "/v1beta/openai"); found && strings.HasPrefix(compat, "/") {
			return OpenAI, openAIEndpoint(compat), true
		}
		return Gemini, EndpointUnknown, true
	}
	api, found := strings.CutPrefix(path, u.Prefix)
	if !found || (api != "" && api[0] != '/') {
		return u.Format, EndpointUnknown, true
	}
	return u.Format, openAIEndpoint(api), true
}
