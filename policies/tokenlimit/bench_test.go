package tokenlimit

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
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

// adversarialBodies are bodies built to make counting slow: long runs of
// one byte class (a byte-pair encoding's slowest input: one piece of the
// split pattern, merged pair by pair), random letters, base64, a large
// tools array, a large image, many tiny messages, and MaxTexts messages (the
// most that are cut). size is the bytes of the large part; every body names
// gpt-4o (o200k_base).
func adversarialBodies(size int) []struct {
	name string
	body []byte
} {
	r := rand.New(rand.NewPCG(1, 2))
	letters := make([]byte, size)
	for i := range letters {
		letters[i] = byte('a' + r.IntN(26))
	}
	raw := make([]byte, size*3/4)
	for i := range raw {
		raw[i] = byte(r.IntN(256))
	}
	b64 := base64.StdEncoding.EncodeToString(raw)
	q := func(s string) string { j, _ := json.Marshal(s); return string(j) }
	var tiny strings.Builder
	for i := 0; tiny.Len() < size; i++ {
		if i > 0 {
			tiny.WriteByte(',')
		}
		tiny.WriteString(`{"role":"user","content":"a b"}`)
	}
	// As many messages as are still cut (MaxTexts), sharing size bytes of
	// words: the most texts a call rewrites, each as long as size allows.
	var capped strings.Builder
	word := strings.Repeat("ab ", max(size/MaxTexts/3, 1))
	for i := range MaxTexts {
		if i > 0 {
			capped.WriteByte(',')
		}
		capped.WriteString(`{"role":"user","content":"` + word + `"}`)
	}
	return []struct {
		name string
		body []byte
	}{
		{"spaces", chat("gpt-4o", "", [2]string{"system", "Summarise."}, [2]string{"user", strings.Repeat(" ", size)})},
		{"letters", chat("gpt-4o", "", [2]string{"system", "Summarise."}, [2]string{"user", string(letters)})},
		{"base64-text", chat("gpt-4o", "", [2]string{"system", "Summarise."}, [2]string{"user", b64})},
		{"punctuation", chat("gpt-4o", "", [2]string{"user", strings.Repeat("a , ", size/4)})},
		{"tools-spaces", []byte(`{"model":"gpt-4o","tools":[{"type":"function","function":{"name":"f","description":` + q(strings.Repeat(" ", size)) + `}}],"messages":[{"role":"user","content":"hi"}]}`)},
		{"image", []byte(`{"model":"gpt-4o","messages":[{"role":"user","content":[{"type":"text","text":"What is in this image?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,` + b64 + `"}}]}]}`)},
		{"tiny-messages", []byte(`{"model":"gpt-4o","messages":[` + tiny.String() + `]}`)},
		{"capped-messages", []byte(`{"model":"gpt-4o","messages":[` + capped.String() + `]}`)},
	}
}

// BenchmarkApplyAdversarial is the worst case per call: each adversarial
// body under each mode, with a window that the body overflows (so it is
// counted and cut) and one it nearly fits (so the cut is re-checked). At
// 30 KiB (truncate) and 90 KiB (fallback) the body is counted exactly, as
// much as exactWork allows; at 1 and 7 MiB (near --max-request-body) it is
// estimated.
// go test -run - -bench ApplyAdversarial -benchtime 3x ./policies/tokenlimit
func BenchmarkApplyAdversarial(b *testing.B) {
	for _, size := range []int{30 << 10, 90 << 10, 1 << 20, 7 << 20} {
		for _, tc := range adversarialBodies(size) {
			for _, mode := range []Mode{Truncate, MiddleOut, Fallback} {
				for _, context := range []int{size / 8, size * 9 / 10} {
					b.Run(fmt.Sprintf("%dKiB/%s/%s/window%d", size>>10, tc.name, mode, context), func(b *testing.B) {
						b.SetBytes(int64(len(tc.body)))
						for b.Loop() {
							Apply(Request{Mode: mode, Body: tc.body, Context: window(context)})
						}
					})
				}
			}
		}
	}
}
