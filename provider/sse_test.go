package provider

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"
)

// parseAll feeds the chunks in order, closes the parser and returns every event.
func parseAll(p *SSEParser, chunks ...[]byte) []Event {
	var evs []Event
	emit := func(e Event) { evs = append(evs, e) }
	for _, c := range chunks {
		p.Feed(c, emit)
	}
	p.Close(emit)
	return evs
}

// tricky holds most of what the spec allows, in one stream.
const tricky = "\xEF\xBB\xBF: comment after a byte order mark\r\n" +
	"event: first\r\nid: 7\r\ndata: line one\r\ndata:line two\r\ndata:  two spaces\r\n\r\n" +
	"data: cr only\rdata: second\r\r" +
	"retry: 1000\nunknown: x\ndata\n\n" +
	"id: 8\x00\nevent: only-name\n\n" +
	"data: [DONE]\n\n" +
	"data: {\"a\": 1}\n\n" +
	"data: unterminated"

func TestSSEParserCases(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Event
	}{
		{"single event", "data: hello\n\n", []Event{{Data: "hello"}}},
		{"multi-line data joined with LF", "data: a\ndata: b\ndata: c\n\n", []Event{{Data: "a\nb\nc"}}},
		{"one space stripped", "data:  x\ndata:y\n\n", []Event{{Data: " x\ny"}}},
		{"field without colon is empty data", "data\ndata\n\n", []Event{{Data: "\n"}}},
		{"empty data dispatches", "data:\n\n", []Event{{Data: ""}}},
		{"comments ignored", ": keep-alive\n:\ndata: x\n: mid\n\n", []Event{{Data: "x"}}},
		{"event name", "event: message_start\ndata: {}\n\n", []Event{{Name: "message_start", Data: "{}"}}},
		{"name resets after dispatch", "event: a\ndata: 1\n\ndata: 2\n\n", []Event{{Name: "a", Data: "1"}, {Data: "2"}}},
		{"no data no dispatch", "event: a\nid: 1\n\ndata: 2\n\n", []Event{{Data: "2", ID: "1"}}},
		{"id carries over", "id: 1\ndata: a\n\ndata: b\n\nid\ndata: c\n\n",
			[]Event{{Data: "a", ID: "1"}, {Data: "b", ID: "1"}, {Data: "c"}}},
		{"id with NUL ignored", "id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n", []Event{{Data: "a", ID: "1"}, {Data: "b", ID: "1"}}},
		{"CRLF endings", "data: a\r\ndata: b\r\n\r\n", []Event{{Data: "a\nb"}}},
		{"CR endings", "data: a\rdata: b\r\r", []Event{{Data: "a\nb"}}},
		{"mixed endings", "data: a\r\n\ndata: b\r\rdata: c\n\r\n", []Event{{Data: "a"}, {Data: "b"}, {Data: "c"}}},
		{"unknown fields and retry ignored", "retry: 10\nfoo: bar\ndata: x\n\n", []Event{{Data: "x"}}},
		{"field name is case sensitive", "Data: x\n\n", nil},
		{"leading BOM stripped", "\xEF\xBB\xBFdata: x\n\n", []Event{{Data: "x"}}},
		{"BOM only at stream start", "data: x\n\n\xEF\xBB\xBFdata: y\n\n", []Event{{Data: "x"}}},
		{"DONE is an ordinary event", "data: [DONE]\n\n", []Event{{Data: "[DONE]"}}},
		{"Close dispatches unterminated event", "data: a\n", []Event{{Data: "a"}}},
		{"Close reads last line without newline", "data: a\ndata: b", []Event{{Data: "a\nb"}}},
		{"Close after CR", "data: a\r", []Event{{Data: "a"}}},
		{"colon in value kept", "data: {\"a\":\"b:c\"}\n\n", []Event{{Data: `{"a":"b:c"}`}}},
		{"empty input", "", nil},
		{"only blank lines", "\n\n\r\n\r", nil},
		{"tricky", tricky, []Event{
			{Name: "first", Data: "line one\nline two\n two spaces", ID: "7"},
			{Data: "cr only\nsecond", ID: "7"},
			{Data: "", ID: "7"},
			{Data: "[DONE]", ID: "7"},
			{Data: `{"a": 1}`, ID: "7"},
			{Data: "unterminated", ID: "7"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseAll(&SSEParser{}, []byte(tt.in))
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %q\nwant %q", got, tt.want)
			}
			for i := range len(tt.in) {
				if got := parseAll(&SSEParser{}, []byte(tt.in[:i]), []byte(tt.in[i:])); !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("split at %d: got %q\nwant %q", i, got, tt.want)
				}
			}
		})
	}
}

// Chunk boundaries are the network's choice: every split must give the
// same events, including splits inside "\r\n" and inside a BOM.
func TestSSEParserSplitInvariance(t *testing.T) {
	inputs := map[string]string{
		"tricky":    tricky,
		"openai":    string(testdata(t, "openai_chat_stream.sse")),
		"anthropic": string(testdata(t, "anthropic_stream.sse")),
		"responses": string(testdata(t, "responses_stream.sse")),
		"crlf":      strings.ReplaceAll(string(testdata(t, "anthropic_stream.sse")), "\n", "\r\n"),
		"cr":        strings.ReplaceAll(string(testdata(t, "openai_chat_stream.sse")), "\n", "\r"),
	}
	for name, in := range inputs {
		t.Run(name, func(t *testing.T) {
			want := parseAll(&SSEParser{}, []byte(in))
			if len(want) == 0 {
				t.Fatal("sample produced no events")
			}
			for i := 0; i <= len(in); i++ {
				if got := parseAll(&SSEParser{}, []byte(in[:i]), []byte(in[i:])); !reflect.DeepEqual(got, want) {
					t.Fatalf("split at %d: got %q\nwant %q", i, got, want)
				}
			}
			var bytewise [][]byte
			for i := range len(in) {
				bytewise = append(bytewise, []byte{in[i]})
			}
			if got := parseAll(&SSEParser{}, bytewise...); !reflect.DeepEqual(got, want) {
				t.Fatalf("byte by byte: got %q\nwant %q", got, want)
			}
		})
	}
}

func TestSSEParserCRLFAcrossChunks(t *testing.T) {
	tests := []struct {
		name   string
		chunks []string
		want   []Event
	}{
		{"CR ends chunk, LF starts next", []string{"data: a\r", "\n\r", "\n"}, []Event{{Data: "a"}}},
		{"LF after CR is not a blank line", []string{"data: a\r", "\ndata: b\r", "\n\r\n"}, []Event{{Data: "a\nb"}}},
		{"empty chunk between CR and LF", []string{"data: a\r", "", "\n", "\r\n"}, []Event{{Data: "a"}}},
		{"CR then CR is a blank line", []string{"data: a\r", "\r"}, []Event{{Data: "a"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var chunks [][]byte
			for _, c := range tt.chunks {
				chunks = append(chunks, []byte(c))
			}
			var p SSEParser
			var got []Event
			for _, c := range chunks {
				p.Feed(c, func(e Event) { got = append(got, e) })
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("before Close: got %q, want %q", got, tt.want)
			}
		})
	}
}

// Feed must copy what it keeps: the caller reuses its read buffer.
func TestSSEParserDoesNotRetainChunk(t *testing.T) {
	var p SSEParser
	var got []Event
	emit := func(e Event) { got = append(got, e) }
	buf := []byte("event: ab\ndata: he")
	p.Feed(buf, emit)
	copy(buf, bytes.Repeat([]byte("#"), len(buf)))
	p.Feed([]byte("llo\n\n"), emit)
	want := []Event{{Name: "ab", Data: "hello"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestSSEParserDropsLongLines(t *testing.T) {
	const limit = 16
	long := "data: " + strings.Repeat("x", limit) // 22 bytes: over the limit
	in := "data: ok\n\n" + long + "\n\ndata: a\n" + long + "\ndata: b\n\n" + "data: 0123456789\n\n"
	want := []Event{{Data: "ok"}, {Data: "a\nb"}, {Data: "0123456789"}}
	for i := 0; i <= len(in); i++ {
		p := &SSEParser{limit: limit}
		if got := parseAll(p, []byte(in[:i]), []byte(in[i:])); !reflect.DeepEqual(got, want) {
			t.Fatalf("split at %d: got %q, want %q", i, got, want)
		}
	}
}

func TestSSEParserDropsLargeEvents(t *testing.T) {
	// Each line fits the limit, but together they do not.
	in := "data: 12345\ndata: 67890\ndata: abcde\n\ndata: next\n\n"
	p := &SSEParser{limit: 16}
	want := []Event{{Data: "next"}}
	if got := parseAll(p, []byte(in)); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// With the real limit: an over-long line streamed in small chunks never
// makes the parser hold more than MaxSSELine bytes.
func TestSSEParserBoundsMemory(t *testing.T) {
	var p SSEParser
	var got []Event
	emit := func(e Event) { got = append(got, e) }
	p.Feed([]byte("data: "), emit)
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	for range MaxSSELine/len(chunk) + 2 {
		p.Feed(chunk, emit)
		if cap(p.line) > MaxSSELine {
			t.Fatalf("line buffer grew to %d bytes", cap(p.line))
		}
	}
	p.Feed([]byte("\n\ndata: after\n\n"), emit)
	if want := []Event{{Data: "after"}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %d events, want %q", len(got), want)
	}
	if cap(p.line) > retainCap || cap(p.data) > retainCap {
		t.Fatalf("buffers not released: line %d, data %d", cap(p.line), cap(p.data))
	}
}

func TestSSEParserReusableAfterClose(t *testing.T) {
	var p SSEParser
	first := parseAll(&p, []byte("id: 1\nevent: e\ndata: a"))
	second := parseAll(&p, []byte("data: b\n\n"))
	if !reflect.DeepEqual(first, []Event{{Name: "e", Data: "a", ID: "1"}}) || !reflect.DeepEqual(second, []Event{{Data: "b"}}) {
		t.Fatalf("first %q, second %q", first, second)
	}
}

// A hostile upstream can send one huge chunk of '\r'-ended lines; finding
// each line must not rescan the rest of the chunk (that was quadratic).
func TestSSEParserManyCRLinesIsLinear(t *testing.T) {
	in := append(bytes.Repeat([]byte("\r"), 2<<20), "data: x\r\r\n"...)
	start := time.Now()
	got := parseAll(&SSEParser{}, in)
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Fatalf("took %v", elapsed)
	}
	if want := []Event{{Data: "x"}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// A pooled parser outlives its stream: an oversized event name (a broken
// upstream's) must not stay with it after Reset, in its buffer or in the
// cache of recent names.
func TestSSEParserResetDropsOversizedName(t *testing.T) {
	var p SSEParser
	huge := strings.Repeat("n", 2*retainCap)
	var got []Event
	p.Feed([]byte("event: "+huge+"\ndata: x\n\n"), func(e Event) { got = append(got, e) })
	if len(got) != 1 || got[0].Name != huge {
		t.Fatalf("got %d events", len(got))
	}
	p.Reset()
	if cap(p.name) > retainCap {
		t.Fatalf("name buffer kept %d bytes after Reset", cap(p.name))
	}
	for _, s := range p.names {
		if len(s) > maxCachedName {
			t.Fatalf("name cache kept a %d-byte name", len(s))
		}
	}
}
