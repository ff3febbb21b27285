package provider

import (
	"errors"
	"testing"

	"github.com/tidwall/gjson"
)

func TestEnsureStreamUsage(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		changed bool
		want    string // JSON the output must be equal to (ignoring spacing); "" means body unchanged
		wantErr bool
	}{
		{name: "added", body: `{"model":"gpt-4o","stream":true,"messages":[]}`, changed: true,
			want: `{"model":"gpt-4o","stream":true,"messages":[],"stream_options":{"include_usage":true}}`},
		{name: "added to existing options keeping other fields", body: `{"stream":true,"stream_options":{"include_obfuscation":false}}`, changed: true,
			want: `{"stream":true,"stream_options":{"include_obfuscation":false,"include_usage":true}}`},
		{name: "null options replaced", body: `{"stream":true,"stream_options":null}`, changed: true,
			want: `{"stream":true,"stream_options":{"include_usage":true}}`},
		{name: "null include_usage set", body: `{"stream":true,"stream_options":{"include_usage":null}}`, changed: true,
			want: `{"stream":true,"stream_options":{"include_usage":true}}`},
		// false is "I do not want the usage chunk": the caller strips it
		// from the client's stream, so it can still be asked for.
		{name: "explicit false turned on", body: `{"stream":true,"stream_options":{"include_usage":false}}`, changed: true,
			want: `{"stream":true,"stream_options":{"include_usage":true}}`},
		{name: "explicit true kept", body: `{"stream":true,"stream_options":{"include_usage":true}}`},
		{name: "not streaming", body: `{"model":"gpt-4o","messages":[]}`},
		{name: "stream false", body: `{"stream":false}`},
		{name: "stream options of wrong type left alone", body: `{"stream":true,"stream_options":"yes"}`},
		{name: "pretty printed body", body: "{\n  \"model\": \"gpt-4o\",\n  \"stream\": true\n}\n", changed: true,
			want: `{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true}}`},
		{name: "empty body", body: ``},
		{name: "not json", body: `stream=true`, wantErr: true},
		{name: "array", body: `[{"stream":true}]`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := []byte(tt.body)
			out, changed, err := EnsureStreamUsage(in)
			if string(in) != tt.body {
				t.Fatal("input body was modified")
			}
			if tt.wantErr {
				if !errors.Is(err, ErrNotJSONObject) {
					t.Fatalf("err = %v, want ErrNotJSONObject", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if changed != tt.changed {
				t.Fatalf("changed = %v, want %v", changed, tt.changed)
			}
			if !tt.changed {
				if string(out) != tt.body {
					t.Fatalf("body changed to %s", out)
				}
				return
			}
			if !gjson.ValidBytes(out) || compactJSON(string(out)) != tt.want {
				t.Fatalf("got %s\nwant %s", out, tt.want)
			}
		})
	}
}

func TestUsageAsked(t *testing.T) {
	for body, want := range map[string]bool{
		`{"stream":true,"stream_options":{"include_usage":true}}`:  true,
		`{"stream":true,"stream_options":{"include_usage":false}}`: false,
		`{"stream":true,"stream_options":{}}`:                      false,
		`{"stream":true}`:                                          false,
		`{"stream":true,"stream_options":"yes"}`:                   false,
	} {
		r, err := ParseRequest([]byte(body))
		if err != nil || r.UsageAsked() != want {
			t.Errorf("%s: UsageAsked = %v, %v; want %v", body, r.UsageAsked(), err, want)
		}
	}
}

// compactJSON drops the insignificant whitespace so outputs compare by content.
func compactJSON(s string) string {
	return gjson.Get(s, "@ugly").Raw
}
