package provider

import (
	"bytes"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"github.com/tollgate-dev/tollgate/provider/tokens"
)

// MaxStreamText bounds the assistant text a StreamAccumulator keeps for
// logs; the rest of a longer answer is counted in usage but not kept.
const MaxStreamText = 1 << 20

// StreamAccumulator reads a streamed (text/event-stream) response and keeps
// the usage and model. It is not safe for concurrent use.
//
// OpenAI chat/completions: the final chunk that carries "usage" (sent when
// stream_options.include_usage is true), "model" from any chunk,
// "data: [DONE]" ignored.
// OpenAI responses API: response.completed (also response.incomplete and
// response.failed, which are billed too) for response.usage and
// response.model.
// Anthropic: message_start (message.model, message.usage) plus
// message_delta (usage.output_tokens is cumulative, the last one wins; any
// input or cache counts repeated there win too).
// Gemini (streamGenerateContent?alt=sse): usageMetadata in every event,
// running totals, the last one wins; modelVersion. Groq: x_groq.usage.
// Event data that is not a JSON object is skipped and counted in Malformed;
// events known by name to carry nothing of use are not read at all.
//
// It also keeps what the stream produced — the text, and the tool-call
// arguments and thinking that are billed as output too — so that a stream
// cut before its usage can be counted (OutputTokens). The bytes are only
// appended (no allocation per chunk once the buffer has grown) and counted
// once, at the end, only when the provider did not report the count.
type StreamAccumulator struct {
	provider  string
	parser    SSEParser
	fields    usageFields
	model     string
	text      []byte
	truncated bool
	malformed int

	// other is the output that is not text (tool-call arguments, thinking),
	// at most MaxStreamText bytes; outBytes counts all output bytes
	// streamed, text and other, kept or not.
	other    []byte
	outBytes int64
	// final: the provider's closing usage was seen (OpenAI's usage chunk,
	// Anthropic's message_delta, a responses API end event; Gemini's
	// running totals), so its completion count is the provider's.
	final bool
}

// NewStreamAccumulator returns an accumulator for a stream from provider
// (OpenAI or Anthropic; anything else is read as OpenAI-compatible).
func NewStreamAccumulator(provider string) *StreamAccumulator {
	return &StreamAccumulator{provider: provider}
}

// Reset readies a for a new stream from provider, as NewStreamAccumulator
// would, but keeps its buffers: an accumulator reused from call to call
// (the processor pools them) reads a stream without allocating.
func (a *StreamAccumulator) Reset(provider string) {
	parser := a.parser
	parser.Reset()
	*a = StreamAccumulator{provider: provider, parser: parser, text: reuse(a.text), other: reuse(a.other)}
}

// Write feeds the next raw body chunk. The chunk is not retained.
func (a *StreamAccumulator) Write(chunk []byte) {
	a.parser.feed(chunk, a.onEvent)
}

// Finish marks the end of the stream: an event left without its closing
// blank line is still read.
func (a *StreamAccumulator) Finish() {
	a.parser.close(a.onEvent)
}

// Usage returns the usage seen so far, normalized.
func (a *StreamAccumulator) Usage() Usage {
	return a.fields.normalize(a.provider)
}

// Model returns the model the stream reported, or "".
func (a *StreamAccumulator) Model() string { return a.model }

// Malformed counts events whose data was not a JSON object (among the
// events that were read: see skipEvent).
func (a *StreamAccumulator) Malformed() int { return a.malformed }

// Text returns the assistant text reassembled from the stream (OpenAI
// choices[0].delta.content or completions choices[0].text, responses API
// response.output_text.delta, Anthropic content_block_delta text_delta), at
// most MaxStreamText bytes, for logs.
func (a *StreamAccumulator) Text() string {
	if !utf8.Valid(a.text) {
		return validUTF8(string(a.text))
	}
	return string(a.text)
}

// TextTruncated reports whether Text was cut at MaxStreamText.
func (a *StreamAccumulator) TextTruncated() bool { return a.truncated }

// Reported says which counts the provider reported: the prompt's
// (Anthropic's message_start has it before any output) and the
// completion's (only the stream's closing usage has it: message_start's
// output_tokens is a placeholder).
func (a *StreamAccumulator) Reported() (prompt, completion bool) {
	f := &a.fields
	prompt = a.final || f.has[fPromptTokens] || f.has[fInputTokens] || f.has[fGeminiPrompt]
	return prompt, a.final
}

// maxExactOutput bounds the output bytes a byte-pair encoding counts
// (OutputTokens); the rest is scaled from them. 64 KiB is a few
// milliseconds of encoding at worst, paid once, after the stream.
const maxExactOutput = 64 << 10

// OutputTokens counts the output the stream produced with c, the model's
// counter: text and tool-call arguments and thinking. Past what is kept
// (or past maxExactOutput for an exact counter) the count is scaled by
// the bytes streamed, at the ratio of the counted part.
func (a *StreamAccumulator) OutputTokens(c tokens.Counter) int64 {
	if a.outBytes == 0 {
		return 0
	}
	budget := len(a.text) + len(a.other)
	if c.Exact() {
		budget = maxExactOutput
	}
	n, counted := 0, 0
	for _, part := range [][]byte{a.text, a.other} {
		if room := budget - counted; len(part) > room {
			for room > 0 && !utf8.RuneStart(part[room]) {
				room--
			}
			part = part[:room]
		}
		if len(part) > 0 {
			n += c.Count(bytesView(part))
			counted += len(part)
		}
	}
	if counted == 0 {
		return 0
	}
	if int64(counted) < a.outBytes {
		return (int64(n)*a.outBytes + int64(counted) - 1) / int64(counted)
	}
	return int64(n)
}

func (a *StreamAccumulator) onEvent(name, data []byte, _ string) {
	if skipEvent(a.provider, name) {
		return
	}
	data = bytes.TrimSpace(data)
	if len(data) == 0 || string(data) == "[DONE]" {
		return
	}
	if data[0] != '{' || checkJSON(data) != "" {
		a.malformed++
		return
	}
	obj := gjson.Parse(bytesView(data))
	if a.provider == Anthropic {
		a.anthropicEvent(obj)
	} else {
		a.openAIEvent(obj)
	}
}

// skipEvent tells from the SSE event name alone that an event carries
// nothing the accumulator keeps, which saves validating and parsing its
// data: pings, block boundaries, and the responses API's many item events
// (response.in_progress repeats the whole response object). Unnamed events
// are always read, so servers that omit "event:" lines still work.
func skipEvent(provider string, name []byte) bool {
	if len(name) == 0 {
		return false
	}
	if provider == Anthropic {
		switch string(name) {
		case "ping", "content_block_start", "content_block_stop", "message_stop":
			return true
		}
		return false
	}
	if !bytes.HasPrefix(name, []byte("response.")) {
		return false
	}
	switch string(name) {
	case "response.created", "response.output_text.delta", "response.function_call_arguments.delta",
		"response.completed", "response.incomplete", "response.failed":
		return false
	}
	return true
}

// eventParts are the top-level members the handlers look at, gathered in
// one pass over the event object.
type eventParts struct {
	typ, model, usage, choices, message, response, delta gjson.Result
	usageMetadata, candidates, xGroq                     gjson.Result // Gemini; Groq
}

func partsOf(obj gjson.Result) eventParts {
	var e eventParts
	obj.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "type":
			e.typ = v
		case "model", "modelVersion":
			e.model = v
		case "usage":
			e.usage = v
		case "choices":
			e.choices = v
		case "message":
			e.message = v
		case "response":
			e.response = v
		case "delta":
			e.delta = v
		case "usageMetadata":
			e.usageMetadata = v
		case "candidates":
			e.candidates = v
		case "x_groq":
			e.xGroq = v
		}
		return true
	})
	return e
}

func (a *StreamAccumulator) openAIEvent(obj gjson.Result) {
	e := partsOf(obj)
	switch stringOf(e.typ) {
	case "":
		// chat.completion.chunk or text_completion: no "type" member; so
		// has each event of Gemini's streamGenerateContent?alt=sse.
		a.setModel(e.model)
		if e.usage.IsObject() {
			a.fields.merge(scanUsage(e.usage))
			a.final = true
		} else if u := e.xGroq.Get("usage"); u.IsObject() {
			a.fields.merge(scanUsage(u)) // Groq's final chunk
			a.final = true
		}
		if e.usageMetadata.IsObject() {
			var g usageFields
			g.scanGemini(e.usageMetadata)
			a.fields.merge(g)
			a.final = true // running totals: each is the provider's count so far
		}
		a.choiceText(e.choices)
		a.candidateText(e.candidates)
	case "response.output_text.delta":
		a.appendText(stringOf(e.delta))
	case "response.function_call_arguments.delta":
		a.appendOther(stringOf(e.delta))
	case "response.created", "response.in_progress":
		a.setModel(e.response.Get("model"))
	case "response.completed", "response.incomplete", "response.failed":
		a.setModel(e.response.Get("model"))
		if u := e.response.Get("usage"); u.IsObject() {
			a.fields.merge(scanUsage(u))
			a.final = true
		}
	case "message_start", "message_delta", "content_block_delta":
		// Anthropic's events under another name (Claude on Bedrock or
		// Vertex, logged as such): normalize reads their shape.
		a.anthropicEvent(obj)
	}
}

// choiceText appends the text of the choice with index 0, and its tool
// calls' arguments (and reasoning_content, which DeepSeek-style servers
// stream and bill as output) to the other output. With n > 1 each chunk
// may carry a different choice, so the array position is not enough.
func (a *StreamAccumulator) choiceText(choices gjson.Result) {
	if !choices.IsArray() {
		return
	}
	choices.ForEach(func(_, c gjson.Result) bool {
		if !c.IsObject() || c.Get("index").Int() != 0 {
			return true
		}
		delta := c.Get("delta")
		if !delta.IsObject() {
			a.appendText(stringOf(c.Get("text"))) // legacy /v1/completions
			return false
		}
		delta.ForEach(func(k, v gjson.Result) bool {
			switch k.Str {
			case "content":
				a.appendText(stringOf(v))
			case "reasoning_content":
				a.appendOther(stringOf(v))
			case "function_call":
				a.appendOther(stringOf(v.Get("name")))
				a.appendOther(stringOf(v.Get("arguments")))
			case "tool_calls":
				v.ForEach(func(_, tc gjson.Result) bool {
					a.appendOther(stringOf(tc.Get("function.name")))
					a.appendOther(stringOf(tc.Get("function.arguments")))
					return true
				})
			}
			return true
		})
		return false
	})
}

// candidateText appends the text parts of Gemini's first candidate.
func (a *StreamAccumulator) candidateText(candidates gjson.Result) {
	if !candidates.IsArray() {
		return
	}
	candidates.Get("0.content.parts").ForEach(func(_, part gjson.Result) bool {
		if t := part.Get("text"); t.Type == gjson.String && !part.Get("thought").Bool() {
			a.appendText(t.Str)
		}
		return true
	})
}

func (a *StreamAccumulator) anthropicEvent(obj gjson.Result) {
	e := partsOf(obj)
	switch stringOf(e.typ) {
	case "message_start":
		a.setModel(e.message.Get("model"))
		if u := e.message.Get("usage"); u.IsObject() {
			a.fields.merge(scanUsage(u))
		}
	case "message_delta":
		if e.usage.IsObject() {
			a.fields.merge(scanUsage(e.usage))
			a.final = true
		}
	case "content_block_delta":
		if !e.delta.IsObject() {
			return
		}
		switch stringOf(e.delta.Get("type")) {
		case "text_delta":
			a.appendText(stringOf(e.delta.Get("text")))
		case "input_json_delta":
			a.appendOther(stringOf(e.delta.Get("partial_json")))
		case "thinking_delta":
			a.appendOther(stringOf(e.delta.Get("thinking")))
		}
	}
}

// setModel keeps the latest non-empty model; comparing first means a model
// repeated in every chunk is copied once.
func (a *StreamAccumulator) setModel(r gjson.Result) {
	if m := stringOf(r); m != "" && m != a.model {
		a.model = keepString(m)
	}
}

func (a *StreamAccumulator) appendText(s string) {
	a.outBytes += int64(len(s))
	if a.truncated {
		return
	}
	if room := MaxStreamText - len(a.text); len(s) > room {
		// Cut on a rune boundary so the kept text stays valid UTF-8.
		for room > 0 && !utf8.RuneStart(s[room]) {
			room--
		}
		s = s[:room]
		a.truncated = true
	}
	a.text = append(a.text, s...)
}

// appendOther keeps output that is not text, up to MaxStreamText bytes,
// for OutputTokens.
func (a *StreamAccumulator) appendOther(s string) {
	a.outBytes += int64(len(s))
	if room := MaxStreamText - len(a.other); len(s) > room {
		for room > 0 && !utf8.RuneStart(s[room]) {
			room--
		}
		s = s[:room]
	}
	a.other = append(a.other, s...)
}
