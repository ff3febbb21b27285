package sdktest

import (
	"io"
	"net/http"
	"strings"
	"testing"
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
	d := startFallbackDev(t)
	runCrossProviderFallback(t, d, []fallbackDirection{
		{"openai→anthropic", "chat.mjs", "/v1", "gpt-4o-mini", "claude-sonnet-4-5", "Helicone-Fallback", "claude-sonnet-4-5",
			"anthropic", "/v1/messages", "x-api-key", fallbackAnthropicKey},
		{"anthropic→openai", "messages.mjs", "", "claude-sonnet-4-5", "gpt-4o-mini", "Helicone-Fallback", `[{"model": "gpt-4o-mini"}]`,
			"openai", "/v1/chat/completions", "authorization", "Bearer " + fallbackOpenAIKey},
	})
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
