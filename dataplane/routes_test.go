package dataplane

import (
	"testing"

	"github.com/tollgate-dev/tollgate/dataplane/internal/headers"
)

// TestProviderRoutes: a provider route takes the paths under its prefix
// (path-separated, before the Anthropic and OpenAI routes), a stripping
// one takes its prefix off the path, and the upstream's own prefix goes in
// front; a target URL still wins.
func TestProviderRoutes(t *testing.T) {
	p, err := New(Config{
		OpenAIUpstream:    "http://openai.test",
		AnthropicUpstream: "http://anthropic.test",
		Routes: []Route{
			{Prefix: "/v1beta", Upstream: "http://gemini.test"},
			{Prefix: "/v1beta", Upstream: "http://gemini.test", Regex: `/v1/models/[^/:]+:(generateContent|countTokens)`},
			{Prefix: "/together", Upstream: "http://together.test", StripPrefix: true},
			{Prefix: "/groq/", Upstream: "http://mock.test/groqapi", StripPrefix: true},
		},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		path, origin, upstreamPath string
	}{
		{"/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", "http://gemini.test", "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"},
		{"/together/v1/chat/completions", "http://together.test", "/v1/chat/completions"},
		{"/together", "http://together.test", "/"},
		{"/together?x=1", "http://together.test", "/?x=1"},
		{"/togetherx/v1/chat/completions", "http://openai.test", "/togetherx/v1/chat/completions"},
		{"/groq/openai/v1/chat/completions", "http://mock.test", "/groqapi/openai/v1/chat/completions"},
		{"/v1/messages", "http://anthropic.test", "/v1/messages"},
		{"/v1/chat/completions", "http://openai.test", "/v1/chat/completions"},
		// A regex route matches the whole path, query excluded, and
		// leaves it as it is.
		{"/v1/models/gemini-2.5-flash:generateContent?key=k", "http://gemini.test", "/v1/models/gemini-2.5-flash:generateContent?key=k"},
		{"/v1/models/gemini-2.5-flash:countTokens", "http://gemini.test", "/v1/models/gemini-2.5-flash:countTokens"},
		{"/v1/models/gemini-2.5-flash:generateContentX", "http://openai.test", "/v1/models/gemini-2.5-flash:generateContentX"},
		{"/x/v1/models/gemini-2.5-flash:generateContent", "http://openai.test", "/x/v1/models/gemini-2.5-flash:generateContent"},
		{"/v1/models/gpt-4o-mini", "http://openai.test", "/v1/models/gpt-4o-mini"},
	} {
		r := p.pickRoute(headers.List{{Key: ":path", Value: tt.path}})
		if r.target == nil {
			t.Fatalf("%s: no route (%d %s)", tt.path, r.status, r.detail)
		}
		if got := r.target.origin(); got != tt.origin {
			t.Errorf("%s: origin %s, want %s", tt.path, got, tt.origin)
		}
		if got := r.target.upstreamPath(tt.path); got != tt.upstreamPath {
			t.Errorf("%s: upstream path %s, want %s", tt.path, got, tt.upstreamPath)
		}
	}
	r := p.pickRoute(headers.List{{Key: ":path", Value: "/together/v1/chat/completions"}, {Key: UpstreamHeader, Value: "http://elsewhere.test"}})
	if r.target == nil || r.target.origin() != "http://elsewhere.test" || r.target.upstreamPath("/v1/x") != "/v1/x" {
		t.Fatalf("target URL route: %+v", r.target)
	}
	if _, err := New(Config{Routes: []Route{{Prefix: "together", Upstream: "http://x"}}}, nil); err == nil {
		t.Fatal("a prefix without / accepted")
	}
	if _, err := New(Config{Routes: []Route{{Prefix: "/g", Upstream: "http://x", Regex: "("}}}, nil); err == nil {
		t.Fatal("a bad regex accepted")
	}
}
