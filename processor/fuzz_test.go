package processor

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// FuzzRequestHeaders feeds arbitrary Helicone header values and bodies
// through the request phases: never a panic, and a rejection always names a
// header or the body and is logged.
func FuzzRequestHeaders(f *testing.F) {
	f.Add("helicone-request-id", "0192f0c4-5a1e-7cc0-8f00-1234567890ab", `{"model":"gpt-4o"}`)
	f.Add("helicone-omit-request", "maybe", `{}`)
	f.Add("helicone-target-url", "http://[::1", `[1,2]`)
	f.Add("helicone-openai-api-base", "https://myres.openai.azure.com/", `{"messages":[]}`)
	f.Add("helicone-property-", "x", "{\"model\":\"\xff\"}")
	f.Add("helicone-auth", "Bearer ", `{"stream":true,"model":"gpt-4o-mini"}`)
	f.Add("helicone-fallback", `[{"model":"gpt-4o-mini","bodyKeyOverride":{"messages":null}}]`, `{"model":"gpt-4o"}`)
	f.Add("helicone-fallbacks", `[{"target-url":"https://api.together.xyz"},{"headers":{"x-a":"b"}}]`, `{}`)
	f.Add("helicone-retry-num", "7", `{"model":"gpt-4o"}`)
	f.Add("helicone-retry-enabled", "true", `{"model":"gpt-4o"}`)
	f.Add("helicone-prompt-id", "support", `{"model":"gpt-4o"}`)
	f.Add("helicone-prompt-variables", `{"company":"\"}]"}`, `{"messages":[]}`)
	f.Fuzz(func(t *testing.T, key, value, body string) {
		s, sink := newTestServer(t, func(o *Options) { o.Prompts = shelf() })
		key = "helicone-" + strings.TrimPrefix(strings.ToLower(key), "helicone-")
		replies, err := run(s, nil,
			reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions", key, value),
			reqBody(body),
			respHeaders(false, ":status", "200", "content-type", "application/json"),
			respBody(`{"usage":{"prompt_tokens":1}}`, true))
		if err != nil {
			t.Fatal(err)
		}
		if n := len(sink.Records()); n != 1 {
			t.Fatalf("%d records", n)
		}
		s.links.Range(func(k, _ any) bool { t.Fatalf("link %v outlives its call", k); return false })
		checkAttemptsRoute(t, replies[0])
		for _, r := range replies {
			if imm := r.GetImmediateResponse(); imm != nil {
				msg := gjson.GetBytes(imm.GetBody(), "error.message").String()
				if !strings.Contains(msg, "Helicone-") && !strings.Contains(msg, "body") {
					t.Fatalf("rejection %q names neither a header nor the body", msg)
				}
			}
		}
	})
}
