package provider

// CredentialHeaders are the request headers that carry a provider
// credential: OpenAI's Authorization, Anthropic's x-api-key, Azure's
// api-key and Google's x-goog-api-key. Lowercase, as Envoy sends them.
var CredentialHeaders = [...]string{"authorization", "x-api-key", "api-key", "x-goog-api-key"}
