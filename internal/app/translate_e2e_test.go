package app

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
)

// Cross-provider fallback through `tollgate dev`: the request's own provider
// answers 500, the fallback entry on the other provider's origin gets the
// translated request with the gateway's configured key (never the client's),
// and the client gets the answer in its own format, streamed or not, tool
// calls included. The record names the provider and model that answered and
// prices them.

const (
	xlatAnthropicKey = "sk-ant-gateway-key"
	xlatOpenAIKey    = "sk-openai-gateway-key"
	xlatClientKey    = "sk-client-own-key"
)

// fakeProvider is one provider's origin: it keeps each request and answers
// with its answer, JSON or SSE by the request's "stream".
type fakeProvider struct {
	*httptest.Server
	mu     sync.Mutex
	paths  []string
	hdrs   []http.Header
	bodies []string
}

func newFakeProvider(t *testing.T, status int, json, sse string) *fakeProvider {
	p := &fakeProvider{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		p.mu.Lock()
		p.paths, p.hdrs, p.bodies = append(p.paths, r.URL.Path), append(p.hdrs, r.Header.Clone()), append(p.bodies, string(b))
		p.mu.Unlock()
		if strings.Contains(string(b), `"stream":true`) && status == 200 {
			w.Header().Set("content-type", "text/event-stream")
			w.WriteHeader(status)
			_, _ = io.WriteString(w, sse)
			return
		}
		w.Header().Set("content-type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, json)
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *fakeProvider) got() (paths []string, hdrs []http.Header, bodies []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.paths, p.hdrs, p.bodies
}

const (
	anthropicToolAnswer = `{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5",` +
		`"content":[{"type":"text","text":"Checking."},{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Paris"}}],` +
		`"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":20,"output_tokens":10}}`
	anthropicToolStream = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":20,\"output_tokens\":1}}}\n\n" +
		"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n" +
		"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Checking.\"}}\n\n" +
		"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n" +
		"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"get_weather\",\"input\":{}}}\n\n" +
		"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"city\\\":\\\"Paris\\\"}\"}}\n\n" +
		"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n" +
		"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":10}}\n\n" +
		"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
	openAIToolAnswer = `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o",` +
		`"choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},"finish_reason":"tool_calls"}],` +
		`"usage":{"prompt_tokens":20,"completion_tokens":10,"total_tokens":30}}`
	openAIToolStream = "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"\"}}]},\"finish_reason\":null}]}\n\n" +
		"data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}}]},\"finish_reason\":null}]}\n\n" +
		"data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n" +
		"data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[],\"usage\":{\"prompt_tokens\":20,\"completion_tokens\":10,\"total_tokens\":30}}\n\n" +
		"data: [DONE]\n\n"
	downAnswer = `{"error":{"message":"down"}}`
)

func startTranslatingDev(t *testing.T, openai, anthropic string) *devInstance {
	t.Setenv("TOLLGATE_TEST_XLAT_ANTHROPIC_KEY", xlatAnthropicKey)
	t.Setenv("TOLLGATE_TEST_XLAT_OPENAI_KEY", xlatOpenAIKey)
	return startDev(t, "--upstream-openai", openai, "--upstream-anthropic", anthropic,
		"--provider-key", "anthropic=env:TOLLGATE_TEST_XLAT_ANTHROPIC_KEY,openai=env:TOLLGATE_TEST_XLAT_OPENAI_KEY")
}

func TestDevFallbackTranslatesOpenAIToAnthropic(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(map[bool]string{false: "json", true: "sse"}[stream], func(t *testing.T) {
			oa := newFakeProvider(t, 500, downAnswer, "")
			an := newFakeProvider(t, 200, anthropicToolAnswer, anthropicToolStream)
			d := startTranslatingDev(t, oa.URL, an.URL)
			id := uuid.NewString()
			body := `{"model":"gpt-4o","stream":` + map[bool]string{false: "false", true: "true"}[stream] + `,` +
				`"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Weather in Paris?"}],` +
				`"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]}`
			// The client's other credential headers and OpenAI's own
			// headers, and an entry's try at a credential header, stay off
			// the translated attempt.
			resp, got := call{path: "/v1/chat/completions", body: body, headers: map[string]string{
				"authorization": "Bearer " + xlatClientKey, "helicone-request-id": id,
				"api-key": xlatClientKey + "-azure", "x-goog-api-key": xlatClientKey + "-gemini", "openai-organization": "org-client",
				"helicone-fallbacks": `[{"target-url":"https://api.openai.com"},{"target-url":"https://api.anthropic.com","model":"claude-sonnet-4-5","headers":{"api-key":"sk-entry-key"}}]`,
			}}.do(t, d)
			if resp.StatusCode != 200 || resp.Header.Get("Helicone-Fallback-Index") != "1" {
				t.Fatalf("status %d, fallback index %q\n%s", resp.StatusCode, resp.Header.Get("Helicone-Fallback-Index"), got)
			}
			for name := range resp.Header {
				if strings.HasPrefix(strings.ToLower(name), "x-tollgate-") {
					t.Errorf("internal header %s reached the client", name)
				}
			}
			if stream {
				if !strings.Contains(got, `"object":"chat.completion.chunk"`) || !strings.Contains(got, `"name":"get_weather"`) ||
					!strings.Contains(got, `Paris`) || !strings.Contains(got, `"finish_reason":"tool_calls"`) || !strings.Contains(got, "data: [DONE]") {
					t.Errorf("client stream is not OpenAI's with the tool call:\n%s", got)
				}
				if strings.Contains(got, `"usage"`) {
					t.Errorf("the client did not ask for usage and got it:\n%s", got)
				}
			} else {
				var out struct {
					Object  string
					Choices []struct {
						FinishReason string `json:"finish_reason"`
						Message      struct {
							ToolCalls []struct {
								Function struct{ Name, Arguments string }
							} `json:"tool_calls"`
						}
					}
				}
				if err := json.Unmarshal([]byte(got), &out); err != nil || out.Object != "chat.completion" || len(out.Choices) != 1 ||
					out.Choices[0].FinishReason != "tool_calls" || len(out.Choices[0].Message.ToolCalls) != 1 ||
					out.Choices[0].Message.ToolCalls[0].Function.Name != "get_weather" || !strings.Contains(out.Choices[0].Message.ToolCalls[0].Function.Arguments, "Paris") {
					t.Errorf("client answer is not OpenAI's with the tool call (%v):\n%s", err, got)
				}
			}
			if paths, _, _ := oa.got(); len(paths) != 1 {
				t.Errorf("openai got %d requests, want 1", len(paths))
			}
			paths, hdrs, bodies := an.got()
			if len(paths) != 1 {
				t.Fatalf("anthropic got %d requests, want 1", len(paths))
			}
			h := hdrs[0]
			if paths[0] != "/v1/messages" || h.Get("X-Api-Key") != xlatAnthropicKey || h.Get("Authorization") != "" || h.Get("Anthropic-Version") == "" {
				t.Errorf("anthropic got path %s, x-api-key %q, authorization %q, anthropic-version %q", paths[0], h.Get("X-Api-Key"), h.Get("Authorization"), h.Get("Anthropic-Version"))
			}
			if !strings.Contains(bodies[0], `"model":"claude-sonnet-4-5"`) || !strings.Contains(bodies[0], `"input_schema"`) ||
				!strings.Contains(bodies[0], `"system"`) || !strings.Contains(bodies[0], `"max_tokens"`) || h.Get("Accept-Encoding") != "identity" {
				t.Errorf("anthropic got an untranslated body: %s", bodies[0])
			}
			for _, v := range h {
				if strings.Contains(strings.Join(v, " "), xlatClientKey) {
					t.Errorf("the client's key reached anthropic")
				}
			}
			for _, name := range []string{"Api-Key", "X-Goog-Api-Key", "Openai-Organization"} {
				if v := h.Get(name); v != "" {
					t.Errorf("anthropic got the client's or the entry's %s %q", name, v)
				}
			}
			r := d.records(t)[id]
			if r == nil || r.Provider != "anthropic" || r.ResponseModel != "claude-sonnet-4-5" || r.FallbackIndex != 1 ||
				r.PromptTokens != 20 || r.CompletionTokens != 10 || r.CostUSD <= 0 {
				t.Errorf("record %+v, want anthropic's claude-sonnet-4-5, 20+10 tokens, priced", r)
			}
		})
	}
}

func TestDevFallbackTranslatesAnthropicToOpenAI(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(map[bool]string{false: "json", true: "sse"}[stream], func(t *testing.T) {
			oa := newFakeProvider(t, 200, openAIToolAnswer, openAIToolStream)
			an := newFakeProvider(t, 500, `{"type":"error","error":{"type":"api_error","message":"down"}}`, "")
			d := startTranslatingDev(t, oa.URL, an.URL)
			id := uuid.NewString()
			body := `{"model":"claude-sonnet-4-5","max_tokens":100,"stream":` + map[bool]string{false: "false", true: "true"}[stream] + `,` +
				`"system":"Be brief.","messages":[{"role":"user","content":"Weather in Paris?"}],` +
				`"tools":[{"name":"get_weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}]}`
			resp, got := call{path: "/v1/messages", body: body, headers: map[string]string{
				"x-api-key": xlatClientKey, "anthropic-version": "2023-06-01", "helicone-request-id": id,
				"anthropic-dangerous-direct-browser-access": "true", "openai-project": "proj-client",
				"helicone-fallbacks": `[{"target-url":"https://api.anthropic.com"},{"target-url":"https://api.openai.com","model":"gpt-4o"}]`,
			}}.do(t, d)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d\n%s", resp.StatusCode, got)
			}
			if stream {
				if !strings.Contains(got, "event: message_start") || !strings.Contains(got, `"type":"tool_use"`) ||
					!strings.Contains(got, "Paris") || !strings.Contains(got, `"stop_reason":"tool_use"`) || !strings.Contains(got, "event: message_stop") {
					t.Errorf("client stream is not Anthropic's with the tool use:\n%s", got)
				}
			} else {
				var out struct {
					Type       string
					StopReason string `json:"stop_reason"`
					Content    []struct {
						Type, Name string
						Input      map[string]string
					}
				}
				if err := json.Unmarshal([]byte(got), &out); err != nil || out.Type != "message" || out.StopReason != "tool_use" ||
					len(out.Content) != 1 || out.Content[0].Type != "tool_use" || out.Content[0].Name != "get_weather" || out.Content[0].Input["city"] != "Paris" {
					t.Errorf("client answer is not Anthropic's with the tool use (%v):\n%s", err, got)
				}
			}
			paths, hdrs, bodies := oa.got()
			if len(paths) != 1 {
				t.Fatalf("openai got %d requests, want 1", len(paths))
			}
			h := hdrs[0]
			if paths[0] != "/v1/chat/completions" || h.Get("Authorization") != "Bearer "+xlatOpenAIKey || h.Get("X-Api-Key") != "" || h.Get("Anthropic-Version") != "" {
				t.Errorf("openai got path %s, authorization %q, x-api-key %q, anthropic-version %q", paths[0], h.Get("Authorization"), h.Get("X-Api-Key"), h.Get("Anthropic-Version"))
			}
			for _, name := range []string{"Anthropic-Dangerous-Direct-Browser-Access", "Openai-Project"} {
				if v := h.Get(name); v != "" {
					t.Errorf("openai got the client's %s %q", name, v)
				}
			}
			if !strings.Contains(bodies[0], `"model":"gpt-4o"`) || !strings.Contains(bodies[0], `"function"`) || !strings.Contains(bodies[0], `"role":"system"`) {
				t.Errorf("openai got an untranslated body: %s", bodies[0])
			}
			r := d.records(t)[id]
			if r == nil || r.Provider != "openai" || r.ResponseModel != "gpt-4o" || r.PromptTokens != 20 || r.CompletionTokens != 10 || r.CostUSD <= 0 {
				t.Errorf("record %+v, want openai's gpt-4o, 20+10 tokens, priced", r)
			}
		})
	}
}

// What the other provider lacks is a 400 naming the field and the entry,
// before any call; so is an entry on a provider with no configured key.
func TestDevFallbackTranslationRefusals(t *testing.T) {
	oa := newFakeProvider(t, 500, downAnswer, "")
	an := newFakeProvider(t, 200, anthropicToolAnswer, anthropicToolStream)
	t.Setenv("TOLLGATE_TEST_XLAT_ANTHROPIC_KEY", xlatAnthropicKey)
	d := startDev(t, "--upstream-openai", oa.URL, "--upstream-anthropic", an.URL,
		"--provider-key", "anthropic=env:TOLLGATE_TEST_XLAT_ANTHROPIC_KEY")
	for _, tc := range []struct{ name, path, body, fallbacks, want string }{
		{"untranslatable", "/v1/chat/completions", `{"model":"gpt-4o","n":2,"messages":[{"role":"user","content":"hi"}]}`,
			`[{"target-url":"https://api.openai.com"},{"target-url":"https://api.anthropic.com","model":"claude-sonnet-4-5"}]`, "Helicone-Fallbacks entry 1 on anthropic: the request's n cannot"},
		{"no key", "/v1/messages", `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`,
			`[{"target-url":"https://api.anthropic.com"},{"target-url":"https://api.openai.com","model":"gpt-4o"}]`, "Helicone-Fallbacks entry 1 target-url https://api.openai.com"},
		{"no model", "/v1/chat/completions", `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`,
			`[{"target-url":"https://api.openai.com"},{"target-url":"https://api.anthropic.com"}]`, "needs its model"},
		{"other provider only", "/v1/chat/completions", `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`,
			`[{"target-url":"https://api.anthropic.com","model":"claude-sonnet-4-5"}]`, "the first entry must be on this request's own provider (openai)"},
		{"other provider first", "/v1/chat/completions", `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`,
			`[{"target-url":"https://api.anthropic.com","model":"claude-sonnet-4-5"},{"target-url":"https://api.openai.com"}]`, "Helicone-Fallbacks entry 0 target-url https://api.anthropic.com: the first entry"},
		{"forced fallback", "/v1/chat/completions", `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`,
			`[{"target-url":"https://api.openai.com","onCodes":[403]},{"target-url":"https://api.anthropic.com","model":"claude-sonnet-4-5"}]`, "Helicone-Fallbacks entry 0: onCodes 403-403"},
	} {
		resp, got := call{path: tc.path, body: tc.body, headers: map[string]string{
			"authorization": "Bearer " + xlatClientKey, "helicone-fallbacks": tc.fallbacks,
		}}.do(t, d)
		if resp.StatusCode != 400 || !strings.Contains(got, tc.want) {
			t.Errorf("%s: status %d, want 400 with %q\n%s", tc.name, resp.StatusCode, tc.want, got)
		}
	}
	if p, _, _ := oa.got(); len(p) != 0 {
		t.Errorf("openai got %d requests, want none", len(p))
	}
	if p, _, _ := an.got(); len(p) != 0 {
		t.Errorf("anthropic got %d requests, want none", len(p))
	}
}

// --provider-key takes env: and file: sources for openai and anthropic only;
// a key that reads empty stops the start.
func TestProviderKeysSetting(t *testing.T) {
	for _, bad := range []string{"anthropic=sk-literal", "gemini=env:X", "anthropic", "openai=env:", "openai=env:A,openai=env:B"} {
		if _, err := providerKeys(strings.Split(bad, ","), false); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	t.Setenv("TOLLGATE_TEST_XLAT_EMPTY", " ")
	if _, err := providerKeys([]string{"openai=env:TOLLGATE_TEST_XLAT_EMPTY"}, true); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty key: %v", err)
	}
	f := t.TempDir() + "/key"
	if err := os.WriteFile(f, []byte(xlatOpenAIKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if m, err := providerKeys([]string{"openai=file:" + f}, true); err != nil || m["openai"] != xlatOpenAIKey {
		t.Errorf("file key: %v %v", m, err)
	}
}

// Envoy's attempts share one header map: after a translated attempt, the
// next entry (back in the client's format) gets the client's own path and
// key again, and none of the other provider's headers or the gateway's key.
func TestDevFallbackAfterTranslatedAttempt(t *testing.T) {
	oa := newFakeProvider(t, 500, downAnswer, "")
	an := newFakeProvider(t, 500, `{"type":"error","error":{"type":"api_error","message":"down"}}`, "")
	third := newFakeProvider(t, 200, openAIToolAnswer, openAIToolStream)
	t.Setenv("TOLLGATE_TEST_XLAT_ANTHROPIC_KEY", xlatAnthropicKey)
	d := startDev(t, "--upstream-openai", oa.URL, "--upstream-anthropic", an.URL, "--allowed-target-origins", third.URL,
		"--provider-key", "anthropic=env:TOLLGATE_TEST_XLAT_ANTHROPIC_KEY")
	id := uuid.NewString()
	resp, got := call{path: "/v1/chat/completions", body: chat("gpt-4o"), headers: map[string]string{
		"authorization": "Bearer " + xlatClientKey, "helicone-request-id": id,
		"helicone-fallbacks": `[{"target-url":"https://api.openai.com"},{"target-url":"https://api.anthropic.com","model":"claude-sonnet-4-5"},` +
			`{"target-url":"` + third.URL + `","model":"gpt-4o-mini"}]`,
	}}.do(t, d)
	if resp.StatusCode != 200 || resp.Header.Get("Helicone-Fallback-Index") != "2" || !strings.Contains(got, `"object":"chat.completion"`) {
		t.Fatalf("status %d, fallback index %q\n%s", resp.StatusCode, resp.Header.Get("Helicone-Fallback-Index"), got)
	}
	if p, h, _ := an.got(); len(p) != 1 || h[0].Get("X-Api-Key") != xlatAnthropicKey {
		t.Fatalf("anthropic got %d requests (%v)", len(p), h)
	}
	paths, hdrs, bodies := third.got()
	if len(paths) != 1 {
		t.Fatalf("third origin got %d requests, want 1", len(paths))
	}
	h := hdrs[0]
	if paths[0] != "/v1/chat/completions" || h.Get("Authorization") != "Bearer "+xlatClientKey || h.Get("X-Api-Key") != "" || h.Get("Anthropic-Version") != "" {
		t.Errorf("third origin got path %s, authorization %q, x-api-key %q, anthropic-version %q", paths[0], h.Get("Authorization"), h.Get("X-Api-Key"), h.Get("Anthropic-Version"))
	}
	if !strings.Contains(bodies[0], `"model":"gpt-4o-mini"`) || !strings.Contains(bodies[0], `"messages"`) || strings.Contains(bodies[0], "max_tokens") {
		t.Errorf("third origin got %s, want the client's body with its model", bodies[0])
	}
	if r := d.records(t)[id]; r == nil || r.Provider != strings.TrimPrefix(third.URL, "http://") || r.FallbackIndex != 2 {
		t.Errorf("record %+v, want entry 2 on %s", r, third.URL)
	}
}

// The other provider refusing a translated attempt's key refuses the
// gateway's key: the client gets a 502 saying so, not the provider's 401
// (its own auth error, to an SDK) nor its body, which may echo the key.
func TestDevFallbackGatewayKeyRefused(t *testing.T) {
	for _, status := range []int{401, 403} {
		oa := newFakeProvider(t, 500, downAnswer, "")
		an := newFakeProvider(t, status, `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key sk-ant-***key"}}`, "")
		d := startTranslatingDev(t, oa.URL, an.URL)
		resp, got := call{path: "/v1/chat/completions", body: `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`, headers: map[string]string{
			"authorization":      "Bearer " + xlatClientKey,
			"helicone-fallbacks": `[{"target-url":"https://api.openai.com"},{"target-url":"https://api.anthropic.com","model":"claude-sonnet-4-5"}]`,
		}}.do(t, d)
		if resp.StatusCode != 502 || !strings.Contains(got, "gateway's configured key") || strings.Contains(got, "sk-ant") || strings.Contains(got, "authentication_error") {
			t.Errorf("anthropic %d: client got %d\n%s", status, resp.StatusCode, got)
		}
		if p, _, _ := an.got(); len(p) != 1 {
			t.Errorf("anthropic got %d requests, want 1", len(p))
		}
	}
}

// A translated answer's content-type is the client format's, not the
// answering provider's own spelling of it.
func TestDevFallbackTranslatedContentType(t *testing.T) {
	oa := newFakeProvider(t, 500, downAnswer, "")
	an := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		w.Header().Set("content-type", "application/json; charset=utf-8")
		_, _ = io.WriteString(w, anthropicToolAnswer)
	}))
	t.Cleanup(an.Close)
	d := startTranslatingDev(t, oa.URL, an.URL)
	resp, got := call{path: "/v1/chat/completions", body: `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`, headers: map[string]string{
		"authorization":      "Bearer " + xlatClientKey,
		"helicone-fallbacks": `[{"target-url":"https://api.openai.com"},{"target-url":"https://api.anthropic.com","model":"claude-sonnet-4-5"}]`,
	}}.do(t, d)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || !strings.Contains(got, `"chat.completion"`) {
		t.Errorf("status %d, content-type %q\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), got)
	}
}
