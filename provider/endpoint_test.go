package provider

import "testing"

func TestClassify(t *testing.T) {
	tests := []struct {
		path     string
		provider string
		ep       Endpoint
	}{
		{"/v1/chat/completions", OpenAI, EndpointChatCompletions},
		{"/v1/chat/completions?api-version=2024-06-01", OpenAI, EndpointChatCompletions},
		{"/v1/completions", OpenAI, EndpointCompletions},
		{"/v1/embeddings", OpenAI, EndpointEmbeddings},
		{"/v1/responses", OpenAI, EndpointResponses},
		{"/v1/models", OpenAI, EndpointModels},
		{"/v1/models?limit=20", OpenAI, EndpointModels},
		{"/v1/models/gpt-4o", OpenAI, EndpointModels},
		{"/v1/messages", Anthropic, EndpointMessages},
		{"/v1/messages?beta=true", Anthropic, EndpointMessages},
		{"/v1/messages/count_tokens", Anthropic, EndpointCountTokens},
		{"/v1/messages/count_tokens?beta=true", Anthropic, EndpointCountTokens},
		{"/v1/messages/batches", Anthropic, EndpointUnknown},
		{"/v1/responses/resp_123", OpenAI, EndpointUnknown},
		{"/v1/chat/completions/", OpenAI, EndpointUnknown},
		{"/v1/modelsx", OpenAI, EndpointUnknown},
		{"/V1/chat/completions", OpenAI, EndpointUnknown},
		{"/v1/audio/speech", OpenAI, EndpointUnknown},
		{"/", OpenAI, EndpointUnknown},
		{"", OpenAI, EndpointUnknown},
		{"?/v1/messages", OpenAI, EndpointUnknown},
	}
	for _, tt := range tests {
		prov, ep := Classify(tt.path)
		if prov != tt.provider || ep != tt.ep {
			t.Errorf("Classify(%q) = (%q, %v), want (%q, %v)", tt.path, prov, ep, tt.provider, tt.ep)
		}
	}
}

func TestEndpointString(t *testing.T) {
	tests := []struct {
		ep   Endpoint
		want string
	}{
		{EndpointUnknown, "unknown"},
		{EndpointChatCompletions, "chat_completions"},
		{EndpointCompletions, "completions"},
		{EndpointEmbeddings, "embeddings"},
		{EndpointResponses, "responses"},
		{EndpointModels, "models"},
		{EndpointMessages, "messages"},
		{EndpointCountTokens, "count_tokens"},
		{Endpoint(-1), "unknown"},
		{Endpoint(99), "unknown"},
	}
	for _, tt := range tests {
		if got := tt.ep.String(); got != tt.want {
			t.Errorf("Endpoint(%d).String() = %q, want %q", int(tt.ep), got, tt.want)
		}
	}
}
