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

// Rendering reads a string about once (each search may reread a
// separator's length) however many "{{" or marker openings in it
// are not placeholders: a search over the rest of the string at each of
// them made 256 KiB of '{' cost most of a second.
func TestPlaceholderSearchIsLinear(t *testing.T) {
	for name, s := range map[string]string{
		"braces":        strings.Repeat("{", 256<<10),
		"marker starts": strings.Repeat(markerOpen, 8<<10),
		"both":          strings.Repeat("{{ x"+markerOpen+"y", 4<<10) + "{{z}}",
	} {
		p := newPlaceholders(s)
		r := &renderer{vars: map[string]string{"z": "Z"}}
		if _, _ = substitute(s, p.next, func(at string) (int, string, bool) {
			name, n := promptPlaceholderAt(at)
			if n == 0 {
				return 0, "", false
			}
			return n, r.vars[name], true
		}); p.braces.scanned > 3*len(s) || p.markers.scanned > 3*len(s) {
			t.Errorf("%s: searched %d and %d bytes of a %d-byte string", name, p.braces.scanned, p.markers.scanned, len(s))
		}
	}
}

// BenchmarkRenderBraces renders a template of 256 KiB of '{': one pass.
func BenchmarkRenderBraces(b *testing.B) {
	v := Version{ID: "braces", Version: 1, Template: Template{Messages: []byte(`[{"role":"user","content":"` + strings.Repeat("{", 256<<10) + `{{x}}"}]`)}}
	vars := map[string]string{"x": "y"}
	b.SetBytes(int64(len(v.Messages)))
	for b.Loop() {
		if _, err := RenderVars(v, vars); err != nil {
			b.Fatal(err)
		}
	}
}
