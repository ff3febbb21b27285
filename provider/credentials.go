package provider

// CredentialHeaders are the request headers that carry a provider
// credential: OpenAI's Authorization, Anthropic's x-api-key, Azure's
// api-key and Google's x-goog-api-key. Lowercase, as Envoy sends them.
var CredentialHeaders = [...]string{"authorization", "x-api-key", "api-key", "x-goog-api-key"}

// CredentialHeader is where a provider reads its key on the wire, and
// whether it goes there as "Bearer <key>": Anthropic's x-api-key, Azure
// OpenAI's api-key, Gemini's native API's x-goog-api-key (which Google
// also takes in place of the key= query parameter), and Authorization for
// OpenAI and every OpenAI-compatible API, Gemini's own included. name is
// the provider (a record's), format the wire format of the call's path.
func CredentialHeader(name, format string) (header string, bearer bool) {
	switch {
	case name == Azure:
		return "api-key", false
	case format == Anthropic:
		return "x-api-key", false
	case format == Gemini:
		return "x-goog-api-key", false
	}
	return "authorization", true
}
