package processor

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"

	"github.com/tollgate-dev/tollgate/policies/gate"
	"github.com/tollgate-dev/tollgate/policies/ratelimit"
	"github.com/tollgate-dev/tollgate/policies/screen"
	"github.com/tollgate-dev/tollgate/record"
)

// fakeScreen answers every call with a scripted verdict and keeps what it
// was asked.
type fakeScreen struct {
	verdict screen.Verdict
	got     []screen.Request
}

func (f *fakeScreen) Check(_ context.Context, r screen.Request) screen.Verdict {
	f.got = append(f.got, r)
	return f.verdict
}

func withScreen(f *fakeScreen) func(*Options) { return func(o *Options) { o.Screen = f } }

// Helicone's answer to a flagged prompt
// (worker/src/lib/managers/ModerationManager.ts).
const flaggedBody = `{"success":false,"error":{"code":"PROMPT_FLAGGED_FOR_MODERATION","message":"The given prompt was flagged by the OpenAI Moderation endpoint.","details":"x"}}`

var flagged = screen.Verdict{
	Results: []screen.Result{{Check: screen.CheckModeration, Outcome: screen.Flagged, Duration: 120 * time.Millisecond, Detail: "categories: violence"}},
	Block: &screen.Block{Status: 400, Code: "prompt_flagged_for_moderation", Body: []byte(flaggedBody),
		Reason: "PROMPT_FLAGGED_FOR_MODERATION: The given prompt was flagged by the OpenAI Moderation endpoint. (categories: violence)"},
}

func moderatedCall(extra ...string) []*extprocv3.ProcessingRequest {
	h := append([]string{":method", "POST", ":path", "/v1/chat/completions", "helicone-request-id", requestID,
		"authorization", "Bearer sk-user-key", "openai-organization", "org-1", "helicone-auth", "Bearer sk-helicone-secret",
		"helicone-moderations-enabled", "true"}, extra...)
	return []*extprocv3.ProcessingRequest{reqHeaders(false, h...), reqBody(chatBody),
		respHeaders(false, ":status", "200"), respBody(chatResponse, true)}
}

// A flagged prompt is answered with Helicone's status and body (the
// provider never called) and logged with the outcome and its time; the
// check got the call's own key and body (ModerationManager.ts sends the
// request's headers), and no secret reaches the record.
func TestScreenFlaggedAnswersAndLogs(t *testing.T) {
	f := &fakeScreen{verdict: flagged}
	s, sink := newTestServer(t, withScreen(f))
	replies, err := run(s, nil, moderatedCall("helicone-llm-security-advanced", "true")[:2]...)
	if err != nil {
		t.Fatal(err)
	}
	if len(replies) != 2 {
		t.Fatalf("%d replies: the call must end at the body phase", len(replies))
	}
	diff(t, &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{
		ImmediateResponse: &extprocv3.ImmediateResponse{
			Status: &typev3.HttpStatus{Code: 400},
			Headers: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{
				set("content-type", "application/json"),
				set("x-helicone-error", "prompt_flagged_for_moderation"),
				set("helicone-id", requestID),
			}},
			Body:    []byte(flaggedBody),
			Details: "tollgate_prompt_flagged_for_moderation",
		}}}, replies[1])
	if len(f.got) != 1 {
		t.Fatalf("%d checks", len(f.got))
	}
	got := f.got[0]
	if !got.Moderation || got.LLMSecurity || !got.Advanced || got.Authorization != "Bearer sk-user-key" ||
		got.Organization != "org-1" || got.RequestID != requestID || string(got.Body) != chatBody {
		t.Errorf("check asked %+v", got)
	}
	recs := sink.Records()
	if len(recs) != 1 {
		t.Fatalf("%d records", len(recs))
	}
	r := recs[0]
	if r.Status != 400 || r.Error != flagged.Block.Reason || r.Attempts != 0 {
		t.Errorf("record status %d error %q attempts %d", r.Status, r.Error, r.Attempts)
	}
	want := []record.Property{{Key: "tollgate-moderation", Value: "flagged"}, {Key: "tollgate-moderation-ms", Value: "120"}}
	if !equalProps(r.Properties, want) {
		t.Errorf("properties %+v", r.Properties)
	}
	js, _ := json.Marshal(r)
	if strings.Contains(string(js), "sk-user-key") || strings.Contains(string(js), "sk-helicone-secret") {
		t.Errorf("a secret reached the record: %s", js)
	}
}

func equalProps(a, b []record.Property) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// A prompt that passes goes on to the provider unchanged, the outcome in
// the record; a classifier outage (fail open, as Helicone's
// PromptSecurityClient.ts) is recorded too.
func TestScreenPassedGoesOn(t *testing.T) {
	f := &fakeScreen{verdict: screen.Verdict{Results: []screen.Result{
		{Check: screen.CheckLLMSecurity, Outcome: screen.Failed, Duration: 30 * time.Millisecond},
		{Check: screen.CheckModeration, Outcome: screen.Passed, Duration: 80 * time.Millisecond},
	}}}
	s, sink := newTestServer(t, withScreen(f))
	replies, _ := run(s, nil, moderatedCall("helicone-llm-security-enabled", "true", "helicone-property-app", "shop")...)
	if len(replies) != 4 || replies[1].GetRequestBody() == nil {
		t.Fatalf("replies %v", replies)
	}
	r := sink.Records()[0]
	want := []record.Property{{Key: "app", Value: "shop"},
		{Key: "tollgate-llm-security", Value: "error"}, {Key: "tollgate-llm-security-ms", Value: "30"},
		{Key: "tollgate-moderation", Value: "passed"}, {Key: "tollgate-moderation-ms", Value: "80"}}
	if r.Status != 200 || !equalProps(r.Properties, want) {
		t.Errorf("status %d properties %+v", r.Status, r.Properties)
	}
}

// A call that does not ask is never checked, and the hook allocates
// nothing for it.
func TestScreenNotAsked(t *testing.T) {
	f := &fakeScreen{verdict: flagged}
	s, sink := newTestServer(t, withScreen(f))
	replies, _ := run(s, nil, gatedRequest[0], reqBody(chatBody), respHeaders(false, ":status", "200"), respBody(chatResponse, true))
	if len(f.got) != 0 || len(replies) != 4 || sink.Records()[0].Status != 200 {
		t.Fatalf("checked %d times", len(f.got))
	}
	c := &call{rec: &record.Record{}}
	body := []byte(chatBody)
	if n := testing.AllocsPerRun(100, func() { s.screenCall(c, body) }); n != 0 {
		t.Errorf("%v allocations for a call that did not ask", n)
	}
}

// Only OpenAI chat completions are checked, as at Helicone (provider
// OPENAI and a chat/completions path: ProxyForwarder.ts); another call
// goes on, with a warning saying so.
func TestScreenOnlyOpenAIChat(t *testing.T) {
	for name, script := range map[string][]*extprocv3.ProcessingRequest{
		"anthropic": {reqHeaders(false, ":method", "POST", ":path", "/v1/messages", "helicone-moderations-enabled", "true"),
			reqBody(`{"model":"claude-3-5-haiku-latest","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`)},
		"embeddings": {reqHeaders(false, ":method", "POST", ":path", "/v1/embeddings", "helicone-moderations-enabled", "true"),
			reqBody(`{"model":"text-embedding-3-small","input":"hi"}`)},
		"target url": {reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions", "helicone-moderations-enabled", "true",
			"helicone-target-url", "https://api.together.xyz"), reqBody(chatBody)},
	} {
		t.Run(name, func(t *testing.T) {
			f := &fakeScreen{verdict: flagged}
			s, sink := newTestServer(t, withScreen(f))
			replies, _ := run(s, nil, append(script, respHeaders(false, ":status", "200"), respBody(`{}`, true))...)
			if len(f.got) != 0 || len(replies) != 4 {
				t.Fatalf("checked %d times, %d replies", len(f.got), len(replies))
			}
			if w := sink.Records()[0].Warnings; !strings.Contains(w, "Helicone-Moderations-Enabled applies to OpenAI chat completions only") {
				t.Errorf("warnings %q", w)
			}
		})
	}
}

// The check gets the provider key a key-vault proxy key stands for, as
// Helicone's moderation call carries the request's headers after its swap
// (worker/src/lib/RequestWrapper.ts, ModerationManager.ts).
func TestScreenUsesTheVaultKey(t *testing.T) {
	f := &fakeScreen{}
	s, sink := newTestServer(t, withScreen(f), testVault(t))
	run(s, nil,
		reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions", "authorization", "Bearer "+testProxyKey,
			"helicone-moderations-enabled", "true"),
		reqBody(chatBody), respHeaders(false, ":status", "200"), respBody(chatResponse, true))
	if len(f.got) != 1 || f.got[0].Authorization != "Bearer "+testProviderKey {
		t.Fatalf("checks %+v", f.got)
	}
	js, _ := json.Marshal(sink.Records()[0])
	if strings.Contains(string(js), testProviderKey) {
		t.Errorf("the provider key reached the record")
	}
}

// The gate answers first: a cache hit is served without a check, as
// Helicone reads its cache before moderating (ProxyForwarder.ts).
func TestScreenAfterTheGate(t *testing.T) {
	f := &fakeStream{ctx: context.Background(), script: moderatedCall("helicone-cache-enabled", "true")[:2]}
	g := &fakeGate{stream: f, decision: &gate.Decision{Hit: &gate.CachedCall{ReferenceID: "ref"},
		Answer: &ratelimit.Answer{Status: 200, Body: []byte(chatResponse)}}}
	sc := &fakeScreen{verdict: flagged}
	s, _ := newTestServer(t, func(o *Options) { o.Gate = g }, withScreen(sc))
	if err := s.Process(f); err != nil {
		t.Fatal(err)
	}
	if len(sc.got) != 0 || f.replies[1].GetImmediateResponse().GetStatus().GetCode() != 200 {
		t.Fatalf("checked %d times; reply %v", len(sc.got), f.replies[1])
	}
}

// LLM security asked for on a gateway without a classifier goes on, as at
// Helicone without its classifier (ProxyForwarder.ts), and says so.
func TestScreenUnconfiguredWarns(t *testing.T) {
	f := &fakeScreen{verdict: screen.Verdict{Results: []screen.Result{{Check: screen.CheckLLMSecurity, Outcome: screen.Unconfigured}}}}
	s, sink := newTestServer(t, withScreen(f))
	replies, _ := run(s, nil, reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions", "helicone-llm-security-enabled", "true"),
		reqBody(chatBody), respHeaders(false, ":status", "200"), respBody(chatResponse, true))
	r := sink.Records()[0]
	if len(replies) != 4 || r.Status != 200 || !strings.Contains(r.Warnings, "Helicone-LLM-Security-Enabled no classifier is configured") {
		t.Fatalf("status %d warnings %q", r.Status, r.Warnings)
	}
	if !equalProps(r.Properties, []record.Property{{Key: "tollgate-llm-security", Value: "unconfigured"}}) {
		t.Errorf("properties %+v", r.Properties)
	}
}
