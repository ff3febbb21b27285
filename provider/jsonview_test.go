package provider

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestCheckJSON(t *testing.T) {
	nest := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"object", `{"a":[1,{"b":null}]}`, ""},
		{"at the depth limit", nest(maxJSONDepth), ""},
		{"over the depth limit", nest(maxJSONDepth + 1), "nested too deeply"},
		{"objects count too", strings.Repeat(`{"a":`, maxJSONDepth+1) + "1" + strings.Repeat("}", maxJSONDepth+1), "nested too deeply"},
		{"brackets in strings do not nest", `["` + strings.Repeat("[", maxJSONDepth+1) + `\"["]`, ""},
		{"many shallow arrays", "[" + strings.Repeat("[1],", maxJSONDepth) + "[1]]", ""},
		// Would need about a gigabyte of stack in gjson's recursive validator.
		{"millions of open brackets", strings.Repeat("[", 8<<20), "nested too deeply"},
		{"truncated", `{"a":`, "invalid JSON"},
		{"not json", `hello`, "invalid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := checkJSON([]byte(tt.in)); got != tt.want {
				t.Fatalf("checkJSON = %q, want %q", got, tt.want)
			}
			// Same verdict as encoding/json, whose limit this copies.
			if (tt.want == "") != json.Valid([]byte(tt.in)) {
				t.Fatalf("encoding/json disagrees: Valid = %v", json.Valid([]byte(tt.in)))
			}
		})
	}
}

func TestKeepString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"gpt-4o", "gpt-4o"},
		{"héllo", "héllo"},
		{"a\xffb", "a\uFFFDb"},
		{"\xff\xfe", "\uFFFD\uFFFD"}, // one per byte, as encoding/json
		{"\xc3", "\uFFFD"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := keepString(tt.in); got != tt.want {
			t.Errorf("keepString(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
