package provider

import (
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/provider/tokens"
)

// streamResult is everything a StreamAccumulator reports, for comparisons.
type streamResult struct {
	Usage     Usage
	Model     string
	Text      string
	Malformed int
}

func accumulate(provider string, chunks ...[]byte) streamResult {
	a := NewStreamAccumulator(provider)
	for _, c := range chunks {
		a.Write(c)
	}
	a.Finish()
	return streamResult{a.Usage(), a.Model(), a.Text(), a.Malformed()}
}

func TestStreamAccumulator(t *testing.T) {
	tests := []struct {
		name     string
		provider string
		file     string // from testdata/, or
		body     string // inline when file is empty
		want     streamResult
	}{
		{name: "openai chat with usage chunk", provider: OpenAI, file: "openai_chat_stream.sse", want: streamResult{
			Usage: Usage{PromptTokens: 1117, CompletionTokens: 10, CachedTokens: 1024},
			Model: "gpt-4o-mini-2024-07-18", Text: "Hello! How can I help you today?"}},
		{name: "anthropic message stream", provider: Anthropic, file: "anthropic_stream.sse", want: streamResult{
			Usage: Usage{PromptTokens: 25 + 3000 + 1200, CompletionTokens: 15, CachedTokens: 3000, CacheWriteTokens: 1200},
			Model: "claude-sonnet-4-5-20250929", Text: "Why did the chicken cross the road?"}},
		{name: "responses api stream", provider: OpenAI, file: "responses_stream.sse", want: streamResult{
			Usage: Usage{PromptTokens: 37, CompletionTokens: 11},
			Model: "gpt-4.1-2025-04-14", Text: "Hi there!"}},
		{name: "openai chat without include_usage", provider: OpenAI,
			body: "data: {\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\ndata: [DONE]\n\n",
			want: streamResult{Model: "gpt-4o", Text: "hi"}},
		{name: "openai legacy completions text", provider: OpenAI,
			body: "data: {\"object\":\"text_completion\",\"model\":\"gpt-3.5-turbo-instruct\",\"choices\":[{\"text\":\"Hel\",\"index\":0}]}\n\n" +
				"data: {\"choices\":[{\"text\":\"lo\",\"index\":0}],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":2,\"total_tokens\":6}}\n\n",
			want: streamResult{Usage: Usage{PromptTokens: 4, CompletionTokens: 2}, Model: "gpt-3.5-turbo-instruct", Text: "Hello"}},
		{name: "openai n=2 keeps choice index 0", provider: OpenAI,
			body: "data: {\"choices\":[{\"index\":1,\"delta\":{\"content\":\"B\"}}]}\n\n" +
				"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"A\"}}]}\n\n" +
				"data: {\"choices\":[{\"index\":1,\"delta\":{\"content\":\"B\"}},{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\n",
			want: streamResult{Text: "Aa"}},
		{name: "openai reasoning tokens in usage chunk", provider: OpenAI,
			body: "data: {\"model\":\"o3-mini\",\"choices\":[],\"usage\":{\"prompt_tokens\":50,\"completion_tokens\":900,\"completion_tokens_details\":{\"reasoning_tokens\":832}}}\n\n",
			want: streamResult{Usage: Usage{PromptTokens: 50, CompletionTokens: 900, ReasoningTokens: 832}, Model: "o3-mini"}},
		{name: "responses incomplete is still billed", provider: OpenAI,
			body: "event: response.incomplete\ndata: {\"type\":\"response.incomplete\",\"response\":{\"model\":\"gpt-5\",\"usage\":{\"input_tokens\":10,\"output_tokens\":64,\"output_tokens_details\":{\"reasoning_tokens\":64}}}}\n\n",
			want: streamResult{Usage: Usage{PromptTokens: 10, CompletionTokens: 64, ReasoningTokens: 64}, Model: "gpt-5"}},
		{name: "anthropic message_delta repeats input and cache counts", provider: Anthropic,
			body: "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"claude-opus-4-1-20250805\",\"usage\":{\"input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":1}}}\n\n" +
				"event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":5}}\n\n" +
				"event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"input_tokens\":120,\"cache_read_input_tokens\":4000,\"cache_creation_input_tokens\":300,\"output_tokens\":42}}\n\n",
			want: streamResult{Usage: Usage{PromptTokens: 4420, CompletionTokens: 42, CachedTokens: 4000, CacheWriteTokens: 300},
				Model: "claude-opus-4-1-20250805"}},
		{name: "anthropic thinking and tool deltas are not text", provider: Anthropic,
			body: "data: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"hmm\"}}\n\n" +
				"data: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{}\"}}\n\n" +
				"data: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\",\"text\":\"ok\"}}\n\n",
			want: streamResult{Text: "ok"}},
		{name: "anthropic error event", provider: Anthropic,
			body: "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"},
		{name: "malformed events skipped and counted", provider: OpenAI,
			body: "data: {\"model\":\"gpt-4o\"\n\ndata: not json\n\ndata: [1,2]\n\ndata: 42\n\n" +
				"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}\n\n",
			want: streamResult{Usage: Usage{PromptTokens: 3, CompletionTokens: 1}, Malformed: 4}},
		{name: "keep-alives and empty data are not malformed", provider: Anthropic,
			body: ": ping\n\ndata:\n\ndata:   \n\n"},
		{name: "unterminated last event read at Finish", provider: OpenAI,
			body: "data: {\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}",
			want: streamResult{Usage: Usage{PromptTokens: 1, CompletionTokens: 2}, Model: "m"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := []byte(tt.body)
			if tt.file != "" {
				body = testdata(t, tt.file)
			}
			if got := accumulate(tt.provider, body); got != tt.want {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
			// Chunking must not matter.
			for i := 0; i <= len(body); i += 7 {
				if got := accumulate(tt.provider, body[:i], body[i:]); got != tt.want {
					t.Fatalf("split at %d: got %+v\nwant %+v", i, got, tt.want)
				}
			}
		})
	}
}

func TestStreamAccumulatorTextBound(t *testing.T) {
	a := NewStreamAccumulator(Anthropic)
	// "é" is two bytes; after one ASCII byte the bound falls inside one.
	a.Write([]byte(`data: {"type":"content_block_delta","delta":{"type":"text_delta","text":"a"}}` + "\n\n"))
	delta := `data: {"type":"content_block_delta","delta":{"type":"text_delta","text":"` + strings.Repeat("é", 999) + "\"}}\n\n"
	for range MaxStreamText/1998 + 2 {
		a.Write([]byte(delta))
	}
	a.Write([]byte(`data: {"type":"content_block_delta","delta":{"type":"text_delta","text":"x"}}` + "\n\n"))
	a.Finish()
	text := a.Text()
	if len(text) > MaxStreamText || len(text) < MaxStreamText-1 || !a.TextTruncated() {
		t.Fatalf("len(Text) = %d, truncated = %v", len(text), a.TextTruncated())
	}
	if strings.ContainsRune(text, '\uFFFD') || strings.HasSuffix(text, "x") {
		t.Fatal("text cut inside a rune or appended after truncation")
	}
}

// A stream cut before its usage reports no count, and its output is
// counted from what it streamed: text, tool-call arguments and thinking.
func TestStreamAccumulatorOutputOfACutStream(t *testing.T) {
	tests := []struct {
		name, provider, stream string
		prompt, completion     bool
		want                   int64 // o200k_base for OpenAI, the estimate for Anthropic
	}{
		{"openai cut", OpenAI, `data: {"choices":[{"index":0,"delta":{"content":"Hello"}}],"usage":null}` + "\n\n" +
			`data: {"choices":[{"index":0,"delta":{"content":" world"}}],"usage":null}` + "\n\n", false, false, 2},
		{"openai tool call cut", OpenAI, `data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"name":"get_weather","arguments":""}}]}}]}` + "\n\n" +
			`data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]}}]}` + "\n\n", false, false, 5},
		{"openai full", OpenAI, `data: {"choices":[{"index":0,"delta":{"content":"Hi"}}]}` + "\n\n" +
			`data: {"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":1}}` + "\n\n", true, true, 1},
		{"anthropic cut", Anthropic, `data: {"type":"message_start","message":{"usage":{"input_tokens":12,"output_tokens":1}}}` + "\n\n" +
			`data: {"type":"content_block_delta","delta":{"type":"text_delta","text":"12345678"}}` + "\n\n" +
			`data: {"type":"content_block_delta","delta":{"type":"input_json_delta","partial_json":"{\"a\":1}"}}` + "\n\n" +
			`data: {"type":"content_block_delta","delta":{"type":"thinking_delta","thinking":"hmm."}}` + "\n\n", true, false, 2 + 2 + 1},
		{"anthropic full", Anthropic, `data: {"type":"message_start","message":{"usage":{"input_tokens":12,"output_tokens":1}}}` + "\n\n" +
			`data: {"type":"message_delta","usage":{"output_tokens":30}}` + "\n\n", true, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := NewStreamAccumulator(tt.provider)
			a.Write([]byte(tt.stream))
			a.Finish()
			prompt, completion := a.Reported()
			if prompt != tt.prompt || completion != tt.completion {
				t.Errorf("Reported() = %v, %v, want %v, %v", prompt, completion, tt.prompt, tt.completion)
			}
			c := tokens.Estimate
			if tt.provider == OpenAI {
				c = tokens.O200k()
			}
			if got := a.OutputTokens(c); got != tt.want {
				t.Errorf("OutputTokens = %d, want %d", got, tt.want)
			}
		})
	}
}

// Output past what is kept is scaled from the part counted.
func TestStreamAccumulatorOutputTokensBeyondTheBound(t *testing.T) {
	a := NewStreamAccumulator(OpenAI)
	chunk := []byte(`data: {"choices":[{"index":0,"delta":{"content":"` + strings.Repeat("word ", 1000) + `"}}]}` + "\n\n")
	n := 2*MaxStreamText/5000 + 1
	for range n {
		a.Write(chunk)
	}
	a.Finish()
	want := int64(n * 1000) // " word" is one token, "word" too
	got := a.OutputTokens(tokens.O200k())
	if d := got - want; d < -want/100 || d > want/100 {
		t.Errorf("OutputTokens = %d, want %d within 1%%", got, want)
	}
	if est := a.OutputTokens(tokens.Estimate); est != int64(n*5000/4) {
		t.Errorf("estimate %d, want %d", est, n*5000/4)
	}
}
