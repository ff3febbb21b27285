package translate

import (
	"bytes"
	"testing"
)

// benchStream translates a sample stream per iteration, fed in 64-byte
// chunks like a proxy's body frames, and reports the cost per upstream event.
func benchStream(b *testing.B, name string, newT func() StreamTranslator) {
	in := readStream(b, name)
	events := bytes.Count(in, []byte("\n\n"))
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		tr := newT()
		for off := 0; off < len(in); off += 64 {
			if _, err := tr.Write(in[off:min(off+64, len(in))]); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := tr.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*events), "ns/event")
}

func BenchmarkAnthropicToOpenAIStream(b *testing.B) {
	benchStream(b, "anthropic_tools.sse", func() StreamTranslator { return NewAnthropicToOpenAIStream(true, fixedNow) })
}

func BenchmarkOpenAIToAnthropicStream(b *testing.B) {
	benchStream(b, "openai_tools.sse", NewOpenAIToAnthropicStream)
}

func BenchmarkOpenAIToAnthropicRequest(b *testing.B) {
	body := readFile(b, "openai_requests/tools.json")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := OpenAIToAnthropic(body, RequestOptions{Model: "claude-sonnet-4-5"}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAnthropicToOpenAIRequest(b *testing.B) {
	body := readFile(b, "anthropic_requests/tools.json")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := AnthropicToOpenAI(body, RequestOptions{Model: "gpt-4o"}); err != nil {
			b.Fatal(err)
		}
	}
}
