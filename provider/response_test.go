package provider

import (
	"errors"
	"testing"
)

func TestParseResponse(t *testing.T) {
	tests := []struct {
		name      string
		provider  string
		file      string // from testdata/, or
		body      string // inline when file is empty
		wantUsage Usage
		wantModel string
		wantErr   bool
	}{
		{name: "openai chat with cache and reasoning", provider: OpenAI, file: "resp_openai_chat.json",
			wantUsage: Usage{PromptTokens: 2318, CompletionTokens: 412, CachedTokens: 2048, ReasoningTokens: 384},
			wantModel: "o4-mini-2025-04-16"},
		{name: "openai completions", provider: OpenAI, file: "resp_openai_completions.json",
			wantUsage: Usage{PromptTokens: 5, CompletionTokens: 7}, wantModel: "gpt-3.5-turbo-instruct"},
		{name: "openai embeddings", provider: OpenAI, file: "resp_openai_embeddings.json",
			wantUsage: Usage{PromptTokens: 17}, wantModel: "text-embedding-3-small"},
		{name: "openai responses api", provider: OpenAI, file: "resp_openai_responses.json",
			wantUsage: Usage{PromptTokens: 1536, CompletionTokens: 203, CachedTokens: 1280, ReasoningTokens: 192},
			wantModel: "gpt-5-mini-2025-08-07"},
		{name: "anthropic messages with cache read and write", provider: Anthropic, file: "resp_anthropic_messages.json",
			wantUsage: Usage{PromptTokens: 42 + 1800 + 12000, CompletionTokens: 356, CachedTokens: 12000, CacheWriteTokens: 1800},
			wantModel: "claude-sonnet-4-5-20250929"},
		{name: "anthropic count_tokens", provider: Anthropic, file: "resp_anthropic_count_tokens.json",
			wantUsage: Usage{PromptTokens: 2095}},
		{name: "anthropic error has no usage", provider: Anthropic, file: "resp_anthropic_error.json"},
		{name: "openai error has no usage", provider: OpenAI,
			body: `{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}`},
		{name: "models list", provider: OpenAI, body: `{"object":"list","data":[{"id":"gpt-4o","object":"model"}]}`},
		{name: "usage null", provider: OpenAI, body: `{"model":"gpt-4o","usage":null}`, wantModel: "gpt-4o"},
		{name: "embedding server sending only total", provider: OpenAI, body: `{"usage":{"total_tokens":9}}`,
			wantUsage: Usage{PromptTokens: 9}},
		{name: "negative counts read as zero", provider: OpenAI, body: `{"usage":{"prompt_tokens":-5,"completion_tokens":3}}`,
			wantUsage: Usage{CompletionTokens: 3}},
		{name: "string counts ignored", provider: OpenAI, body: `{"usage":{"prompt_tokens":"5"}}`},
		{name: "unknown provider read as openai", provider: "", body: `{"usage":{"input_tokens":10,"output_tokens":2}}`,
			wantUsage: Usage{PromptTokens: 10, CompletionTokens: 2}},
		{name: "huge anthropic counts saturate", provider: Anthropic,
			body:      `{"usage":{"input_tokens":9223372036854775807,"cache_read_input_tokens":9223372036854775807}}`,
			wantUsage: Usage{PromptTokens: 9223372036854775807, CachedTokens: 9223372036854775807}},
		{name: "array body", provider: OpenAI, body: `[1,2]`},
		{name: "empty body", provider: OpenAI, body: ``},
		{name: "html error page", provider: OpenAI, body: `<html><body>502 Bad Gateway</body></html>`, wantErr: true},
		{name: "truncated json", provider: Anthropic, body: `{"usage":{"input_tokens":1`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := []byte(tt.body)
			if tt.file != "" {
				body = testdata(t, tt.file)
			}
			u, model, err := ParseResponse(tt.provider, body)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalidJSON) {
					t.Fatalf("err = %v, want ErrInvalidJSON", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if u != tt.wantUsage {
				t.Errorf("usage = %+v, want %+v", u, tt.wantUsage)
			}
			if model != tt.wantModel {
				t.Errorf("model = %q, want %q", model, tt.wantModel)
			}
		})
	}
}
