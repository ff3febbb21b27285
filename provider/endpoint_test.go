package provider

import (
	"strings"
	"testing"
)

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
		// Azure OpenAI paths, as Helicone's Azure guide sends them
		// (docs/integrations/azure/curl.mdx: /openai/deployments/NAME/
		// chat/completions?api-version=…): OpenAI's format.
		{"/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21", OpenAI, EndpointChatCompletions},
		{"/openai/deployments/prod-4o/completions", OpenAI, EndpointCompletions},
		{"/openai/deployments/emb/embeddings?api-version=2024-10-21", OpenAI, EndpointEmbeddings},
		{"/openai/responses?api-version=2025-04-01-preview", OpenAI, EndpointResponses},
		{"/openai/deployments/dalle/images/generations", OpenAI, EndpointUnknown},
	}
	for _, tt := range tests {
		prov, ep := Classify(tt.path)
		if prov != tt.provider || ep != tt.ep {
			t.Errorf("Classify(%q) = (%q, %v), want (%q, %v)", tt.path, prov, ep, tt.provider, tt.ep)
		}
	}
}

// Helicone forwards the request's own path and query to the
// Helicone-OpenAI-Api-Base origin (worker/src/lib/providerCalls/call.ts,
// callProvider) and records a model read from the path when the body names
// none (worker/src/lib/dbLogger/DBLoggable.ts, getModelFromRequest, which
// reads /engines/{name} and models/{name}); Tollgate reads an Azure path's
// deployment for the same purpose.
func TestAzurePath(t *testing.T) {
	tests := []struct {
		path       string
		deployment string
		ep         Endpoint
		ok         bool
	}{
		{"/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21", "prod-4o", EndpointChatCompletions, true},
		{"/openai/deployments/prod-4o/completions", "prod-4o", EndpointCompletions, true},
		{"/openai/deployments/text.emb_3/embeddings", "text.emb_3", EndpointEmbeddings, true},
		{"/openai/deployments/dalle/images/generations?api-version=1", "dalle", EndpointUnknown, true},
		{"/openai/deployments/my%20dep/chat/completions", "my dep", EndpointChatCompletions, true},
		{"/openai/responses?api-version=2025-04-01-preview", "", EndpointResponses, true},
		{"/openai/v1/responses", "", EndpointResponses, true},
		{"/openai/v1/chat/completions", "", EndpointChatCompletions, true},
		{"/openai/v1/completions", "", EndpointCompletions, true},
		{"/openai/v1/embeddings", "", EndpointEmbeddings, true},
		{"/openai/deployments/prod-4o/chat/completions/", "prod-4o", EndpointUnknown, true},
		{"/openai/deployments//chat/completions", "", EndpointUnknown, false},
		{"/openai/deployments/prod-4o", "", EndpointUnknown, false},
		{"/openai/deployments/prod-4o/", "", EndpointUnknown, false},
		{"/openai/deployments/a%2Fb/chat/completions", "", EndpointUnknown, false},
		{"/openai/deployments/a%0Ab/chat/completions", "", EndpointUnknown, false},
		{"/openai/deployments/a%zz/chat/completions", "", EndpointUnknown, false},
		{"/openai/deployments/%FF/chat/completions", "", EndpointUnknown, false},
		{"/openai/deployments/" + strings.Repeat("d", 257) + "/chat/completions", "", EndpointUnknown, false},
		{"/openai/models", "", EndpointUnknown, false},
		{"/OPENAI/deployments/x/chat/completions", "", EndpointUnknown, false},
		{"/v1/openai/deployments/x/chat/completions", "", EndpointUnknown, false},
		{"/v1/chat/completions", "", EndpointUnknown, false},
		{"?/openai/responses", "", EndpointUnknown, false},
	}
	for _, tt := range tests {
		d, ep, ok := AzurePath(tt.path)
		if d != tt.deployment || ep != tt.ep || ok != tt.ok {
			t.Errorf("AzurePath(%q) = (%q, %v, %v), want (%q, %v, %v)", tt.path, d, ep, ok, tt.deployment, tt.ep, tt.ok)
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
