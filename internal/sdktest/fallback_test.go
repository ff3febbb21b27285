package sdktest

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/tidwall/gjson"

	"github.com/tollgate-dev/tollgate/mockprovider"
)

// Cross-provider fallback seen by the SDKs: the call's own provider fails
// (the mock fails its model, steered by x-mock-fail-models), the
// Helicone-Fallbacks entry on the other provider's origin answers through
// translation, and the client's SDK decodes the answer in its own format,
// text or tool call, whole or streamed. The other provider gets the
// gateway's configured key, never the client's; the record names the
// provider and model that answered, priced as that model.
func TestSDKFallbackAcrossProviders(t *testing.T) {
	d := startFallbackDev(t)
	runCrossProviderFallback(t, d, []fallbackDirection{
		{"openai→anthropic", "chat.mjs", "/v1", "gpt-4o-mini", "claude-sonnet-4-5", "Helicone-Fallbacks",
			`[{"target-url":"https://api.openai.com"},{"target-url":"https://api.anthropic.com","model":"claude-sonnet-4-5"}]`,
			"anthropic", "/v1/messages", "x-api-key", fallbackAnthropicKey},
		{"anthropic→openai", "messages.mjs", "", "claude-sonnet-4-5", "gpt-4o-mini", "Helicone-Fallbacks",
			`[{"target-url":"https://api.anthropic.com"},{"target-url":"https://api.openai.com","model":"gpt-4o-mini"}]`,
			"openai", "/v1/chat/completions", "authorization", "Bearer " + fallbackOpenAIKey},
	})
}

// The gateway's keys for the other provider, and the client's own.
const fallbackAnthropicKey, fallbackOpenAIKey, fallbackClientKey = "sk-ant-gateway-sdktest", "sk-openai-gateway-sdktest", "sk-client-sdktest"

// startFallbackDev runs tollgate dev with the gateway's key for each
// provider, as a translated fallback needs.
func startFallbackDev(t *testing.T) *dev {
	t.Setenv("TOLLGATE_SDKTEST_ANTHROPIC_KEY", fallbackAnthropicKey)
	t.Setenv("TOLLGATE_SDKTEST_OPENAI_KEY", fallbackOpenAIKey)
	return startDev(t, "--provider-key", "anthropic=env:TOLLGATE_SDKTEST_ANTHROPIC_KEY,openai=env:TOLLGATE_SDKTEST_OPENAI_KEY")
}

// fallbackDirection is one SDK's call whose own model fails and whose
// fallback (header: value) is on the other provider.
type fallbackDirection struct {
	name             string
	script, basePath string
	model, fallback  string
	header, value    string // Helicone-Fallback(s) and its value
	answerProvider   string
	answerPath, auth string // what the answering attempt must carry
	wantKey          string // in auth: the gateway's key for that provider
}

// runCrossProviderFallback runs each direction with every variant (text
// or tool call, whole or streamed): two attempts, the first with the
// request's own model, the second on the other provider with the
// fallback's model and the gateway's key (never the client's); the SDK
// decodes the answer; the record names and prices what answered.
func runCrossProviderFallback(t *testing.T, d *dev, directions []fallbackDirection) {
	t.Helper()
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
				headers: map[string]string{"Helicone-Request-Id": id, dir.header: dir.value,
					mockprovider.HeaderFailModels: dir.model},
				env: []string{"SDKTEST_API_KEY=" + fallbackClientKey},
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
					if strings.Contains(val, fallbackClientKey) {
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
