package prompt

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// The renderer's own string encoder must agree with encoding/json (with
// HTML escaping off) on every input, valid UTF-8 or not.
func TestAppendPromptJSONStringMatchesEncodingJSON(t *testing.T) {
	var all strings.Builder
	for c := range 0x80 {
		all.WriteByte(byte(c))
	}
	for _, s := range []string{
		"", "plain", all.String(), "é世界🙂", "\u2028\u2029", "a\xffb\xc3", "\xed\xa0\x80", "<&>", `\"\\`, "\x7f",
	} {
		checkJSONString(t, s)
	}
}

func FuzzAppendPromptJSONString(f *testing.F) {
	f.Add("a\"b\\c\n\x00\xff\u2028é")
	f.Fuzz(checkJSONString)
}

func checkJSONString(t *testing.T, s string) {
	var want bytes.Buffer
	enc := json.NewEncoder(&want)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	if got := appendJSONString(nil, s); string(got) != strings.TrimSuffix(want.String(), "\n") {
		t.Fatalf("%q: got %s, want %s", s, got, want.Bytes())
	}
}

// FuzzParsePromptVariables: the hand-written walk reads every header as
// encoding/json would.
func FuzzParsePromptVariables(f *testing.F) {
	for _, s := range []string{
		`{}`, ` { "a" : "b" , "n": -1.5e3, "o": { "x": [ 1, "}" ] }, "z": null, "t": true } `,
		`{"a":"\u00e9\n\"","a":"dup"}`, `{"\u0061":"\ud83d\ude00"}`, `[1]`, `null`, `{"a":}`, "{\"a\":\"\xff\"}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := ParseVariables([]byte(in))
		want, wantErr := referencePromptVariables([]byte(in))
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("%q: error %v, encoding/json says %v", in, err, wantErr)
		}
		if err != nil {
			return
		}
		if len(got) != len(want) {
			t.Fatalf("%q: got %q, want %q", in, got, want)
		}
		for k, v := range want {
			if got[k] != v {
				t.Fatalf("%q: %q is %q, want %q", in, k, got[k], v)
			}
		}
	})
}

func referencePromptVariables(raw []byte) (map[string]string, error) {
	raw = bytes.TrimSpace(raw)
	out := map[string]string{}
	if len(raw) == 0 {
		return out, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, err
	}
	if raw[0] != '{' {
		return nil, errors.New("not an object")
	}
	for k, v := range obj {
		var s string
		if v[0] == '"' && json.Unmarshal(v, &s) == nil {
			out[k] = s
			continue
		}
		var c bytes.Buffer
		_ = json.Compact(&c, v)
		out[k] = c.String()
	}
	return out, nil
}
