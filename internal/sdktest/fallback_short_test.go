package sdktest

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/tidwall/gjson"

	"github.com/tollgate-dev/tollgate/mockprovider"
)

// The short form seen by the SDKs: Helicone-Fallback names only a model of
// the other provider ("claude-sonnet-4-5" on an OpenAI call, "gpt-4o-mini"
// on an Anthropic one), with no target-url. The call's own provider fails
// its model, the gateway sends the fallback to the provider that serves the
// named model, translated, with the gateway's configured key, and the SDK
// decodes the answer in its own format, text or tool call, whole or
// streamed. The record names and prices the provider and model that
// answered. Both spellings of the short form are used: the bare model name
// and the JSON list.
func TestSDKShortFormFallbackAcrossProviders(t *testing.T) {
	const anthropicKey, openAIKey, clientKey = "sk-ant-gateway-short", "sk-openai-gateway-short", "sk-client-short"
	t.Setenv("TOLLGATE_SDKTEST_ANTHROPIC_KEY", anthropicKey)
	t.Setenv("TOLLGATE_SDKTEST_OPENAI_KEY", openAIKey)
	d := startDev(t, "--provider-key", "anthropic=env:TOLLGATE_SDKTEST_ANTHROPIC_KEY,openai=env:TOLLGATE_SDKTEST_OPENAI_KEY")

	directions := []struct {
		name             string
		script, basePath string
		model, fallback  string
		header           string // Helicone-Fallback
		answerProvider   string
		answerPath, auth string
		wantKey          string
	}{
		{"openai→anthropic", "chat.mjs", "/v1", "gpt-4o-mini", "claude-sonnet-4-5", "claude-sonnet-4-5",
			"anthropic", "/v1/messages", "x-api-key", anthropicKey},
		{"anthropic→openai", "messages.mjs", "", "claude-sonnet-4-5", "gpt-4o-mini", `[{"model": "gpt-4o-mini"}]`,
			"openai", "/v1/chat/completions", "authorization", "Bearer " + openAIKey},
	}
	type check struct {
		name, id, provider, model string
		prompt                    int64
	}
	var checks []check
	for _, dir := range directions {
		for _, v := range variants {
			name := fmt.Sprintf("%s stream=%v tools=%v", dir.name, v.stream, v.tools)
			id := uuid.NewString()
			before := len(d.mock.Received())
			r := scenario{script: dir.script, baseURL: d.base(dir.basePath), model: dir.model, stream: v.stream, tools: v.tools,
				headers: map[string]string{"Helicone-Request-Id": id, "Helicone-Fallback": dir.header,
					mockprovider.HeaderFailModels: dir.model},
				env: []string{"SDKTEST_API_KEY=" + clientKey},
			}.run(t)
			got := d.mock.Received()
			if len(got) != before+2 {
				t.Fatalf("%s: the mock got %d attempts, want 2 (the failing one, the fallback)", name, len(got)-before)
			}
			if m := gjson.GetBytes(got[before].Body, "model").String(); m != dir.model {
				t.Errorf("%s: the first attempt asked for %q, want the request's own %q", name, m, dir.model)
			}
			answered := got[len(got)-1]
			m := gjson.GetBytes(answered.Body, "model").String()
			if key := answered.Header.Get(dir.auth); answered.Path != dir.answerPath || key != dir.wantKey || m != dir.fallback {
				t.Errorf("%s: the fallback went to %s for %q with %s %q, want %s for %q with the gateway's key",
					name, answered.Path, m, dir.auth, key, dir.answerPath, dir.fallback)
			}
			for h, vals := range answered.Header {
				for _, val := range vals {
					if strings.Contains(val, clientKey) {
						t.Errorf("%s: the client's key reached the other provider in %s", name, h)
					}
				}
			}
			if r.FallbackIndex != "1" {
				t.Errorf("%s: Helicone-Fallback-Index %q, want 1", name, r.FallbackIndex)
			}
			prompt := mockprovider.PromptTokens(answered.Body)
			checkResult(t, name, r, want{stream: v.stream, tools: v.tools, prompt: prompt})
			checks = append(checks, check{name, id, dir.answerProvider, dir.fallback, prompt})
		}
	}
	recs := d.records(t)
	for _, c := range checks {
		r := recs[c.id]
		p := prices[c.model]
		cost := (float64(c.prompt)*p.input + float64(mockprovider.CompletionTokens)*p.output) / 1e6
		if r == nil || r.Status != 200 || r.Provider != c.provider || r.ResponseModel != c.model || r.FallbackIndex != 1 ||
			r.PromptTokens != c.prompt || r.CompletionTokens != mockprovider.CompletionTokens || math.Abs(r.CostUSD-cost) > 1e-9*cost {
			t.Errorf("%s: record %+v, want %s %s, fallback index 1, %d/%d tokens, cost %v",
				c.name, r, c.provider, c.model, c.prompt, mockprovider.CompletionTokens, cost)
		}
	}
}

// Without a configured key for the other provider, the short form naming
// that provider's model is refused before any call with a 400 naming the
// header, the entry and the model.
func TestSDKShortFormFallbackNeedsKey(t *testing.T) {
	d := startDev(t)
	before := len(d.mock.Received())
	req, err := http.NewRequest("POST", d.base("/v1/chat/completions"),
		strings.NewReader(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer sk-client-short")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Helicone-Fallback", "claude-sonnet-4-5")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(body), `Helicone-Fallback entry 0 model \"claude-sonnet-4-5\" (anthropic's)`) {
		t.Errorf("got %d %s, want a 400 naming the entry and the model", resp.StatusCode, body)
	}
	if n := len(d.mock.Received()) - before; n != 0 {
		t.Errorf("the mock got %d calls, want none", n)
	}
}
