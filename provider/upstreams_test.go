package provider

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestResolve(t *testing.T) {
	for _, tt := range []struct {
		path, name, format string
		ep                 Endpoint
	}{
		{"/v1beta/models/gemini-2.5-flash:generateContent", Gemini, Gemini, EndpointGenerateContent},
		{"/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse&key=k", Gemini, Gemini, EndpointStreamGenerateContent},
		{"/v1beta/models/gemini-2.5-flash:countTokens", Gemini, Gemini, EndpointCountTokens},
		{"/v1beta/models/gemini-embedding-001:embedContent", Gemini, Gemini, EndpointEmbeddings},
		{"/v1beta/models/gemini-embedding-001:batchEmbedContents", Gemini, Gemini, EndpointEmbeddings},
		{"/v1beta/models/gemini-2.5-flash:predict", Gemini, Gemini, EndpointUnknown},
		// Gemini's stable API shares OpenAI's /v1/models/ prefix: the
		// method after the colon tells them apart.
		{"/v1/models/gemini-2.5-flash:generateContent", Gemini, Gemini, EndpointGenerateContent},
		{"/v1/models/gemini-2.5-flash:streamGenerateContent?alt=sse", Gemini, Gemini, EndpointStreamGenerateContent},
		{"/v1/models/gemini-2.5-flash:countTokens", Gemini, Gemini, EndpointCountTokens},
		{"/v1/models/gemini-embedding-001:batchEmbedContents", Gemini, Gemini, EndpointEmbeddings},
		{"/v1/models/gpt-4o-mini", OpenAI, OpenAI, EndpointModels},
		{"/v1/models/ft:gpt-4o-mini:acme::abc123", OpenAI, OpenAI, EndpointModels},
		{"/v1/models/gemini-2.5-flash:generateContentX", OpenAI, OpenAI, EndpointModels},
		{"/v1/models/a/b:generateContent", OpenAI, OpenAI, EndpointModels},
		{"/v1beta/models", Gemini, Gemini, EndpointUnknown},
		{"/v1beta/openai/chat/completions", Gemini, OpenAI, EndpointChatCompletions},
		{"/v1beta/openai/embeddings", Gemini, OpenAI, EndpointEmbeddings},
		{"/v1betax/models/m:generateContent", OpenAI, OpenAI, EndpointUnknown},
		{"/together/v1/chat/completions", Together, OpenAI, EndpointChatCompletions},
		{"/together/v1/completions", Together, OpenAI, EndpointCompletions},
		{"/together/v1/embeddings", Together, OpenAI, EndpointEmbeddings},
		{"/together/chat/completions", Together, OpenAI, EndpointUnknown},
		{"/togetherx/v1/chat/completions", OpenAI, OpenAI, EndpointUnknown},
		{"/groq/openai/v1/chat/completions", Groq, OpenAI, EndpointChatCompletions},
		{"/groq/v1/chat/completions", Groq, OpenAI, EndpointUnknown},
		{"/v1/chat/completions", OpenAI, OpenAI, EndpointChatCompletions},
		{"/v1/messages", Anthropic, Anthropic, EndpointMessages},
		// Azure's paths stay OpenAI's here: the processor names Azure.
		{"/openai/v1/chat/completions", OpenAI, OpenAI, EndpointChatCompletions},
	} {
		name, format, ep := Resolve(tt.path)
		if name != tt.name || format != tt.format || ep != tt.ep {
			t.Errorf("Resolve(%q) = %q %q %v; want %q %q %v", tt.path, name, format, ep, tt.name, tt.format, tt.ep)
		}
	}
}

func TestGeminiPath(t *testing.T) {
	for _, tt := range []struct {
		path, model string
		stream, ok  bool
	}{
		{"/v1beta/models/gemini-2.5-pro:generateContent", "gemini-2.5-pro", false, true},
		{"/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse", "gemini-2.5-pro", true, true},
		{"/v1beta/models/tuned%2Dx:generateContent", "tuned-x", false, true},
		{"/v1beta/models/:generateContent", "", false, false},
		{"/v1beta/models/a%2Fb:generateContent", "", false, false},
		{"/v1beta/models/a%0Ab:generateContent", "", false, false},
		{"/v1beta/models/" + strings.Repeat("m", 300) + ":generateContent", "", false, false},
		{"/v1beta/models/m:embedContent", "m", false, true},
		{"/v1beta/models/m:countTokens", "m", false, true},
		{"/v1beta/models/m:predict", "", false, false},
		{"/v1beta/models/a%3Ab:generateContent", "", false, false},
		{"/v1/models/gemini-2.5-pro:streamGenerateContent?alt=sse", "gemini-2.5-pro", true, true},
		{"/v1/models/gemini-2.5-pro:generateContent", "gemini-2.5-pro", false, true},
		{"/v1/models/gpt-4o", "", false, false},
		{"/v2/models/m:generateContent", "", false, false},
		{"/v1beta/models/m", "", false, false},
	} {
		model, stream, ok := GeminiPath(tt.path)
		if model != tt.model || stream != tt.stream || ok != tt.ok {
			t.Errorf("GeminiPath(%q) = %q %v %v; want %q %v %v", tt.path, model, stream, ok, tt.model, tt.stream, tt.ok)
		}
	}
}

func TestParseCompatible(t *testing.T) {
	u, err := ParseCompatible(" Mistral = https://API.mistral.ai/v1/ ")
	if err != nil {
		t.Fatal(err)
	}
	want := Upstream{Name: "mistral", Origin: "https://api.mistral.ai", Prefix: "/v1", Route: "/mistral", Format: OpenAI}
	if u != want {
		t.Fatalf("got %+v, want %+v", u, want)
	}
	if u, err := ParseCompatible("ollama=http://127.0.0.1:11434"); err != nil || u.Prefix != "" || u.Origin != "http://127.0.0.1:11434" {
		t.Fatalf("no prefix: %+v %v", u, err)
	}
	for _, bad := range []string{"", "mistral", "=https://x", "mistral=", "openai=https://x", "gemini=https://x",
		"v1=https://x", "Bad Name=https://x", "m=ftp://x", "m=https://u:p@x", "m=https://x?q=1", "m=x.example"} {
		if _, err := ParseCompatible(bad); err == nil {
			t.Errorf("ParseCompatible(%q) accepted", bad)
		}
	}
}

func TestWithCompatibleReplacesBuiltin(t *testing.T) {
	local, _ := ParseCompatible("together=http://127.0.0.1:9000/v1")
	extra, _ := ParseCompatible("vllm=http://vllm.models.svc:8000/v1")
	list := WithCompatible([]Upstream{local, extra})
	if len(list) != len(Builtins())+1 {
		t.Fatalf("list %+v", list)
	}
	for _, u := range list {
		if u.Name == Together && u.Origin != "http://127.0.0.1:9000" {
			t.Fatalf("together not replaced: %+v", u)
		}
	}
	if list[len(list)-1].Name != "vllm" {
		t.Fatalf("vllm not appended: %+v", list)
	}
}

// TestRegisterAdds: a registered provider is routed and known, and stays
// so when another list is registered; an entry of the same name replaces
// it.
func TestRegisterAdds(t *testing.T) {
	extra, _ := ParseCompatible("regtest=http://127.0.0.1:9/v1")
	Register(WithCompatible([]Upstream{extra}))
	if name, format, ep := Resolve("/regtest/v1/chat/completions"); name != "regtest" || format != OpenAI || ep != EndpointChatCompletions {
		t.Fatalf("Resolve = %q %q %v", name, format, ep)
	}
	if u, ok := ByOrigin("http://127.0.0.1:9"); !ok || u.Name != "regtest" {
		t.Fatalf("ByOrigin = %+v %v", u, ok)
	}
	Register(Builtins())
	if name, _, _ := Resolve("/regtest/v1/chat/completions"); name != "regtest" || !Known("RegTest") {
		t.Fatalf("taken away: %q", name)
	}
	moved, _ := ParseCompatible("regtest=http://127.0.0.1:10/v1")
	Register(Upstreams{moved})
	if u, ok := ByOrigin("http://127.0.0.1:10"); !ok || u.Name != "regtest" {
		t.Fatalf("not replaced: %+v %v", u, ok)
	}
	if _, ok := ByOrigin("http://127.0.0.1:9"); ok {
		t.Fatal("the replaced entry is still found")
	}
}

// TestBuiltinPrices: every built-in provider's section prices its models
// by the names the provider answers with.
func TestBuiltinPrices(t *testing.T) {
	prices := DefaultPrices()
	u := Usage{PromptTokens: 1_000_000, CompletionTokens: 1_000_000}
	for _, tt := range []struct {
		prov, model string
		cost        float64
	}{
		{Together, "meta-llama/Llama-3.3-70B-Instruct-Turbo", 0.88 + 0.88},
		{Groq, "llama-3.3-70b-versatile", 0.59 + 0.79},
		{Groq, "openai/gpt-oss-120b", 0.15 + 0.75},
		{Gemini, "gemini-2.5-pro", 1.25 + 10},
		{Gemini, "models/gemini-2.0-flash-001", 0.10 + 0.40},
	} {
		cost, priced := prices.CallCost(tt.prov, u, tt.model)
		if !priced || cost < tt.cost-1e-9 || cost > tt.cost+1e-9 {
			t.Errorf("%s %s: cost %v priced %v; want %v", tt.prov, tt.model, cost, priced, tt.cost)
		}
	}
	for _, b := range Builtins() {
		if !Known(b.Name) {
			t.Errorf("builtin %s not known", b.Name)
		}
	}
}

// TestGeminiStreamUsage: streamGenerateContent?alt=sse sends running
// totals in every event; the last wins, thoughts are output and reasoning,
// cached content is counted as cached input.
func TestGeminiStreamUsage(t *testing.T) {
	stream := "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hel\"}],\"role\":\"model\"}}],\"usageMetadata\":{\"promptTokenCount\":50,\"candidatesTokenCount\":1,\"totalTokenCount\":51},\"modelVersion\":\"gemini-2.5-flash\"}\r\n\r\n" +
		"data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"lo\"}],\"role\":\"model\"},\"finishReason\":\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":50,\"candidatesTokenCount\":2,\"totalTokenCount\":72,\"cachedContentTokenCount\":32,\"thoughtsTokenCount\":20},\"modelVersion\":\"gemini-2.5-flash\"}\r\n\r\n"
	a := NewStreamAccumulator(Gemini)
	a.Write([]byte(stream))
	a.Finish()
	want := Usage{PromptTokens: 50, CompletionTokens: 22, CachedTokens: 32, ReasoningTokens: 20}
	if a.Usage() != want || a.Model() != "gemini-2.5-flash" || a.Text() != "Hello" {
		t.Fatalf("usage %+v model %q text %q", a.Usage(), a.Model(), a.Text())
	}
	if _, completion := a.Reported(); !completion {
		t.Fatal("Gemini's running totals are the provider's count")
	}
}

func FuzzGeminiPath(f *testing.F) {
	f.Add("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse")
	f.Fuzz(func(t *testing.T, path string) {
		model, _, ok := GeminiPath(path)
		if !ok {
			if model != "" {
				t.Fatalf("model %q without ok", model)
			}
			return
		}
		if model == "" || !utf8.ValidString(model) || strings.ContainsAny(model, "/\n\r") {
			t.Fatalf("GeminiPath(%q) kept model %q", path, model)
		}
		if name, format, ep := Resolve(path); name != Gemini || format != Gemini || ep == EndpointUnknown {
			t.Fatalf("Resolve(%q) = %q %q %v", path, name, format, ep)
		}
	})
}

func FuzzResolve(f *testing.F) {
	f.Add("/groq/openai/v1/chat/completions")
	f.Fuzz(func(t *testing.T, path string) {
		name, format, ep := Resolve(path)
		if !Known(name) {
			t.Fatalf("Resolve(%q) named unknown provider %q", path, name)
		}
		if format != OpenAI && format != Anthropic && format != Gemini {
			t.Fatalf("Resolve(%q) format %q", path, format)
		}
		if ep.String() == "" {
			t.Fatalf("endpoint without a label")
		}
	})
}

// BenchmarkResolve: what naming the provider costs each call, on an
// OpenAI path (every provider route tried first) and a Groq one.
func BenchmarkResolve(b *testing.B) {
	for _, path := range []string{"/v1/chat/completions", "/groq/openai/v1/chat/completions"} {
		b.Run(strings.TrimPrefix(path, "/"), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Resolve(path)
			}
		})
	}
}

// TestOpenAIEndpointAgreesWithClassify: a provider's OpenAI paths read as
// OpenAI's own do; Anthropic's and Azure's are not OpenAI endpoints there.
func TestOpenAIEndpointAgreesWithClassify(t *testing.T) {
	for _, rest := range []string{"/chat/completions", "/completions", "/embeddings", "/responses", "/models", "/models/m",
		"/messages", "/messages/count_tokens", "/audio/speech", "", "/chat/completionsx"} {
		want := EndpointUnknown
		if f, ep := Classify("/v1" + rest); f == OpenAI {
			want = ep
		}
		if got := openAIEndpoint(rest); got != want {
			t.Errorf("openAIEndpoint(%q) = %v, Classify says %v", rest, got, want)
		}
	}
}

// TestResolveOn: a call on a provider's own origin, with its own paths, is
// read as that provider's; only registered providers are named this way.
func TestResolveOn(t *testing.T) {
	for _, tt := range []struct {
		name, path, format string
		ep                 Endpoint
		ok                 bool
	}{
		{Groq, "/openai/v1/chat/completions", OpenAI, EndpointChatCompletions, true},
		{Together, "/v1/chat/completions?x=1", OpenAI, EndpointChatCompletions, true},
		{Together, "/v1/embeddings", OpenAI, EndpointEmbeddings, true},
		{Together, "/chat/completions", OpenAI, EndpointUnknown, true},
		{Gemini, "/v1beta/models/m:generateContent", Gemini, EndpointGenerateContent, true},
		{Gemini, "/v1/models/m:streamGenerateContent?alt=sse", Gemini, EndpointStreamGenerateContent, true},
		{Gemini, "/v1/models/m", Gemini, EndpointUnknown, true},
		{Gemini, "/v1beta/openai/chat/completions", OpenAI, EndpointChatCompletions, true},
		{OpenAI, "/v1/chat/completions", OpenAI, EndpointChatCompletions, true},
		{OpenAI, "/v1/models/gemini-2.5-flash:generateContent", OpenAI, EndpointModels, true},
		{OpenAI, "/v1/messages", OpenAI, EndpointUnknown, true},
		{Anthropic, "/v1/messages", Anthropic, EndpointMessages, true},
		{Anthropic, "/v1/messages/count_tokens", Anthropic, EndpointCountTokens, true},
		{Anthropic, "/v1/chat/completions", OpenAI, EndpointChatCompletions, true}, // its OpenAI SDK compatibility
		{Azure, "/openai/deployments/d/chat/completions", "", EndpointUnknown, false},
		{"nope", "/v1/chat/completions", "", EndpointUnknown, false},
	} {
		format, ep, ok := ResolveOn(tt.name, tt.path)
		if format != tt.format || ep != tt.ep || ok != tt.ok {
			t.Errorf("ResolveOn(%s, %q) = %q %v %v; want %q %v %v", tt.name, tt.path, format, ep, ok, tt.format, tt.ep, tt.ok)
		}
	}
}
