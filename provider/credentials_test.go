package provider

import "testing"

// TestCredentialHeader: each provider's key goes where that provider reads
// it, whatever header the client used.
func TestCredentialHeader(t *testing.T) {
	for _, tt := range []struct {
		name, format, header string
		bearer               bool
	}{
		{OpenAI, OpenAI, "authorization", true},
		{Anthropic, Anthropic, "x-api-key", false},
		{Azure, OpenAI, "api-key", false},
		{Gemini, Gemini, "x-goog-api-key", false},
		{Gemini, OpenAI, "authorization", true}, // /v1beta/openai/…
		{Together, OpenAI, "authorization", true},
		{Groq, OpenAI, "authorization", true},
		{"mistral", OpenAI, "authorization", true},
	} {
		h, bearer := CredentialHeader(tt.name, tt.format)
		if h != tt.header || bearer != tt.bearer {
			t.Errorf("CredentialHeader(%s, %s) = %s %v, want %s %v", tt.name, tt.format, h, bearer, tt.header, tt.bearer)
		}
	}
}
