package provider

import (
	"bytes"
	"strings"
	"testing"
)

// The chunks below follow OpenAI's chat stream with
// stream_options.include_usage: every chunk carries "usage": null, and a last
// chunk before [DONE] has "choices": [] and the usage. Helicone never adds
// include_usage on its own (worker/src/lib/RequestWrapper.ts adds it only
// for Helicone-Stream-Usage: true), so a client that did not ask for usage
// never gets that chunk through Helicone; through Tollgate it must not
// either.
const (
	chunkRole  = `data: {"id":"c1","object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}],"usage":null}`
	chunkText  = `data: {"id":"c1","object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}],"usage":null}`
	chunkStop  = `data: {"id":"c1","object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}`
	chunkUsage = `data: {"id":"c1","object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}`
	chunkDone  = `data: [DONE]`
	// Azure OpenAI opens a stream with its prompt filter results and no
	// choices: not a usage chunk, the client gets it as the upstream sent it.
	chunkAzureFilter = `data: {"id":"","object":"","choices":[],"prompt_filter_results":[{"prompt_index":0,"content_filter_results":{}}],"usage":null}`
)

func sseOf(eol string, events ...string) string {
	var b strings.Builder
	for _, e := range events {
		b.WriteString(strings.ReplaceAll(e, "\n", eol))
		b.WriteString(eol + eol)
	}
	return b.String()
}

func TestUsageEventFilterRemovesOnlyTheUsageEvent(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"openai stream", sseOf("\n", chunkRole, chunkText, chunkStop, chunkUsage, chunkDone),
			sseOf("\n", chunkRole, chunkText, chunkStop, chunkDone)},
		{"crlf", sseOf("\r\n", chunkRole, chunkUsage, chunkDone), sseOf("\r\n", chunkRole, chunkDone)},
		{"cr only", sseOf("\r", chunkRole, chunkUsage, chunkDone), sseOf("\r", chunkRole, chunkDone)},
		{"azure filter results kept", sseOf("\n", chunkAzureFilter, chunkText, chunkUsage, chunkDone),
			sseOf("\n", chunkAzureFilter, chunkText, chunkDone)},
		{"no usage event: untouched", sseOf("\n", chunkRole, chunkText, chunkDone), sseOf("\n", chunkRole, chunkText, chunkDone)},
		{"usage event in two data lines", sseOf("\n", chunkText, strings.Replace(chunkUsage, `"usage":`, "\ndata: \"usage\":", 1), chunkDone),
			sseOf("\n", chunkText, chunkDone)},
		{"unterminated usage event at the end", sseOf("\n", chunkText) + chunkUsage, sseOf("\n", chunkText)},
		{"usage with spaces", sseOf("\n", chunkText, `data: {"choices" : [ ], "usage" : {"prompt_tokens": 1}}`, chunkDone),
			sseOf("\n", chunkText, chunkDone)},
		{"usage null with empty choices kept", sseOf("\n", `data: {"choices":[],"usage":null}`), sseOf("\n", `data: {"choices":[],"usage":null}`)},
		{"not JSON kept", sseOf("\n", `data: "choices":[],"usage":{}`), sseOf("\n", `data: "choices":[],"usage":{}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Every way of cutting the stream in three chunks gives the
			// client the same bytes.
			in := []byte(tt.in)
			for i := 0; i <= len(in); i++ {
				for j := i; j <= len(in); j += max(1, len(in)/40) {
					var f UsageEventFilter
					var got []byte
					for k, c := range [][]byte{in[:i], in[i:j], in[j:]} {
						out, _ := f.Filter(c, k == 2)
						got = append(got, out...)
					}
					if string(got) != tt.want {
						t.Fatalf("cut at %d and %d:\n got %q\nwant %q", i, j, got, tt.want)
					}
				}
			}
		})
	}
}

// TestUsageEventFilterSharedChunk: the usage event and [DONE] in one
// chunk, after the answer in another; and the usage event straddling two.
func TestUsageEventFilterSharedChunk(t *testing.T) {
	var f UsageEventFilter
	first := sseOf("\n", chunkText, chunkStop)
	out, changed := f.Filter([]byte(first), false)
	if changed || string(out) != first {
		t.Fatalf("a chunk with nothing to remove was changed: %q", out)
	}
	out, changed = f.Filter([]byte(sseOf("\n", chunkUsage, chunkDone)), false)
	if !changed || string(out) != sseOf("\n", chunkDone) {
		t.Fatalf("usage + [DONE] gave %q", out)
	}
	if f.Removed() != 1 {
		t.Fatalf("removed %d", f.Removed())
	}

	f = UsageEventFilter{}
	u := sseOf("\n", chunkUsage)
	out1, _ := f.Filter([]byte(u[:40]), false)
	if len(out1) != 0 || f.Held() != 40 {
		t.Fatalf("the start of a possible usage event went out: %q (held %d)", out1, f.Held())
	}
	out2, _ := f.Filter([]byte(u[40:]+sseOf("\n", chunkDone)), true)
	if string(out2) != sseOf("\n", chunkDone) {
		t.Fatalf("rest gave %q", out2)
	}
}

// TestUsageEventFilterPassesAnswerChunksAtOnce: the start of an answer
// event cut by the transport goes out with its chunk — only a possible
// usage event is kept back.
func TestUsageEventFilterPassesAnswerChunksAtOnce(t *testing.T) {
	var f UsageEventFilter
	ev := sseOf("\n", chunkText)
	cut := strings.Index(ev, `"content"`)
	out, changed := f.Filter([]byte(ev[:cut]), false)
	if changed || string(out) != ev[:cut] || f.Held() != 0 {
		t.Fatalf("answer start held back: %q held %d", out, f.Held())
	}
	out, changed = f.Filter([]byte(ev[cut:]), false)
	if changed || string(out) != ev[cut:] {
		t.Fatalf("answer end changed: %q", out)
	}
}

func TestUsageEventFilterNoAllocations(t *testing.T) {
	var f UsageEventFilter
	chunk := []byte(sseOf("\n", chunkText))
	if n := testing.AllocsPerRun(100, func() { f.Filter(chunk, false) }); n != 0 {
		t.Fatalf("%v allocations per chunk with nothing to remove", n)
	}
	usage := []byte(sseOf("\n", chunkUsage, chunkDone))
	if n := testing.AllocsPerRun(100, func() { f.Filter(usage, false) }); n != 0 {
		t.Fatalf("%v allocations removing an event at the start of a chunk", n)
	}
}

func TestStripUsageEventsRecordedStream(t *testing.T) {
	in := testdata(t, "openai_chat_stream.sse")
	out := StripUsageEvents(bytes.Clone(in))
	if bytes.Contains(out, []byte(`"choices":[]`)) || !bytes.HasSuffix(out, []byte("data: [DONE]\n\n")) {
		t.Fatalf("usage chunk left or [DONE] lost:\n%s", out)
	}
	// The accumulator, fed the upstream stream, still has the usage.
	a := NewStreamAccumulator(OpenAI)
	a.Write(in)
	a.Finish()
	if a.Usage().PromptTokens != 1117 {
		t.Fatalf("usage %+v", a.Usage())
	}
}

func BenchmarkUsageEventFilter(b *testing.B) {
	in := testdata(b, "openai_chat_stream.sse")
	var events [][]byte
	for _, e := range bytes.SplitAfter(in, []byte("\n\n")) {
		if len(e) > 0 {
			events = append(events, e)
		}
	}
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		var f UsageEventFilter
		for i, e := range events {
			f.Filter(e, i == len(events)-1)
		}
	}
}
