package helicone

import (
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-dev/tollgate/record"
)

// Values Helicone accepts must not be refused here. Each case is a header
// a Helicone user sends, with what Helicone's worker does with it.
func TestHeliconeToleratedValues(t *testing.T) {
	long := strings.Repeat("x", 10000)
	for _, c := range []struct {
		name, key, value string
		check            func(t *testing.T, h *Headers)
		warns            []string // headers warned about
	}{
		// worker/src/lib/models/HeliconeHeaders.ts, getValidUUID: an id
		// that is not a UUID is replaced by crypto.randomUUID(), silently.
		{"request id not a UUID", RequestID, "trace-42", func(t *testing.T, h *Headers) {
			if h.RequestID != "" {
				t.Errorf("RequestID = %q, want a new one made later", h.RequestID)
			}
		}, []string{"Helicone-Request-Id"}},
		{"request id empty", RequestID, "", func(t *testing.T, h *Headers) {}, nil},
		// getValidUUID's pattern wants a version 1–5: the nil UUID is replaced.
		{"request id nil UUID", RequestID, "00000000-0000-0000-0000-000000000000", func(t *testing.T, h *Headers) {
			if h.RequestID != "" {
				t.Errorf("RequestID = %q, want a new one made later", h.RequestID)
			}
		}, []string{"Helicone-Request-Id"}},
		// A UUID Helicone keeps; Tollgate keeps it too (lowercased).
		{"request id UUID", RequestID, "123E4567-E89B-12D3-A456-426614174000", func(t *testing.T, h *Headers) {
			if h.RequestID != "123e4567-e89b-12d3-a456-426614174000" {
				t.Errorf("RequestID = %q", h.RequestID)
			}
		}, nil},
		// HeliconeHeaders.ts, omitHeaders: `=== "true"`; anything else logs.
		{"omit request yes", OmitRequest, "yes", func(t *testing.T, h *Headers) {
			if h.OmitRequest {
				t.Error("yes omitted the request body; Helicone logs it")
			}
		}, []string{"Helicone-Omit-Request"}},
		{"omit response on", OmitResponse, "on", func(t *testing.T, h *Headers) {
			if h.OmitResponse {
				t.Error("on omitted the response body; Helicone logs it")
			}
		}, []string{"Helicone-Omit-Response"}},
		{"omit request true", OmitRequest, "true", func(t *testing.T, h *Headers) {
			if !h.OmitRequest {
				t.Error("true did not omit")
			}
		}, nil},
		// Extended: Python's str(True) omits here (Helicone would log).
		{"omit response True", OmitResponse, "True", func(t *testing.T, h *Headers) {
			if !h.OmitResponse {
				t.Error("True did not omit")
			}
		}, nil},
		// "1" is not "true": logged, as Helicone logs it.
		{"omit request 1", OmitRequest, "1", func(t *testing.T, h *Headers) {
			if h.OmitRequest {
				t.Error("1 omitted the request body; Helicone logs it")
			}
		}, []string{"Helicone-Omit-Request"}},
		{"omit request false", OmitRequest, "false", func(t *testing.T, h *Headers) {
			if h.OmitRequest {
				t.Error("false omitted")
			}
		}, nil},
		// HeliconeHeaders.ts, getHeliconeProperties: values kept whole;
		// the docs: "There are no restrictions on the value".
		{"property of 10000 bytes", PropertyPrefix + "doc", long, func(t *testing.T, h *Headers) {
			if len(h.Properties) != 1 || h.Properties[0].Value != long {
				t.Errorf("property not kept whole: %d properties", len(h.Properties))
			}
		}, nil},
		// Helicone's edge (Cloudflare) refuses any header over 16 KiB;
		// Tollgate keeps the first 16 KiB, whole characters only.
		{"property over 16 KiB", PropertyPrefix + "doc", strings.Repeat("é", 9000), func(t *testing.T, h *Headers) {
			v := h.Properties[0].Value
			if len(v) != MaxPropertyValueLength || !utf8.ValidString(v) {
				t.Errorf("kept %d bytes (valid UTF-8: %v), want %d", len(v), utf8.ValidString(v), MaxPropertyValueLength)
			}
		}, []string{"Helicone-Property-Doc"}},
		// HeliconeHeaders.ts: modelOverride is the header's value.
		{"model override", ModelOverride, " gpt-4-1106-preview ", func(t *testing.T, h *Headers) {
			if h.ModelOverride != "gpt-4-1106-preview" {
				t.Errorf("ModelOverride = %q", h.ModelOverride)
			}
		}, nil},
		{"model override of 1000 bytes", ModelOverride, strings.Repeat("m", 1000), func(t *testing.T, h *Headers) {
			if len(h.ModelOverride) != 256 {
				t.Errorf("ModelOverride of %d bytes, want the first 256", len(h.ModelOverride))
			}
		}, []string{"Helicone-Model-Override"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var h Headers
			if err := h.Add(c.key, c.value); err != nil {
				t.Fatalf("Add(%s, %.20q): %v; Helicone accepts it", c.key, c.value, err)
			}
			c.check(t, &h)
			var warned []string
			for _, w := range h.Warnings.List {
				warned = append(warned, w.Header)
				if len(w.Reason) > 200 {
					t.Errorf("reason of %d bytes: quote values through Truncate", len(w.Reason))
				}
			}
			if d := cmp.Diff(c.warns, warned); d != "" {
				t.Errorf("warnings (-want +got):\n%s", d)
			}
		})
	}
}

func TestIdentifyCopiesTheModelOverride(t *testing.T) {
	var h Headers
	if err := h.Add(ModelOverride, "claude-3-5-sonnet"); err != nil {
		t.Fatal(err)
	}
	var rec record.Record
	h.Identify(&rec)
	if rec.ModelOverride != "claude-3-5-sonnet" {
		t.Errorf("record model_override %q", rec.ModelOverride)
	}
}

func TestWarningsValue(t *testing.T) {
	var w Warnings
	if w.Value() != "" {
		t.Fatal("no warnings: want an empty value")
	}
	w.Add(RequestID, "\"ü\r\nx…\" is not a UUID")
	w.Add("Helicone-Cache-Seed", "is ignored")
	if got, want := w.Value(), `Helicone-Request-Id "???x..." is not a UUID; Helicone-Cache-Seed is ignored`; got != want {
		t.Errorf("Value\n got %s\nwant %s", got, want)
	}

	var many Warnings
	for range 100 {
		many.Add(PropertyPrefix+"p", "is longer than 16384 bytes; the first 16384 are logged")
	}
	v := many.Value()
	if len(v) > MaxWarningValue || !strings.HasSuffix(v, " more") {
		t.Errorf("100 warnings: %d bytes, ends %q", len(v), v[max(0, len(v)-20):])
	}

	var one Warnings
	one.Add(RequestID, strings.Repeat("z", 5000))
	if v := one.Value(); len(v) > MaxWarningValue || !strings.HasSuffix(v, "...") {
		t.Errorf("one long warning: %d bytes, ends %q", len(v), v[max(0, len(v)-20):])
	}
}

func TestWarningsSpellHeadersAsHeliconeDoes(t *testing.T) {
	var w Warnings
	w.Add("helicone-openai-api-base", "x")
	w.Add("helicone-llm-security-enabled", "x")
	w.Add("helicone-property-team", "x")
	w.Add("Helicone-Made-Up", "x")
	var got []string
	for _, x := range w.List {
		got = append(got, x.Header)
	}
	want := []string{"Helicone-OpenAI-Api-Base", "Helicone-LLM-Security-Enabled", "Helicone-Property-Team", "Helicone-Made-Up"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("headers (-want +got):\n%s", d)
	}
}

func TestWarningLabelIsBounded(t *testing.T) {
	for in, want := range map[string]string{
		"Helicone-Request-Id":            "Helicone-Request-Id",
		"helicone-ratelimit-policy":      "Helicone-RateLimit-Policy",
		"Helicone-Property-Team":         "Helicone-Property-<Name>",
		"helicone-openai-api-base":       "Helicone-OpenAI-Api-Base",
		"Helicone-Made-Up-" + "anything": "other",
		"Cache-Control":                  "other",
	} {
		if got := WarningLabel(in); got != want {
			t.Errorf("WarningLabel(%q) = %q, want %q", in, got, want)
		}
	}
}

// docs/headers.md has a row for every header of the directory, so a header
// Helicone users send is never missing from what Tollgate documents.
func TestDirectoryDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/headers.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]bool{}
	for _, line := range strings.Split(string(doc), "\n") {
		if strings.HasPrefix(line, "| `") {
			name, _, _ := strings.Cut(strings.TrimPrefix(line, "| `"), "`")
			rows[name] = true
		}
	}
	for _, name := range append(append([]string{}, Directory...), ResponseDirectory...) {
		if !rows[name] {
			t.Errorf("docs/headers.md has no table row for %s", name)
		}
	}
}
