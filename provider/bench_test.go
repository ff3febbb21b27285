package provider

import (
	"bytes"
	"testing"

	"github.com/tollgate-dev/tollgate/provider/tokens"
)

func BenchmarkParseRequest(b *testing.B) {
	body := testdata(b, "req_chat.json")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseRequest(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEnsureStreamUsage(b *testing.B) {
	body := testdata(b, "req_chat.json")
	b.ReportAllocs()
	for b.Loop() {
		if _, changed, err := EnsureStreamUsage(body); err != nil || !changed {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseResponse(b *testing.B) {
	body := testdata(b, "resp_openai_chat.json")
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ParseResponse(OpenAI, body); err != nil {
			b.Fatal(err)
		}
	}
}

// fiftyChunkStream is a 50-event chat stream (48 content deltas, a finish
// chunk and the usage chunk) plus [DONE], cut into one network chunk per
// event the way providers flush them.
func fiftyChunkStream(b *testing.B) [][]byte {
	sample := testdata(b, "openai_chat_stream.sse")
	events := bytes.SplitAfter(sample, []byte("\n\n"))
	delta, tail := events[1], events[len(events)-4:] // a content delta; finish, usage, [DONE], ""
	chunks := [][]byte{events[0]}
	for len(chunks) < 48 {
		chunks = append(chunks, delta)
	}
	for _, e := range tail {
		if len(e) > 0 {
			chunks = append(chunks, e)
		}
	}
	return chunks
}

func BenchmarkStreamAccumulator(b *testing.B) {
	chunks := fiftyChunkStream(b)
	var total int64
	for _, c := range chunks {
		total += int64(len(c))
	}
	b.SetBytes(total)
	b.ReportAllocs()
	for b.Loop() {
		a := NewStreamAccumulator(OpenAI)
		for _, c := range chunks {
			a.Write(c)
		}
		a.Finish()
		if a.Usage().PromptTokens == 0 {
			b.Fatal("no usage")
		}
	}
}

func BenchmarkAnthropicStream(b *testing.B) {
	body := testdata(b, "anthropic_stream.sse")
	b.ReportAllocs()
	for b.Loop() {
		a := NewStreamAccumulator(Anthropic)
		a.Write(body)
		a.Finish()
	}
}

func BenchmarkSSEParser(b *testing.B) {
	chunks := fiftyChunkStream(b)
	b.ReportAllocs()
	emit := func(Event) {}
	for b.Loop() {
		var p SSEParser
		for _, c := range chunks {
			p.Feed(c, emit)
		}
		p.Close(emit)
	}
}

func BenchmarkLookup(b *testing.B) {
	table := DefaultPrices()
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := table.Lookup(OpenAI, "gpt-4o-mini-2024-07-18"); !ok {
			b.Fatal("not found")
		}
	}
}

// BenchmarkCutStreamOutputTokens is what a stream cut before its usage
// costs: the 48 content chunks of fiftyChunkStream, then its output
// counted with o200k_base (once, after the stream).
func BenchmarkCutStreamOutputTokens(b *testing.B) {
	chunks := fiftyChunkStream(b)[:48]
	tokens.O200k().Count("warm up")
	b.ReportAllocs()
	for b.Loop() {
		a := NewStreamAccumulator(OpenAI)
		for _, c := range chunks {
			a.Write(c)
		}
		a.Finish()
		if a.OutputTokens(tokens.O200k()) == 0 {
			b.Fatal("nothing counted")
		}
	}
}
