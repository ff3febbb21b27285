package tokens

import (
	"runtime"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

func TestForModel(t *testing.T) {
	tests := []struct{ model, want string }{
		{"gpt-4o", "o200k_base"},
		{"GPT-4o-mini-2024-07-18", "o200k_base"},
		{"openai/gpt-4.1", "o200k_base"},
		{"gpt-5-nano", "o200k_base"},
		{"o3-mini", "o200k_base"},
		{"ft:gpt-4o-mini:acme::abc", "o200k_base"},
		{"gpt-4", "cl100k_base"},
		{"gpt-4-turbo-2024-04-09", "cl100k_base"},
		{"gpt-3.5-turbo-0125", "cl100k_base"},
		{"text-embedding-3-small", "cl100k_base"},
		{"claude-sonnet-4-5", "estimate"},
		{"gemini-2.5-pro", "estimate"},
		{"llama-3.1-70b", "estimate"},
		{"", "estimate"},
	}
	for _, tt := range tests {
		if got := ForModel(tt.model).Name(); got != tt.want {
			t.Errorf("ForModel(%q) = %s, want %s", tt.model, got, tt.want)
		}
	}
}

// Counts OpenAI's tiktoken gives (its cookbook's example and plain words).
func TestCount(t *testing.T) {
	tests := []struct {
		c    Counter
		s    string
		want int
	}{
		{O200k(), "tiktoken is great!", 6},
		{Cl100k(), "tiktoken is great!", 6},
		{O200k(), "hello world", 2},
		{Cl100k(), "", 0},
		{Estimate, "", 0},
		{Estimate, "abcd", 1},
		{Estimate, "abcde", 2},
		{Estimate, "ééééé", 2}, // code points, not bytes
	}
	for _, tt := range tests {
		if got := tt.c.Count(tt.s); got != tt.want {
			t.Errorf("%s.Count(%q) = %d, want %d", tt.c.Name(), tt.s, got, tt.want)
		}
	}
}

func TestHeadTail(t *testing.T) {
	text := "The quick brown fox jumps over the lazy dog. Ünïcödé 日本語のテキスト 🦊🦊🦊 end."
	for _, c := range []Counter{O200k(), Cl100k(), Estimate} {
		total := c.Count(text)
		ends := c.Ends(text)
		if len(ends) != total || ends[len(ends)-1] != len(text) {
			t.Fatalf("%s: %d ends, the last %d, for %d tokens of %d bytes", c.Name(), len(ends), ends[len(ends)-1], total, len(text))
		}
		for n := 0; n <= total+1; n++ {
			h, tl := Head(text, ends, n), Tail(text, ends, n)
			if !strings.HasPrefix(text, h) || !strings.HasSuffix(text, tl) {
				t.Fatalf("%s n=%d: %q / %q not a prefix / suffix", c.Name(), n, h, tl)
			}
			if !utf8.ValidString(h) || !utf8.ValidString(tl) {
				t.Fatalf("%s n=%d: split a UTF-8 sequence: %q / %q", c.Name(), n, h, tl)
			}
			// A cut text re-encodes to no more tokens than asked (BPE
			// merges inside a prefix only ever lower the count).
			if got := c.Count(h); got > n {
				t.Errorf("%s Head(%d) has %d tokens", c.Name(), n, got)
			}
			if got := c.Count(tl); got > n && c.Exact() {
				t.Errorf("%s Tail(%d) has %d tokens", c.Name(), n, got)
			}
		}
		if Head(text, ends, total) != text || Tail(text, ends, total) != text {
			t.Errorf("%s: all the tokens are not the whole text", c.Name())
		}
	}
}

// One encoding serves concurrent requests; run with -race.
func TestConcurrentUse(t *testing.T) {
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if O200k().Count("hello world") != 2 {
					t.Error("wrong count")
				}
				_ = O200k().Ends("hello world again")
			}
		})
	}
	wg.Wait()
}

// prose is n bytes of chat-like English with some code and numbers.
func prose(n int) string {
	const para = "Please summarise the following incident report. At 14:02 UTC the " +
		"payments service began returning HTTP 503 for 12% of requests; the " +
		"on-call engineer rolled back release v2.31.4 at 14:19 and errors fell " +
		"to 0.1%. `func retry(ctx context.Context, n int) error { return nil }` " +
		"was the suspected change.\n\n"
	var b strings.Builder
	for b.Len() < n {
		b.WriteString(para)
	}
	return b.String()[:n]
}

// BenchmarkCount measures counting a prompt with each encoding, built
// beforehand (as on a warm processor): go test -bench Count -benchmem.
func BenchmarkCount(b *testing.B) {
	for _, size := range []int{3 << 10, 100 << 10} {
		text := prose(size)
		for _, c := range []Counter{O200k(), Cl100k(), Estimate} {
			b.Run(c.Name()+"/"+sizeName(size), func(b *testing.B) {
				b.SetBytes(int64(len(text)))
				b.ReportAllocs()
				for b.Loop() {
					c.Count(text)
				}
			})
		}
	}
}

// BenchmarkEnds measures finding where tokens end (an Encode): what
// truncate and middle-out do once per text they cut.
func BenchmarkEnds(b *testing.B) {
	for _, size := range []int{3 << 10, 100 << 10} {
		text := prose(size)
		b.Run("o200k_base/"+sizeName(size), func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			b.ReportAllocs()
			for b.Loop() {
				O200k().Ends(text)
			}
		})
	}
}

func sizeName(n int) string {
	if n >= 100<<10 {
		return "100KB"
	}
	return "3KB"
}

// TestEncodingMemory reports what building an encoding costs the heap, in
// a process that has not built it yet (run it alone: go test -run
// EncodingMemory -v).
func TestEncodingMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("measurement")
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c := Cl100k()
	c.Count("warm")
	o := O200k()
	o.Count("warm")
	runtime.GC()
	runtime.ReadMemStats(&after)
	t.Logf("cl100k_base + o200k_base built: heap in use +%.1f MiB (0 if another test built them first)",
		float64(int64(after.HeapInuse)-int64(before.HeapInuse))/(1<<20))
}
