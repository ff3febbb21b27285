package tokenlimit

import (
	"encoding/json"
	"regexp"
	"strings"
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
	// Adversarial: runs that are slow to encode, a large image, many tiny
	// messages, an unclosed comment and ids for the normalizer.
	f.Add([]byte(`{"model":"gpt-4o","messages":[{"role":"user","content":"`+strings.Repeat(" ", 3000)+`x"}]}`), uint8(0), uint16(40))
	f.Add([]byte(`{"model":"gpt-4o","tools":[{"type":"function","function":{"name":"f","description":"`+strings.Repeat(" ", 2000)+`"}}],"messages":[{"role":"user","content":"hi there"}]}`), uint8(2), uint16(30))
	f.Add([]byte(`{"model":"gpt-4o,gpt-4o-mini","messages":[{"role":"user","content":[{"type":"text","text":"What is in this image?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,`+strings.Repeat("iVBORw0KGgo", 300)+`"}}]}]}`), uint8(0), uint16(200))
	f.Add([]byte(`{"model":"gpt-4o","messages":[`+strings.Repeat(`{"role":"user","content":"a b"},`, 200)+`{"role":"user","content":"end"}]}`), uint8(1), uint16(100))
	f.Add([]byte(`{"model":"gpt-3.5-turbo","messages":[{"role":"user","content":"a , <!-- x --> b <!-- id:12345678-1234-1234-1234-123456789abc`+strings.Repeat(" a ,", 500)+`"}]}`), uint8(0), uint16(50))
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

// normalizeRegexp is Helicone's NORMALIZATION_PATTERNS as regular
// expressions: what normalize must equal. Its separate patterns for each
// punctuation mark are one here: each removes the spaces around its mark
// whatever the others did, so one pass gives the same text.
func normalizeRegexp(s string) string {
	const jsSpace = `\s\v\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}\x{feff}`
	var (
		htmlComment = regexp.MustCompile(`<!--(?s:.*?)-->`)
		idUUID      = regexp.MustCompile(`(?i)\b(?:id|uuid):[a-f0-9-]{36}\b`)
		punctSpace  = regexp.MustCompile(`[` + jsSpace + `]*([,.:;(){}\[\]=><])[` + jsSpace + `]*`)
		spaceRun    = regexp.MustCompile(`[` + jsSpace + `]+`)
	)
	s = htmlComment.ReplaceAllLiteralString(s, "")
	s = idUUID.ReplaceAllLiteralString(s, "")
	s = punctSpace.ReplaceAllString(s, "$1")
	s = spaceRun.ReplaceAllLiteralString(s, " ")
	return strings.Trim(s, " ")
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{
		"Hello ,  world .  How  are   you ?",
		"a <!-- x --> , b <!-- open",
		"<!--<!-- -->-->",
		"see id:12345678-1234-1234-1234-123456789abc now",
		"xid:12345678-1234-1234-1234-123456789abc UUID:12345678-1234-1234-1234-12345678ABCD-x",
		"id:------------------------------------a id:123456781234123412341234567890ab_",
		"\u00a0 lead\v and\ttrail \n\u3000",
		"a\u2000,\u200a b \xff , \xe2\x80",
		"f ( x ) = { a : b } [ 1 ]",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := normalize(s), normalizeRegexp(s); got != want {
			t.Fatalf("normalize(%q) = %q, want %q", s, got, want)
		}
	})
}
