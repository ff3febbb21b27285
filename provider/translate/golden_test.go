package translate

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// fixedNow stamps translated OpenAI answers so golden files are stable.
var fixedNow = ResponseOptions{Now: func() time.Time { return time.Unix(1765000000, 0) }}

// golden compares got (JSON or SSE) with testdata/<name>, or rewrites it
// with -update. JSON is indented so a reviewer can read the mapping.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	if json.Valid(got) {
		var buf bytes.Buffer
		if err := json.Indent(&buf, got, "", "  "); err != nil {
			t.Fatal(err)
		}
		buf.WriteByte('\n')
		got = buf.Bytes()
	}
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file:\ngot:\n%s\nwant:\n%s", name, got, want)
	}
}

func inputs(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range files {
		if !strings.Contains(filepath.Base(f), ".golden") {
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no inputs in testdata/%s", dir)
	}
	return out
}

func TestOpenAIToAnthropicGolden(t *testing.T) {
	for _, f := range inputs(t, "openai_requests") {
		t.Run(filepath.Base(f), func(t *testing.T) {
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			res, err := OpenAIToAnthropic(body, RequestOptions{Model: "claude-sonnet-4-5"})
			if err != nil {
				t.Fatal(err)
			}
			name := strings.TrimSuffix(filepath.Base(f), ".json")
			golden(t, filepath.Join("openai_requests", name+".golden.anthropic.json"), res.Body)
		})
	}
}

func TestAnthropicToOpenAIGolden(t *testing.T) {
	for _, f := range inputs(t, "anthropic_requests") {
		t.Run(filepath.Base(f), func(t *testing.T) {
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			res, err := AnthropicToOpenAI(body, RequestOptions{Model: "gpt-4o"})
			if err != nil {
				t.Fatal(err)
			}
			name := strings.TrimSuffix(filepath.Base(f), ".json")
			golden(t, filepath.Join("anthropic_requests", name+".golden.openai.json"), res.Body)
		})
	}
}

func TestResponseGolden(t *testing.T) {
	for _, f := range inputs(t, "responses") {
		t.Run(filepath.Base(f), func(t *testing.T) {
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			name := strings.TrimSuffix(filepath.Base(f), ".json")
			var got []byte
			if strings.HasPrefix(name, "anthropic_") {
				got, err = AnthropicResponseToOpenAI(body, fixedNow)
			} else {
				got, err = OpenAIResponseToAnthropic(body)
			}
			if err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("responses", name+".golden.json"), got)
		})
	}
}
