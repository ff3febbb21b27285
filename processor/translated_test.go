package processor

import (
	"strings"
	"testing"
)

// An egress policy sees through a translated fallback: the entry's provider
// and its model are checked as that provider's, before any call.
func TestEgressChecksTranslatedEntries(t *testing.T) {
	const both = `
defaults:
  allow: {providers: [openai, anthropic], models: ["gpt-4o-mini"]}
`
	// A providers-only list: no model list to catch the entry instead.
	const providersOnly = `
defaults:
  allow: {providers: [openai]}
`
	for _, tc := range []struct{ name, policy, want string }{
		{"provider not allowed", providersOnly, `provider \"anthropic\"`},
		{"model not allowed", both, "claude-sonnet-4-5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, sink := newTestServer(t, func(o *Options) {
				o.Egress = mustPolicy(t, tc.policy)
				o.ProviderKeys = map[string]string{"anthropic": "sk-ant-gateway"}
			})
			replies, _ := run(s, nil, reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions",
				"helicone-fallbacks", `[{"target-url":"https://api.openai.com"},{"target-url":"https://api.anthropic.com","model":"claude-sonnet-4-5"}]`),
				reqBody(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`))
			ir := replies[0].GetImmediateResponse()
			if ir == nil && len(replies) > 1 {
				ir = replies[1].GetImmediateResponse()
			}
			if ir == nil || ir.GetStatus().GetCode() != 403 || !strings.Contains(string(ir.GetBody()), tc.want) {
				t.Fatalf("replies %v, want a 403 naming %s", replies, tc.want)
			}
			if r := sink.Records()[0]; !strings.HasPrefix(r.PolicyDecision, "deny: ") {
				t.Errorf("decision %q", r.PolicyDecision)
			}
		})
	}
}

// A policy that allows the other provider and its model lets the translated
// entry through, with the gateway's key on its attempt only.
func TestEgressAllowsTranslatedEntry(t *testing.T) {
	const both = `
defaults:
  allow: {providers: [openai, anthropic], models: ["gpt-4o-mini", "claude-sonnet-4-5"]}
`
	s, _ := newTestServer(t, func(o *Options) {
		o.Egress = mustPolicy(t, both)
		o.ProviderKeys = map[string]string{"anthropic": "sk-ant-gateway"}
	})
	replies, _ := run(s, nil, reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions", "authorization", "Bearer sk-client",
		"helicone-fallbacks", `[{"target-url":"https://api.openai.com"},{"target-url":"https://api.anthropic.com","model":"claude-sonnet-4-5"}]`),
		reqBody(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`))
	for _, r := range replies {
		if ir := r.GetImmediateResponse(); ir != nil {
			t.Fatalf("refused: %d %s", ir.GetStatus().GetCode(), ir.GetBody())
		}
	}
}

// A translated entry is never the first attempt, and an entry before one may
// not fall back on client errors: either would let a client spend the
// gateway's key on the other provider with nothing of its own tried first.
func TestTranslatedEntryNeedsOwnProviderFirst(t *testing.T) {
	for _, tc := range []struct{ name, fallbacks, want string }{
		{"first entry on the other provider",
			`[{"target-url":"https://api.anthropic.com","model":"claude-sonnet-4-5"},{"target-url":"https://api.openai.com"}]`,
			"entry 0"},
		{"onCodes 401 before a translated entry",
			`[{"target-url":"https://api.openai.com","onCodes":[401]},{"target-url":"https://api.anthropic.com","model":"claude-sonnet-4-5"}]`,
			"entry 0: onCodes"},
		{"onCodes range over 400-404",
			`[{"target-url":"https://api.openai.com","onCodes":[{"from":400,"to":499}]},{"target-url":"https://api.anthropic.com","model":"claude-sonnet-4-5"}]`,
			"entry 0: onCodes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newTestServer(t, func(o *Options) {
				o.ProviderKeys = map[string]string{"anthropic": "sk-ant-gateway"}
			})
			replies, _ := run(s, nil, reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions", "authorization", "Bearer sk-client",
				"helicone-fallbacks", tc.fallbacks),
				reqBody(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`))
			ir := replies[0].GetImmediateResponse()
			if ir == nil || ir.GetStatus().GetCode() != 400 || !strings.Contains(string(ir.GetBody()), tc.want) {
				t.Fatalf("replies %v, want a 400 naming %q", replies, tc.want)
			}
		})
	}
}
