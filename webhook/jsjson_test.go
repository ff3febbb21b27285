package webhook

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// The want values are what Node.js writes for
// JSON.stringify(JSON.parse(in)): the text Helicone's documented receiver
// signs (docs/features/webhooks.mdx in Helicone/helicone hashes
// JSON.stringify(req.body)). They were produced by node and are kept here
// as data, so the test needs no JavaScript.
func TestAppendJSJSONWritesWhatJavaScriptWrites(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		// Array-index keys first, by value; the rest in order; numbers as
		// JavaScript prints them; out of range is null; -0 is 0.
		{`{"b":1,"a":[1.0,2.50,1e2,1E-7,0.000001,123456789012345678901234,-0.0,1e400],"2":"x","10":"y","1":"z","01":"w","4294967295":"big","4294967294":"max"}`,
			`{"1":"z","2":"x","10":"y","4294967294":"max","b":1,"a":[1,2.5,100,1e-7,0.000001,1.2345678901234569e+23,0,null],"01":"w","4294967295":"big"}`},
		// <, >, &, U+2028, U+2029 and DEL stay as they are; control
		// characters use the short escapes or lowercase \u00xx; a
		// surrogate pair is one character; an escaped backslash stays.
		{`{"s":"<a href=\"x\">&amp;</a>\u2028\u2029 \u0001\u001f\b\f\n\r\t\u007f é 😀 \ud83d\ude00 \\ud800","n":null,"t":true,"f":false}`,
			"{\"s\":\"<a href=\\\"x\\\">&amp;</a>\u2028\u2029 \\u0001\\u001f\\b\\f\\n\\r\\t\u007f é 😀 😀 \\\\ud800\",\"n\":null,\"t\":true,\"f\":false}"},
		// A repeated key keeps its first place and its last value.
		{`{"dup":1,"x":2,"dup":3}`, `{"dup":3,"x":2}`},
		{"[ {\"a\" : 1 } , [ ] , { } ]", `[{"a":1},[],{}]`},
		{`{"n":0.1,"m":1.7976931348623157e308,"k":5e-324,"q":100000000000000000000,"r":1e21,"u":123e-20}`,
			`{"n":0.1,"m":1.7976931348623157e+308,"k":5e-324,"q":100000000000000000000,"r":1e+21,"u":1.23e-18}`},
	} {
		got, err := appendJSJSON(nil, c.in)
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if string(got) != c.want {
			t.Errorf("%s\n got %s\nwant %s", c.in, got, c.want)
		}
		again, _ := appendJSJSON(nil, string(got))
		if string(again) != string(got) {
			t.Errorf("not stable: %s then %s", got, again)
		}
	}
}

func TestAppendJSStringAndNumber(t *testing.T) {
	// Invalid UTF-8 becomes U+FFFD (one per byte), so the bytes sent are
	// valid UTF-8 and every receiver decodes the same text.
	if got, want := string(appendJSString(nil, "a\xffb\xe2\x82c <>&\u2028")), "\"a\uFFFDb\uFFFD\uFFFDc <>&\u2028\""; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	for f, want := range map[float64]string{
		0.00020250000000000002: "0.00020250000000000002", 1e-7: "1e-7", 1e21: "1e+21", 1e20: "100000000000000000000",
		-1.5e-9: "-1.5e-9", 42: "42",
	} {
		if got := string(appendJSNumber(nil, f)); got != want {
			t.Errorf("%v: got %s, want %s", f, got, want)
		}
	}
}

// What JavaScript would read differently from Go, or what is no object or
// array, is refused: the body then goes as a string.
func TestAppendJSJSONRefuses(t *testing.T) {
	for _, in := range []string{
		`{"a":"\ud800"}`, `{"a":"\udc00x"}`, `{"a":"\ud83dx"}`, `"text"`, `42`, `{"a":1} {}`, `{"a":`, `data: {"a":1}`, ``,
	} {
		if out, err := appendJSJSON([]byte("x"), in); err == nil || string(out) != "x" {
			t.Errorf("%s: accepted as %s", in, out)
		}
	}
	if hasLoneSurrogate(`{"a":"\\ud800 \ud83d\ude00"}`) {
		t.Error("an escaped backslash or a pair taken for a lone surrogate")
	}
	if !strings.Contains(string(appendBody(nil, `{"a":"\ud800"}`, false, true)), `\\ud800`) {
		t.Error("a body with a lone surrogate is not sent as a string")
	}
}

// Any body: refused and left out, or written as valid UTF-8 JSON that reads
// back to itself (what the receiver re-serializes is what was signed).
func FuzzAppendJSJSON(f *testing.F) {
	for _, s := range []string{`{"a":[1,2.5e-7,"x\u2028"]}`, `[{"1":0,"b":null}]`, `{"a":"\ud800"}`, "{\"a\":\"\xff\"}", `[]`, `{`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := appendJSJSON([]byte("p"), in)
		if err != nil {
			if string(out) != "p" {
				t.Fatalf("refused %q but wrote %q", in, out)
			}
			return
		}
		body := out[1:]
		if !utf8.Valid(body) || !json.Valid(body) {
			t.Fatalf("%q gave invalid %q", in, body)
		}
		if again, err := appendJSJSON(nil, string(body)); err != nil || !bytes.Equal(again, body) {
			t.Fatalf("%q: %q then %q (%v)", in, body, again, err)
		}
	})
}
