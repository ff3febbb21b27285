package translate

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// addFiles seeds f with every file matching pattern under testdata.
func addFiles(f *testing.F, pattern string) {
	files, err := filepath.Glob(filepath.Join("testdata", pattern))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds for %s: %v", pattern, err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// checkRequest: a translation either succeeds with valid JSON or fails with
// an error naming a field; it never panics.
func checkRequest(t *testing.T, res Request, err error) {
	if err != nil {
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field == "" {
			t.Fatalf("error without a field: %v", err)
		}
		return
	}
	if !json.Valid(res.Body) {
		t.Fatalf("invalid JSON out: %s", res.Body)
	}
}

func FuzzOpenAIToAnthropic(f *testing.F) {
	addFiles(f, "openai_requests/*.json")
	f.Fuzz(func(t *testing.T, body []byte) {
		res, err := OpenAIToAnthropic(body, RequestOptions{Model: "claude-sonnet-4-5"})
		checkRequest(t, res, err)
	})
}

func FuzzAnthropicToOpenAI(f *testing.F) {
	addFiles(f, "anthropic_requests/*.json")
	f.Fuzz(func(t *testing.T, body []byte) {
		res, err := AnthropicToOpenAI(body, RequestOptions{Model: "gpt-4o"})
		checkRequest(t, res, err)
	})
}

// FuzzStreams feeds any bytes to both stream translators, whole and split
// at a fuzzed point: they must not panic, must give the same output either
// way, and every data line they write must be JSON (or [DONE]).
func FuzzStreams(f *testing.F) {
	addFiles(f, "streams/*.sse")
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, newT := range []func() StreamTranslator{
			func() StreamTranslator { return NewAnthropicToOpenAIStream(true, fixedNow) },
			NewOpenAIToAnthropicStream,
		} {
			whole, werr := runStream(newT, body)
			split := len(body) / 3
			parts, perr := runStream(newT, body[:split], body[split:])
			if (werr == nil) != (perr == nil) || !bytes.Equal(whole, parts) {
				t.Fatalf("split at %d changed the result: %v / %v\n%q\n%q", split, werr, perr, whole, parts)
			}
			for _, line := range bytes.Split(whole, []byte("\n")) {
				if d, ok := bytes.CutPrefix(line, []byte("data: ")); ok && !json.Valid(d) && string(d) != "[DONE]" {
					t.Fatalf("data line not JSON: %q", d)
				}
			}
		}
	})
}
