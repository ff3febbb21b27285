package provider

import (
	"errors"
	"strings"
	"testing"
)

func TestParseRequest(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    Request
		wantErr string // substring; "" means no error
	}{
		{name: "empty", body: ""},
		{name: "whitespace", body: " \r\n\t"},
		{name: "openai chat", body: `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"stream":true,"user":"u-1"}`,
			want: Request{Model: "gpt-4o", Stream: true, User: "u-1"}},
		{name: "anthropic metadata user", body: `{"model":"claude-sonnet-4-5","max_tokens":1024,"metadata":{"user_id":"acct-9"},"messages":[]}`,
			want: Request{Model: "claude-sonnet-4-5", User: "acct-9"}},
		{name: "user wins over metadata", body: `{"user":"top","metadata":{"user_id":"meta"}}`,
			want: Request{User: "top"}},
		{name: "safety identifier fallback", body: `{"model":"gpt-5","safety_identifier":"hash-1"}`,
			want: Request{Model: "gpt-5", User: "hash-1"}},
		{name: "stream false", body: `{"model":"m","stream":false}`, want: Request{Model: "m"}},
		{name: "stream as string is not true", body: `{"model":"m","stream":"true"}`, want: Request{Model: "m"}},
		{name: "model wrong type ignored", body: `{"model":42,"user":["x"]}`},
		{name: "nested model not top-level", body: `{"input":{"model":"inner"}}`},
		{name: "escaped strings", body: `{"model":"gpt-4o\u002dmini","user":"a\"b"}`,
			want: Request{Model: "gpt-4o-mini", User: `a"b`}},
		{name: "escaped key", body: `{"mod\u0065l":"x"}`, want: Request{Model: "x"}},
		{name: "invalid utf8 replaced", body: "{\"model\":\"a\xffb\"}", want: Request{Model: "a\uFFFDb"}},
		{name: "leading whitespace", body: "\n  {\"model\":\"m\"}  \n", want: Request{Model: "m"}},
		{name: "not json", body: `model=gpt-4o`, wantErr: "not a JSON object (invalid JSON)"},
		{name: "truncated", body: `{"model":"gpt-4o"`, wantErr: "invalid JSON"},
		{name: "array", body: `[{"model":"gpt-4o"}]`, wantErr: "not a JSON object (got array)"},
		{name: "string", body: `"hello"`, wantErr: "got string"},
		{name: "number", body: `12`, wantErr: "got number"},
		{name: "null", body: `null`, wantErr: "got null"},
		{name: "bool", body: `true`, wantErr: "got boolean"},
		{name: "nested too deeply", body: `{"model":"m","x":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`,
			wantErr: "not a JSON object (nested too deeply)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRequest([]byte(tt.body))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrNotJSONObject) {
					t.Fatalf("err = %v, want one containing %q wrapping ErrNotJSONObject", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// The strings kept from a body must not change when the caller reuses the
// body's buffer.
func TestParseRequestDoesNotAlias(t *testing.T) {
	body := []byte(`{"model":"gpt-4o","user":"alice"}`)
	r, err := ParseRequest(body)
	if err != nil {
		t.Fatal(err)
	}
	for i := range body {
		body[i] = 'x'
	}
	if r.Model != "gpt-4o" || r.User != "alice" {
		t.Fatalf("request changed with its body: %+v", r)
	}
}

func TestParseRequestRealistic(t *testing.T) {
	got, err := ParseRequest(testdata(t, "req_chat.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := Request{Model: "gpt-4o-mini", Stream: true, User: "tenant-42/user-1337"}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}
