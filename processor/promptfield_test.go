package processor

import (
	"bytes"
	"testing"
)

// namesPromptField finds exactly what the four bytes.Contains it replaced
// found.
func TestNamesPromptField(t *testing.T) {
	contains := func(b []byte) bool {
		return bytes.Contains(b, []byte(`"prompt_id"`)) || bytes.Contains(b, []byte(`"inputs"`)) ||
			bytes.Contains(b, []byte(`"version_id"`)) || bytes.Contains(b, []byte(`"environment"`))
	}
	for _, body := range []string{
		``, `"`, `""`, `{"prompt_id":"p"}`, `{"a":"inputs"}`, `{"x":"b","version_id"}`, `"environment"`,
		`{"prompt_id:1}`, `{"inputs`, `""inputs"`, `{"model":"m","messages":[]}`, `{"environments":1}`,
		`{"my_prompt_id":1}`, `"""prompt_id"`, string(newBenchCall(false).body),
	} {
		if got, want := namesPromptField([]byte(body)), contains([]byte(body)); got != want {
			t.Errorf("namesPromptField(%q) = %v, want %v", body, got, want)
		}
	}
}

func FuzzNamesPromptField(f *testing.F) {
	f.Add([]byte(`{"prompt_id":"p","inputs":{}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		want := bytes.Contains(b, []byte(`"prompt_id"`)) || bytes.Contains(b, []byte(`"inputs"`)) ||
			bytes.Contains(b, []byte(`"version_id"`)) || bytes.Contains(b, []byte(`"environment"`))
		if got := namesPromptField(b); got != want {
			t.Errorf("namesPromptField(%q) = %v, want %v", b, got, want)
		}
	})
}
