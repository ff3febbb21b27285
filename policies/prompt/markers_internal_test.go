package prompt

import (
	"strings"
	"testing"
)

// Reading markers is one pass over a string, whatever it holds: an
// opening tag without its closing tag made every opening search the rest
// of the string, and 8 MiB of them took minutes of the body phase.
func TestScanMarkersIsLinear(t *testing.T) {
	open := `<helicone-prompt-input key="a">`
	for name, s := range map[string]string{
		"unclosed":            strings.Repeat(open, 32<<10),
		"unclosed then a key": strings.Repeat(open, 16<<10) + `<helicone-prompt-input key="b">v</helicone-prompt-input>` + strings.Repeat(open, 16<<10),
		"no quote":            strings.Repeat(`<helicone-prompt-input key="`, 32<<10),
		"bad openings":        strings.Repeat(`<helicone-prompt-input key="a"x`, 32<<10) + `</helicone-prompt-input>`,
	} {
		_, _, _, scanned := scanMarkers(s, map[string]string{})
		if scanned > 3*len(s) { // each search reads its separator again past the last match
			t.Errorf("%s: searched %d bytes of a %d-byte string", name, scanned, len(s))
		}
	}
}

// BenchmarkExtractMarkersUnclosed is the adversarial body: 8 MiB of
// opening tags that never close. It costs a pass over the body (tens of
// milliseconds), not one pass per opening.
func BenchmarkExtractMarkersUnclosed(b *testing.B) {
	body := []byte(`{"messages":[{"role":"user","content":"` + strings.Repeat(`<helicone-prompt-input key=\"a\">`, (8<<20)/34) + `"}]}`)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := ExtractMarkers(body); err != nil {
			b.Fatal(err)
		}
	}
}
