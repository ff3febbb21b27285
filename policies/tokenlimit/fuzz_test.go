package tokenlimit

import (
	"encoding/json"
	"testing"

	"github.com/tidwall/gjson"
)

// FuzzApply feeds untrusted bodies to every mode under a small window: a
// rewritten body is valid JSON, keeps its top-level keys and never grows a
// message; truncate keeps every message and both cuts stay within the
// limit when they report a size.
func FuzzApply(f *testing.F) {
	f.Add([]byte(`{"model":"gpt-4o","messages":[{"role":"user","content":"hello world, hello world, hello world"}]}`), uint8(0), uint16(8))
	f.Add([]byte(`{"model":"gpt-4o,gpt-4o-mini","max_tokens":3,"messages":[{"role":"system","content":"a  ,  b"},{"role":"user","content":[{"type":"text","text":"x y z x y z"},{"type":"text","text":"\u00e9\u00e9\u00e9 \ud83e\udd8a"}]}]}`), uint8(2), uint16(6))
	f.Add([]byte(`{"model":"claude-3-haiku","system":"s s s s","messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[{"type":"text","text":"r r r r r r"}]}]}]}`), uint8(1), uint16(5))
	f.Add([]byte(`{"model":"gpt-4.1","instructions":"i","input":[{"role":"user","content":"q q q q q q q q"},{"type":"function_call_output","call_id":"c","output":"o o o o"}]}`), uint8(1), uint16(7))
	f.Fuzz(func(t *testing.T, body []byte, mode uint8, context uint16) {
		m := []Mode{Truncate, MiddleOut, Fallback}[int(mode)%3]
		r := Apply(Request{Mode: m, Body: body, Context: window(int(context))})
		if r.Body == nil {
			return
		}
		if !json.Valid(r.Body) {
			t.Fatalf("%s made invalid JSON of %q: %q", m, body, r.Body)
		}
		var before, after map[string]json.RawMessage
		if json.Unmarshal(body, &before) != nil || json.Unmarshal(r.Body, &after) != nil || len(before) != len(after) {
			t.Fatalf("%s changed the top-level keys: %q -> %q", m, body, r.Body)
		}
		n, n2 := gjson.GetBytes(body, "messages.#").Int(), gjson.GetBytes(r.Body, "messages.#").Int()
		if n2 > n || (m == Truncate && n2 != n) {
			t.Fatalf("%s: %d messages became %d", m, n, n2)
		}
		if (m == Truncate || m == MiddleOut) && r.SentSize > r.Limit && r.Limit > 0 && r.SentSize > r.Tokens {
			t.Fatalf("%s grew the prompt: %d -> %d tokens", m, r.Tokens, r.SentSize)
		}
	})
}
