package gate

import (
	"context"
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/helicone"
)

// The semantic scope is the exact key without the prompt: two wordings of
// one question share it; a tenant, a model, a parameter, a seed or a
// provider key of their own do not.
func TestSemanticScope(t *testing.T) {
	g := New(Options{}) // no store: every lookup a miss
	scope := func(tenant, seed, auth, body string) string {
		t.Helper()
		hh := &helicone.Headers{}
		hh.Cache.Enabled, hh.Cache.Seed = "true", seed
		req := RequestInfo{Tenant: tenant, Method: "POST", URL: "/v1/chat/completions", Helicone: hh, Body: []byte(body),
			Header: func(name string) string {
				if name == "authorization" {
					return auth
				}
				return ""
			}}
		d, err := g.Check(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		s, ok := g.SemanticScope(req, d)
		if !ok || !strings.Contains(s, "sc:") {
			t.Fatalf("SemanticScope = %q, %v", s, ok)
		}
		return s
	}
	body := func(model, temp, question string) string {
		return `{"model":"` + model + `","temperature":` + temp + `,"messages":[{"role":"user","content":"` + question + `"}]}`
	}
	base := scope("a", "", "Bearer k1", body("gpt-4o-mini", "0", "capital of France?"))
	if got := scope("a", "", "Bearer k1", body("gpt-4o-mini", "0", "France's capital, please")); got != base {
		t.Errorf("another wording: a scope of its own")
	}
	for name, got := range map[string]string{
		"tenant":       scope("b", "", "Bearer k1", body("gpt-4o-mini", "0", "capital of France?")),
		"seed":         scope("a", "s", "Bearer k1", body("gpt-4o-mini", "0", "capital of France?")),
		"provider key": scope("a", "", "Bearer k2", body("gpt-4o-mini", "0", "capital of France?")),
		"model":        scope("a", "", "Bearer k1", body("gpt-4o", "0", "capital of France?")),
		"temperature":  scope("a", "", "Bearer k1", body("gpt-4o-mini", "1", "capital of France?")),
		// A streamed entry is SSE: a paraphrase asked without stream misses it.
		"stream": scope("a", "", "Bearer k1", `{"model":"gpt-4o-mini","temperature":0,"stream":true,"messages":[{"role":"user","content":"France's capital, please"}]}`),
	} {
		if got == base {
			t.Errorf("another %s shares the scope", name)
		}
	}
}

// A semantic hit answers as an exact hit does, with the similarity.
func TestSemanticHit(t *testing.T) {
	g := New(Options{})
	d := &Decision{cacheKey: "k", slots: 1, save: true, ttl: 3600e9, maxEntry: 1 << 20}
	entry, ttl, ok := g.SemanticEntry(d, ResponseInfo{RequestID: "r1", Status: 200, ContentType: "text/event-stream", Body: []byte("data: x\n\n")})
	if !ok || ttl != d.ttl {
		t.Fatalf("SemanticEntry: %v %v", ok, ttl)
	}
	hit, ok := g.SemanticHit(entry, 0.9731)
	if !ok || hit.Hit == nil || hit.Hit.ReferenceID != "r1" || string(hit.Answer.Body) != "data: x\n\n" {
		t.Fatalf("SemanticHit = %+v", hit)
	}
	h := map[string]string{}
	for _, kv := range hit.Answer.Headers {
		h[kv[0]] = kv[1]
	}
	if h["helicone-cache"] != "HIT" || h["helicone-cache-similarity"] != "0.9731" || h["content-type"] != "text/event-stream" {
		t.Errorf("headers %v", h)
	}
	if _, ok := g.SemanticHit([]byte("garbage"), 1); ok {
		t.Error("an unreadable entry hit")
	}
	if _, _, ok := g.SemanticEntry(d, ResponseInfo{Status: 500}); ok {
		t.Error("a 500 is stored")
	}
}

// Requests whose prompt text is alike but whose other parts differ (an
// image, a tool result, a function call's output, streamed or not) never
// share a scope: the text alone would compare at similarity 1.
func TestSemanticScopeKeepsWhatTheTextLeavesOut(t *testing.T) {
	g := New(Options{})
	scope := func(url, body string) string {
		t.Helper()
		hh := &helicone.Headers{}
		hh.Cache.Enabled = "true"
		req := RequestInfo{Tenant: "a", Method: "POST", URL: url, Helicone: hh, Body: []byte(body),
			Header: func(string) string { return "" }}
		d, err := g.Check(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		s, ok := g.SemanticScope(req, d)
		if !ok {
			t.Fatal("no scope")
		}
		return s
	}
	pairs := map[string][2]string{
		"tool_result": {
			`{"model":"c","messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"42 degrees"},{"type":"text","text":"and now?"}]}]}`,
			`{"model":"c","messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"-5 degrees"},{"type":"text","text":"and now?"}]}]}`},
		"tool_use": {
			`{"model":"c","messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"weather","input":{"city":"Paris"}}]}]}`,
			`{"model":"c","messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"weather","input":{"city":"Oslo"}}]}]}`},
		"image": {
			`{"model":"g","messages":[{"role":"user","content":[{"type":"text","text":"what is this?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}]}`,
			`{"model":"g","messages":[{"role":"user","content":[{"type":"text","text":"what is this?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,BBBB"}}]}]}`},
		"function_call_output": {
			`{"model":"g","input":[{"role":"user","content":"weather?"},{"type":"function_call_output","call_id":"c1","output":"sunny"}]}`,
			`{"model":"g","input":[{"role":"user","content":"weather?"},{"type":"function_call_output","call_id":"c1","output":"rain"}]}`},
		"stream": {
			`{"model":"g","stream":true,"messages":[{"role":"user","content":"capital of France?"}]}`,
			`{"model":"g","messages":[{"role":"user","content":"France's capital, please"}]}`},
	}
	for name, p := range pairs {
		if scope("/v1/chat/completions", p[0]) == scope("/v1/chat/completions", p[1]) {
			t.Errorf("%s: two requests differing in it share a scope", name)
		}
	}
	// The text itself stays out: another wording, same parts, same scope.
	a := `{"model":"g","messages":[{"role":"user","content":[{"type":"text","text":"what is this?"},{"type":"image_url","image_url":{"url":"data:x"}}]}]}`
	b := `{"model":"g","messages":[{"role":"user","content":[{"type":"text","text":"what's this one?"},{"type":"image_url","image_url":{"url":"data:x"}}]}]}`
	if scope("/v1/chat/completions", a) != scope("/v1/chat/completions", b) {
		t.Error("another wording with the same image: a scope of its own")
	}
}
