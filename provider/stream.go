package provider

import (
	"bytes"
	"unicode/utf8"

	"github.com/tidwall/gjson"
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
type StreamAccumulator struct {
	provider  string
	parser    SSEParser
	fields    usageFields
	model     string
	text      []byte
	truncated bool
	malformed int
}

// NewStreamAccumulator returns an accumulator for a stream from provider
// (OpenAI or Anthropic; anything else is read as OpenAI-compatible).
func NewStreamAccumulator(provider string) *StreamAccumulator {
	return &StreamAccumulator{provider: provider}
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
	case "response.created", "response.output_text.delta",
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
		} else if u := e.xGroq.Get("usage"); u.IsObject() {
			a.fields.merge(scanUsage(u)) // Groq's final chunk
		}
		if e.usageMetadata.IsObject() {
			var g usageFields
			g.scanGemini(e.usageMetadata)
			a.fields.merge(g)
		}
		a.choiceText(e.choices)
		a.candidateText(e.candidates)
	case "response.output_text.delta":
		a.appendText(stringOf(e.delta))
	case "response.created", "response.in_progress":
		a.setModel(e.response.Get("model"))
	case "response.completed", "response.incomplete", "response.failed":
		a.setModel(e.response.Get("model"))
		if u := e.response.Get("usage"); u.IsObject() {
			a.fields.merge(scanUsage(u))
		}
	case "message_start", "message_delta", "content_block_delta":
		// Anthropic's events under another name (Claude on Bedrock or
		// Vertex, logged as such): normalize reads their shape.
		a.anthropicEvent(obj)
	}
}

// choiceText appends the text of the choice with index 0. With n > 1 each
// chunk may carry a different choice, so the array position is not enough.
func (a *StreamAccumulator) choiceText(choices gjson.Result) {
	if !choices.IsArray() {
		return
	}
	choices.ForEach(func(_, c gjson.Result) bool {
		if !c.IsObject() || c.Get("index").Int() != 0 {
			return true
		}
		if t := c.Get("delta.content"); t.Type == gjson.String {
			a.appendText(t.Str)
		} else {
			a.appendText(stringOf(c.Get("text"))) // legacy /v1/completions
		}
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
		}
	case "content_block_delta":
		if e.delta.IsObject() && stringOf(e.delta.Get("type")) == "text_delta" {
			a.appendText(stringOf(e.delta.Get("text")))
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
