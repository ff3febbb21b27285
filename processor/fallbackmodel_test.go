package processor

import (
	"strings"
	"testing"
)

// A fallback entry that names only a model goes to the provider that serves
// the model: another provider's model rides a fallback chain to that
// provider's origin (and is translated there), the request's own provider's
// model or an unknown one stays on the request's route, as before.
func TestShortFormFallbackFollowsTheModel(t *testing.T) {
	const chat = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`
	const messages = `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`
	tests := []struct {
		name, path, body string
		headers          []string
		chain            string // the chain header; "" = no chain
	}{
		{"openai → claude, bare model list", "/v1/chat/completions", chat,
			[]string{"helicone-fallback", "claude-sonnet-4-5"}, "https://api.openai.com https://api.anthropic.com"},
		{"openai → claude, JSON short form", "/v1/chat/completions", chat,
			[]string{"helicone-fallback", `[{"model":"gpt-4o"},{"model":"claude-haiku-4-5-20251001"}]`},
			"https://api.openai.com https://api.openai.com https://api.anthropic.com"},
		{"openai → claude, gateway form", "/v1/chat/completions", chat,
			[]string{"helicone-fallbacks", `[{},{"bodyKeyOverride":{"model":"claude-sonnet-4-5"}}]`},
			"https://api.openai.com https://api.anthropic.com"},
		{"anthropic → gpt", "/v1/messages", messages,
			[]string{"helicone-fallback", `[{"model":"gpt-4o"}]`}, "https://api.anthropic.com https://api.openai.com"},
		{"anthropic → o3", "/v1/messages", messages,
			[]string{"helicone-fallback", `o3-mini`}, "https://api.anthropic.com https://api.openai.com"},
		{"same provider", "/v1/chat/completions", chat,
			[]string{"helicone-fallback", `[{"model":"gpt-4o"}]`}, ""},
		{"unknown model", "/v1/chat/completions", chat,
			[]string{"helicone-fallback", `[{"model":"llama-3.1-70b"}]`}, ""},
		{"a target-url wins over the model", "/v1/chat/completions", chat,
			[]string{"helicone-fallbacks", `[{},{"target-url":"https://api.openai.com","model":"claude-sonnet-4-5"}]`}, ""},
		// A call to a provider named by its path starts its chain from that
		// provider's own origin, never api.openai.com's.
		{"groq's attempts start on groq", "/groq/openai/v1/chat/completions", chat,
			[]string{"helicone-fallbacks", `[{},{"target-url":"https://api.together.xyz"}]`}, "https://api.groq.com https://api.together.xyz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestServer(t, func(o *Options) {
				o.ProviderKeys = map[string]string{"anthropic": "sk-ant-gateway", "openai": "sk-openai-gateway"}
			})
			kv := append([]string{":method", "POST", ":path", tt.path, "authorization", "Bearer sk-client"}, tt.headers...)
			replies, _ := run(s, nil, reqHeaders(false, kv...), reqBody(tt.body))
			for _, r := range replies {
				if ir := r.GetImmediateResponse(); ir != nil {
					t.Fatalf("refused: %d %s", ir.GetStatus().GetCode(), ir.GetBody())
				}
			}
			cr := replies[0].GetRequestHeaders().GetResponse()
			if got := setHeaders(cr)[fallbackChainHeader]; got != tt.chain {
				t.Errorf("chain %q, want %q", got, tt.chain)
			}
		})
	}
}

// A model of another provider is held to the rules of a target-url on that
// provider's origin: each refusal is a 400 before any call naming the
// header, the entry and the model.
func TestShortFormFallbackRefusals(t *testing.T) {
	tests := []struct {
		name, path string
		keys       map[string]string
		headers    []string
		want       string
	}{
		{"no key for the provider", "/v1/chat/completions", map[string]string{"openai": "sk-openai-gateway"},
			[]string{"helicone-fallback", "claude-sonnet-4-5"},
			`Helicone-Fallback entry 0 model \"claude-sonnet-4-5\" (anthropic's) speaks anthropic's format and this request openai's: translating between them needs a configured anthropic key`},
		{"not a chat call", "/v1/embeddings", map[string]string{"anthropic": "sk-ant-gateway"},
			[]string{"helicone-fallback", "claude-sonnet-4-5"},
			`Helicone-Fallback entry 0 model \"claude-sonnet-4-5\" (anthropic's): only chat calls`},
		{"first entry", "/v1/chat/completions", map[string]string{"anthropic": "sk-ant-gateway"},
			[]string{"helicone-fallbacks", `[{"model":"claude-sonnet-4-5"},{}]`},
			`Helicone-Fallbacks entry 0 model \"claude-sonnet-4-5\" (anthropic's): the first entry must be on this request's own provider`},
		{"onCodes guard", "/v1/chat/completions", map[string]string{"anthropic": "sk-ant-gateway"},
			[]string{"helicone-fallbacks", `[{"onCodes":[401]},{"model":"claude-sonnet-4-5"}]`},
			"Helicone-Fallbacks entry 0: onCodes 401-401 include a client error"},
		// A call to another provider than OpenAI or Anthropic proper: its
		// attempts before the translated one would be sent with the
		// client's Groq, Together or Google key to api.openai.com.
		{"groq, short form", "/groq/openai/v1/chat/completions", map[string]string{"anthropic": "sk-ant-gateway"},
			[]string{"helicone-fallback", "claude-sonnet-4-5"},
			`Helicone-Fallback entry 0 model \"claude-sonnet-4-5\" (anthropic's): this call goes to groq, not to OpenAI's or Anthropic's own API`},
		{"together, short form", "/together/v1/chat/completions", map[string]string{"anthropic": "sk-ant-gateway"},
			[]string{"helicone-fallback", "claude-sonnet-4-5"},
			`Helicone-Fallback entry 0 model \"claude-sonnet-4-5\" (anthropic's): this call goes to together`},
		{"gemini's openai-compatible path, short form", "/v1beta/openai/chat/completions", map[string]string{"anthropic": "sk-ant-gateway"},
			[]string{"helicone-fallback", "claude-sonnet-4-5"},
			`Helicone-Fallback entry 0 model \"claude-sonnet-4-5\" (anthropic's): this call goes to gemini`},
		{"groq, target-url", "/groq/openai/v1/chat/completions", map[string]string{"anthropic": "sk-ant-gateway"},
			[]string{"helicone-fallbacks", `[{},{"target-url":"https://api.anthropic.com","model":"claude-sonnet-4-5"}]`},
			"Helicone-Fallbacks entry 1 target-url https://api.anthropic.com: this call goes to groq"},
		{"together, target-url", "/together/v1/chat/completions", map[string]string{"anthropic": "sk-ant-gateway"},
			[]string{"helicone-fallbacks", `[{},{"target-url":"https://api.anthropic.com","model":"claude-sonnet-4-5"}]`},
			"Helicone-Fallbacks entry 1 target-url https://api.anthropic.com: this call goes to together"},
		{"behind a target url", "/v1/chat/completions", map[string]string{"anthropic": "sk-ant-gateway"},
			[]string{"helicone-target-url", "https://api.together.xyz", "helicone-fallbacks", `[{},{"target-url":"https://api.anthropic.com","model":"claude-sonnet-4-5"}]`},
			"Helicone-Fallbacks entry 1 target-url https://api.anthropic.com: this call goes to together"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, sink := newTestServer(t, func(o *Options) { o.ProviderKeys = tt.keys })
			kv := append([]string{":method", "POST", ":path", tt.path, "authorization", "Bearer sk-client"}, tt.headers...)
			replies, _ := run(s, nil, reqHeaders(false, kv...), reqBody(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`))
			ir := replies[0].GetImmediateResponse()
			if ir == nil || ir.GetStatus().GetCode() != 400 || !strings.Contains(string(ir.GetBody()), tt.want) {
				t.Fatalf("replies %v, want a 400 containing %q", replies, tt.want)
			}
			if rec := sink.Records()[0]; rec.Attempts != 0 {
				t.Errorf("a refused call made %d attempts", rec.Attempts)
			}
		})
	}
}

// The egress policy checks a model-only entry as the other provider's, as
// it does for a target-url entry.
func TestShortFormFallbackEgress(t *testing.T) {
	s, _ := newTestServer(t, func(o *Options) {
		o.Egress = mustPolicy(t, "defaults:\n  allow: {providers: [openai]}\n")
		o.ProviderKeys = map[string]string{"anthropic": "sk-ant-gateway"}
	})
	replies, _ := run(s, nil, reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions",
		"helicone-fallback", "claude-sonnet-4-5"),
		reqBody(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`))
	var ir = replies[0].GetImmediateResponse()
	if ir == nil && len(replies) > 1 {
		ir = replies[1].GetImmediateResponse()
	}
	if ir == nil || ir.GetStatus().GetCode() != 403 || !strings.Contains(string(ir.GetBody()), `provider \"anthropic\"`) {
		t.Fatalf("replies %v, want a 403 naming anthropic", replies)
	}
}

// Behind a Helicone-Target-URL (here Together's OpenAI-compatible API) a
// "claude-…" model may be the target's own: the entry stays there.
func TestShortFormFallbackKeepsTargetURL(t *testing.T) {
	s, _ := newTestServer(t, func(o *Options) {
		o.ProviderKeys = map[string]string{"anthropic": "sk-ant-gateway"}
	})
	replies, _ := run(s, nil, reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions",
		"helicone-target-url", "https://api.together.xyz", "helicone-fallback", "claude-sonnet-4-5"),
		reqBody(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`))
	for _, r := range replies {
		if ir := r.GetImmediateResponse(); ir != nil {
			t.Fatalf("refused: %d %s", ir.GetStatus().GetCode(), ir.GetBody())
		}
	}
	if got := setHeaders(replies[0].GetRequestHeaders().GetResponse())[fallbackChainHeader]; got != "" {
		t.Errorf("chain %q: the entry left the target", got)
	}
}
