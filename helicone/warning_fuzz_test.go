package helicone

import (
	"strings"
	"testing"
)

// FuzzWarningValue: whatever header values a client sends, what goes back
// in Helicone-Warning is printable ASCII of at most MaxWarningValue bytes,
// every warning's header is one the metrics can label, and no value is a
// 400 that Helicone would take.
func FuzzWarningValue(f *testing.F) {
	f.Add("helicone-request-id", "trace-42", 1)
	f.Add("helicone-omit-request", "yes\r\n", 3)
	f.Add("helicone-property-doc", strings.Repeat("é", 9000), 2)
	f.Add("helicone-omit-response", "\xff\x00…", 200)
	f.Fuzz(func(t *testing.T, key, value string, n int) {
		key = Prefix + strings.TrimPrefix(strings.ToLower(key), Prefix)
		var h Headers
		for range min(max(n, 1), 300) {
			if err := h.Add(key, value); err != nil && (key == RequestID || key == OmitRequest || key == OmitResponse ||
				strings.HasPrefix(key, PropertyPrefix)) {
				t.Fatalf("Add(%q): %v; Helicone takes any value", key, err)
			}
		}
		v := h.Warnings.Value()
		if len(v) > MaxWarningValue {
			t.Fatalf("Helicone-Warning of %d bytes", len(v))
		}
		for i := 0; i < len(v); i++ {
			if v[i] < 0x20 || v[i] > 0x7e {
				t.Fatalf("byte %#x at %d in %q", v[i], i, v)
			}
		}
		for _, w := range h.Warnings.List {
			if WarningLabel(w.Header) == "other" {
				t.Fatalf("warning on %q is labelled other", w.Header)
			}
		}
	})
}
