package helicone_test

import (
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/tollgate-dev/tollgate/helicone"
)

var escapingSeeds = []string{
	"", "plain", `<b>&"q"\`, "\n\r\t\b\f\x00\x01\x1f\x7f", "é ü 漢字 \u2028\u2029 \U0001F600",
	"\xff\xfe", "bad\xe2\x82 rune", "\xed\xa0\x80 surrogate",
}

// FuzzEscapeHTML: EscapeHTML writes what encoding/json writes, for any
// string, so replies that were json.Marshal'ed keep their bytes.
func FuzzEscapeHTML(f *testing.F) {
	for _, s := range escapingSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(map[string]any{"error": map[string]any{"code": "c", "message": s, "type": "t"}})
		if err != nil {
			t.Fatal(err)
		}
		if got := helicone.AppendErrorBody(nil, helicone.EscapeHTML, "code", "c", "message", s, "type", "t"); string(got) != string(want) {
			t.Fatalf("%q:\n got %s\nwant %s", s, got, want)
		}
	})
}

// FuzzEscapeMinimal: EscapeMinimal writes what the policies' hand-built
// replies always wrote (minimalReference), for any string.
func FuzzEscapeMinimal(f *testing.F) {
	for _, s := range escapingSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := append(minimalReference([]byte(`{"error":{"message":`), s), "}}"...)
		if got := helicone.AppendErrorBody(nil, helicone.EscapeMinimal, "message", s); string(got) != string(want) {
			t.Fatalf("%q:\n got %s\nwant %s", s, got, want)
		}
		if !json.Valid(want) && utf8.ValidString(s) {
			t.Fatalf("%q: invalid JSON %s", s, want)
		}
	})
}

// minimalReference is how the rate-limit and egress replies escaped
// strings before they shared AppendErrorBody: the oracle of the fuzz test.
func minimalReference(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

func TestAppendErrorBody(t *testing.T) {
	got := helicone.AppendErrorBody([]byte("x"), helicone.EscapeMinimal,
		"message", "m", "type", "rate_limited", "code", "rate_limited", "policy", "10;w=60;u=request")
	const want = `x{"error":{"message":"m","type":"rate_limited","code":"rate_limited","policy":"10;w=60;u=request"}}`
	if string(got) != want {
		t.Fatalf("got %s\nwant %s", got, want)
	}
	dst := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() {
		_ = helicone.AppendErrorBody(dst[:0], helicone.EscapeHTML, "code", "c", "message", "<a message> & more\n", "type", "t")
	}); n != 0 {
		t.Fatalf("%v allocations into a buffer large enough, want 0", n)
	}
}
