package tokenlimit

import (
	"strings"
	"testing"
)

// BenchmarkApply measures a call with the header on a 3 KB and a 100 KB
// chat prompt: within the window (counted: its bytes do not fit), and over
// it with each mode. go test -bench Apply -benchmem ./policies/tokenlimit
func BenchmarkApply(b *testing.B) {
	for _, size := range []int{3 << 10, 100 << 10} {
		text := strings.Repeat("The payments service returned 503 for 12% of requests; rollback at 14:19. ", size/60+1)[:size]
		body := chat("gpt-4o", `"max_tokens":100,`, [2]string{"system", "Summarise."}, [2]string{"user", text})
		name := "3KB"
		if size > 3<<10 {
			name = "100KB"
		}
		tokens := promptTokensB(b, body)
		for _, tc := range []struct {
			mode    Mode
			context int
		}{{Truncate, tokens * 2}, {Truncate, tokens / 2}, {MiddleOut, tokens / 2}, {Fallback, tokens / 2}} {
			label := string(tc.mode) + "/over"
			if tc.context > tokens {
				label = "fits"
			}
			b.Run(name+"/"+label, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					Apply(Request{Mode: tc.mode, Body: body, Context: window(tc.context)})
				}
			})
		}
	}
}

func promptTokensB(b *testing.B, body []byte) int {
	r := Apply(Request{Mode: Truncate, Body: body, Context: window(101)})
	if r.Tokens == 0 {
		b.Fatalf("not counted: %+v", r)
	}
	return r.Tokens
}
