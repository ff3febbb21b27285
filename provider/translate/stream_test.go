package translate

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

func readStream(t testing.TB, name string) []byte {
	t.Helper()
	return readFile(t, filepath.Join("streams", name))
}

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// runStream feeds the pieces of body to a fresh translator and returns all
// it wrote, copying each Write's output since the translator reuses it.
func runStream(newT func() StreamTranslator, pieces ...[]byte) ([]byte, error) {
	tr := newT()
	var out []byte
	for _, p := range pieces {
		b, err := tr.Write(p)
		out = append(out, b...)
		if err != nil {
			return out, err
		}
	}
	b, err := tr.Close()
	return append(out, b...), err
}

var streamCases = []struct {
	in, golden string
	newT       func() StreamTranslator
}{
	{"anthropic_tools.sse", "anthropic_tools.golden.openai.sse", func() StreamTranslator { return NewAnthropicToOpenAIStream(true, fixedNow) }},
	{"anthropic_error.sse", "anthropic_error.golden.openai.sse", func() StreamTranslator { return NewAnthropicToOpenAIStream(true, fixedNow) }},
	{"openai_tools.sse", "openai_tools.golden.anthropic.sse", NewOpenAIToAnthropicStream},
}

// TestStreamGolden translates each sample stream whole, then split at every
// byte boundary and byte by byte: the client must see the same events
// however the upstream's bytes were cut.
func TestStreamGolden(t *testing.T) {
	for _, c := range streamCases {
		t.Run(c.in, func(t *testing.T) {
			in := readStream(t, c.in)
			whole, err := runStream(c.newT, in)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("streams", c.golden), whole)
			for i := 1; i < len(in); i++ {
				got, err := runStream(c.newT, in[:i], in[i:])
				if err != nil {
					t.Fatalf("split at %d: %v", i, err)
				}
				if !bytes.Equal(got, whole) {
					t.Fatalf("split at %d: output differs:\n%s", i, got)
				}
			}
			pieces := make([][]byte, len(in))
			for i := range in {
				pieces[i] = in[i : i+1]
			}
			got, err := runStream(c.newT, pieces...)
			if err != nil || !bytes.Equal(got, whole) {
				t.Fatalf("byte by byte: err %v, output:\n%s", err, got)
			}
		})
	}
}

// sseData returns the data of each event of an SSE body, with its name.
func sseData(body []byte) (names, data []string) {
	for _, ev := range strings.Split(strings.TrimSpace(string(body)), "\n\n") {
		var name string
		for _, line := range strings.Split(ev, "\n") {
			if v, ok := strings.CutPrefix(line, "event: "); ok {
				name = v
			} else if v, ok := strings.CutPrefix(line, "data: "); ok {
				names, data = append(names, name), append(data, v)
			}
		}
	}
	return names, data
}

// TestAnthropicStreamMeaning reads the translated stream the way an OpenAI
// SDK does (accumulating deltas) and checks what the client ends up with.
func TestAnthropicStreamMeaning(t *testing.T) {
	out, err := runStream(func() StreamTranslator { return NewAnthropicToOpenAIStream(true, fixedNow) }, readStream(t, "anthropic_tools.sse"))
	if err != nil {
		t.Fatal(err)
	}
	_, data := sseData(out)
	if data[len(data)-1] != "[DONE]" {
		t.Fatalf("last event %q, want [DONE]", data[len(data)-1])
	}
	var text, args strings.Builder
	var finish, toolID, toolName string
	var usage gjson.Result
	for _, d := range data[:len(data)-1] {
		c := gjson.Parse(d)
		if !gjson.Valid(d) || c.Get("object").String() != "chat.completion.chunk" {
			t.Fatalf("not a chunk: %s", d)
		}
		if c.Get("id").String() != "msg_014p7gG3wDgGV9EUtLvnow3U" || c.Get("model").String() != "claude-sonnet-4-5-20250929" {
			t.Errorf("chunk id/model: %s", d)
		}
		text.WriteString(c.Get("choices.0.delta.content").String())
		for _, tc := range c.Get("choices.0.delta.tool_calls").Array() {
			if tc.Get("index").Int() != 0 {
				t.Errorf("tool call index %d, want 0", tc.Get("index").Int())
			}
			if id := tc.Get("id").String(); id != "" {
				toolID, toolName = id, tc.Get("function.name").String()
			}
			args.WriteString(tc.Get("function.arguments").String())
		}
		if f := c.Get("choices.0.finish_reason").String(); f != "" {
			finish = f
		}
		if u := c.Get("usage"); u.Exists() {
			usage = u
		}
	}
	if got, want := text.String(), `Okay, let's check the weather for "Paris" — ☀️?`; got != want {
		t.Errorf("text %q, want %q", got, want)
	}
	if toolID != "toolu_01T1x1fJ34qAmk2tNTrN7Up6" || toolName != "get_weather" || args.String() != `{"city": "Paris"}` {
		t.Errorf("tool call %s %s %s", toolID, toolName, args.String())
	}
	if finish != "tool_calls" {
		t.Errorf("finish_reason %q", finish)
	}
	if usage.Get("prompt_tokens").Int() != 2520 || usage.Get("completion_tokens").Int() != 89 ||
		usage.Get("prompt_tokens_details.cached_tokens").Int() != 2048 {
		t.Errorf("usage %s", usage.Raw)
	}
}

// TestAnthropicStreamNoUsage: without include_usage the client gets no usage
// chunk (OpenAI's SDKs would otherwise see a chunk without choices).
func TestAnthropicStreamNoUsage(t *testing.T) {
	out, err := runStream(func() StreamTranslator { return NewAnthropicToOpenAIStream(false, fixedNow) }, readStream(t, "anthropic_tools.sse"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out, []byte(`"usage"`)) {
		t.Errorf("usage chunk sent without include_usage:\n%s", out)
	}
}

// TestOpenAIStreamMeaning reads the translated stream the way Anthropic's
// SDK does, block by block.
func TestOpenAIStreamMeaning(t *testing.T) {
	out, err := runStream(NewOpenAIToAnthropicStream, readStream(t, "openai_tools.sse"))
	if err != nil {
		t.Fatal(err)
	}
	names, data := sseData(out)
	blocks := map[int64]*strings.Builder{}
	kinds := map[int64]string{}
	open := map[int64]bool{}
	var stop string
	var usage gjson.Result
	for i, d := range data {
		e := gjson.Parse(d)
		if e.Get("type").String() != names[i] {
			t.Fatalf("event name %q, data type %q", names[i], e.Get("type").String())
		}
		idx := e.Get("index").Int()
		switch names[i] {
		case "content_block_start":
			if open[idx] || blocks[idx] != nil {
				t.Fatalf("block %d started twice", idx)
			}
			open[idx], blocks[idx] = true, &strings.Builder{}
			kinds[idx] = e.Get("content_block.type").String() + " " + e.Get("content_block.id").String() + " " + e.Get("content_block.name").String()
		case "content_block_delta":
			if !open[idx] {
				t.Fatalf("delta for block %d not open", idx)
			}
			blocks[idx].WriteString(e.Get("delta.text").String() + e.Get("delta.partial_json").String())
		case "content_block_stop":
			open[idx] = false
		case "message_delta":
			stop, usage = e.Get("delta.stop_reason").String(), e.Get("usage")
		}
	}
	if names[0] != "message_start" || names[len(names)-1] != "message_stop" {
		t.Fatalf("events %v", names)
	}
	want := []struct{ kind, content string }{
		{"text  ", `Checking "both" — ☀️`},
		{"tool_use call_a1 get_weather", `{"city": "Paris"}`},
		{"tool_use call_b2 get_weather", `{"city": "Rome"}`},
	}
	if len(blocks) != len(want) {
		t.Fatalf("%d blocks, want %d", len(blocks), len(want))
	}
	for i, w := range want {
		if kinds[int64(i)] != w.kind || blocks[int64(i)].String() != w.content || open[int64(i)] {
			t.Errorf("block %d: %q %q open=%v, want %q %q", i, kinds[int64(i)], blocks[int64(i)], open[int64(i)], w.kind, w.content)
		}
	}
	if stop != "tool_use" {
		t.Errorf("stop_reason %q", stop)
	}
	if usage.Get("input_tokens").Int() != 93 || usage.Get("cache_read_input_tokens").Int() != 1024 || usage.Get("output_tokens").Int() != 46 {
		t.Errorf("usage %s", usage.Raw)
	}
}

// TestStreamErrors: broken upstream streams end with an error, never a panic
// or a silently truncated answer.
func TestStreamErrors(t *testing.T) {
	cases := []struct {
		name string
		newT func() StreamTranslator
		in   string
	}{
		{"anthropic cut before message_stop", func() StreamTranslator { return NewAnthropicToOpenAIStream(false, fixedNow) },
			"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\"}}\n\n"},
		{"anthropic delta before message_start", func() StreamTranslator { return NewAnthropicToOpenAIStream(false, fixedNow) },
			"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}\n\n"},
		{"anthropic data not JSON", func() StreamTranslator { return NewAnthropicToOpenAIStream(false, fixedNow) },
			"event: message_start\ndata: {\"type\":\n\n"},
		{"openai cut before finish", NewOpenAIToAnthropicStream,
			"data: {\"id\":\"c\",\"model\":\"g\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\n"},
		{"openai DONE before finish", NewOpenAIToAnthropicStream,
			"data: {\"id\":\"c\",\"model\":\"g\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\ndata: [DONE]\n\n"},
		{"openai tool call without id", NewOpenAIToAnthropicStream,
			"data: {\"id\":\"c\",\"model\":\"g\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{}\"}}]}}]}\n\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := runStream(c.newT, []byte(c.in))
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v, want a *FieldError", err)
			}
		})
	}
}

// TestOpenAIStreamErrorEvent: an error in an OpenAI stream reaches the
// Anthropic client as Anthropic's error event.
func TestOpenAIStreamErrorEvent(t *testing.T) {
	in := "data: {\"id\":\"c\",\"model\":\"g\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\n" +
		"data: {\"error\":{\"message\":\"The server had an error\",\"type\":\"server_error\"}}\n\n"
	out, err := runStream(NewOpenAIToAnthropicStream, []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	names, data := sseData(out)
	last := gjson.Parse(data[len(data)-1])
	if names[len(names)-1] != "error" || last.Get("error.type").String() != "api_error" ||
		last.Get("error.message").String() != "The server had an error" {
		t.Errorf("last event %s %s", names[len(names)-1], last.Raw)
	}
}

func TestEventTooLarge(t *testing.T) {
	tr := NewOpenAIToAnthropicStream()
	big := append([]byte("data: "), bytes.Repeat([]byte("x"), MaxEventSize+1)...)
	if _, err := tr.Write(big); err == nil {
		t.Fatal("an event over MaxEventSize was accepted")
	}
}

// TestCRLFStream: a stream with "\r\n" line endings translates like one
// with "\n".
func TestCRLFStream(t *testing.T) {
	for _, c := range streamCases {
		in := readStream(t, c.in)
		lf, err := runStream(c.newT, in)
		if err != nil {
			t.Fatal(err)
		}
		crlf, err := runStream(c.newT, bytes.ReplaceAll(in, []byte("\n"), []byte("\r\n")))
		if err != nil || !bytes.Equal(lf, crlf) {
			t.Errorf("%s: CRLF differs: %v\n%s", c.in, err, crlf)
		}
	}
}

// TestAzureFirstChunk: Azure OpenAI's stream opens with a chunk holding only
// prompt_filter_results; the message starts with the first real chunk.
func TestAzureFirstChunk(t *testing.T) {
	in := `data: {"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{}}]}` + "\n\n" +
		`data: {"choices":[{"delta":{"content":"Hi","role":"assistant"},"finish_reason":null,"index":0}],"created":1741570283,"id":"chatcmpl-az1","model":"gpt-4o-2024-11-20","object":"chat.completion.chunk"}` + "\n\n" +
		`data: {"choices":[{"delta":{},"finish_reason":"stop","index":0}],"created":1741570283,"id":"chatcmpl-az1","model":"gpt-4o-2024-11-20","object":"chat.completion.chunk"}` + "\n\n" +
		"data: [DONE]\n\n"
	out, err := runStream(NewOpenAIToAnthropicStream, []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	names, data := sseData(out)
	start := gjson.Parse(data[0])
	if names[0] != "message_start" || start.Get("message.id").String() != "chatcmpl-az1" || start.Get("message.model").String() != "gpt-4o-2024-11-20" {
		t.Errorf("first event %s %s", names[0], data[0])
	}
	if names[len(names)-1] != "message_stop" {
		t.Errorf("events %v", names)
	}
}

// TestStreamRoundTrip: an Anthropic stream translated to OpenAI chunks and
// back gives an Anthropic client the same blocks, stop reason and usage.
func TestStreamRoundTrip(t *testing.T) {
	orig := readStream(t, "anthropic_tools.sse")
	oa, err := runStream(func() StreamTranslator { return NewAnthropicToOpenAIStream(true, fixedNow) }, orig)
	if err != nil {
		t.Fatal(err)
	}
	back, err := runStream(NewOpenAIToAnthropicStream, oa)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := summarize(t, back), summarize(t, orig); got != want {
		t.Errorf("round trip changed the stream:\ngot  %s\nwant %s", got, want)
	}
}

// summarize renders what an Anthropic client keeps from a stream: each
// block's kind and accumulated content, the stop reason and the final usage.
func summarize(t *testing.T, stream []byte) string {
	t.Helper()
	names, data := sseData(stream)
	var sb strings.Builder
	usage := map[string]int64{}
	for i, d := range data {
		e := gjson.Parse(d)
		switch names[i] {
		case "message_start":
			for k, v := range e.Get("message.usage").Map() {
				usage[k] = v.Int()
			}
		case "content_block_start":
			b := e.Get("content_block")
			sb.WriteString("|" + b.Get("type").String() + " " + b.Get("id").String() + " " + b.Get("name").String() + ":")
		case "content_block_delta":
			sb.WriteString(e.Get("delta.text").String() + e.Get("delta.partial_json").String())
		case "message_delta":
			sb.WriteString("|stop " + e.Get("delta.stop_reason").String())
			for k, v := range e.Get("usage").Map() {
				usage[k] = v.Int()
			}
		}
	}
	for _, k := range []string{"input_tokens", "cache_read_input_tokens", "output_tokens"} {
		sb.WriteString(" " + k + "=" + strconv.FormatInt(usage[k], 10))
	}
	return sb.String()
}

// TestEventTooLargeAcrossLines: data lines that are each small but add up
// to more than MaxEventSize fail the stream, however it is split, rather
// than the event being skipped and the rest of a valid stream translated.
func TestEventTooLargeAcrossLines(t *testing.T) {
	line := append(append([]byte("data: "), bytes.Repeat([]byte("x"), 1<<20)...), '\n')
	body := append(bytes.Repeat(line, MaxEventSize>>20+1), '\n')
	body = append(body, readStream(t, "openai_tools.sse")...)
	for _, split := range []int{len(body), len(line) / 2} {
		if _, err := runStream(NewOpenAIToAnthropicStream, body[:split], body[split:]); err == nil {
			t.Errorf("split at %d: an event over MaxEventSize was skipped", split)
		}
	}
}
