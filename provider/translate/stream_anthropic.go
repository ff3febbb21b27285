package translate

import (
	"github.com/tidwall/gjson"
)

// anthropicToOpenAIStream turns Anthropic Messages events into OpenAI
// chat.completion.chunk lines.
type anthropicToOpenAIStream struct {
	sse          sseEvents
	out          []byte
	head         []byte // `data: {"id":…,"choices":[` shared by every chunk
	includeUsage bool
	created      int64
	usage        anUsage
	blockTool    map[int64]int64 // content block index → tool call index
	tools        int64
	started      bool
	finished     bool // message_delta with a stop reason seen
	done         bool
}

// NewAnthropicToOpenAIStream translates an Anthropic stream for an OpenAI
// client. includeUsage adds OpenAI's final usage chunk (the client asked for
// stream_options.include_usage).
func NewAnthropicToOpenAIStream(includeUsage bool, opt ResponseOptions) StreamTranslator {
	s := &anthropicToOpenAIStream{includeUsage: includeUsage, created: opt.created(),
		blockTool: map[int64]int64{}}
	s.sse.init(s.event)
	return s
}

func (s *anthropicToOpenAIStream) Write(chunk []byte) ([]byte, error) {
	s.out = s.out[:0]
	err := s.sse.feed(chunk)
	return s.out, err
}

func (s *anthropicToOpenAIStream) Close() ([]byte, error) {
	s.out = s.out[:0]
	if err := s.sse.flush(); err != nil {
		return s.out, err
	}
	if !s.done {
		if !s.finished {
			return s.out, &FieldError{Field: "stream", Reason: "ended before message_stop"}
		}
		s.stop()
	}
	return s.out, nil
}

func (s *anthropicToOpenAIStream) event(name, data []byte) error {
	if s.done {
		return nil
	}
	if !gjson.ValidBytes(data) {
		return &FieldError{Field: "stream", Reason: "event " + quote(string(name)) + " is not JSON"}
	}
	ev := gjson.ParseBytes(data)
	typ := ev.Get("type").String()
	if !s.started && typ != "message_start" && typ != "error" && typ != "ping" {
		return &FieldError{Field: "stream", Reason: quote(typ) + " before message_start"}
	}
	switch typ {
	case "message_start":
		return s.start(ev.Get("message"))
	case "content_block_start":
		b := ev.Get("content_block")
		switch b.Get("type").String() {
		case "text":
			if t, ok := strLit(b.Get("text")); ok && t != `""` {
				s.delta(`{"content":`, t, `}`, "")
			}
		case "tool_use":
			id, ok1 := strLit(b.Get("id"))
			fn, ok2 := strLit(b.Get("name"))
			if !ok1 || !ok2 {
				return &FieldError{Field: "stream.content_block", Reason: "tool_use without id or name"}
			}
			t := s.tools
			s.tools++
			s.blockTool[ev.Get("index").Int()] = t
			s.toolDelta(t, id, fn, `""`)
		}
		// thinking and server tool blocks have no Chat Completions form.
	case "content_block_delta":
		d := ev.Get("delta")
		switch d.Get("type").String() {
		case "text_delta":
			if t, ok := strLit(d.Get("text")); ok {
				s.delta(`{"content":`, t, `}`, "")
			}
		case "input_json_delta":
			t, isTool := s.blockTool[ev.Get("index").Int()]
			if pj, ok := strLit(d.Get("partial_json")); ok && isTool && pj != `""` {
				s.toolDelta(t, "", "", pj)
			}
		}
	case "message_delta":
		mergeUsage(&s.usage, ev.Get("usage"))
		if sr := ev.Get("delta.stop_reason").String(); sr != "" {
			s.finished = true
			s.delta(`{}`, "", "", finishReason(sr))
		}
	case "message_stop":
		s.stop()
	case "error":
		s.out = append(s.out, "data: "...)
		s.out = append(s.out, anthropicErrorToOpenAI(ev)...)
		s.out = append(s.out, "\n\n"...)
		s.done = true
	}
	return nil
}

func (s *anthropicToOpenAIStream) start(m gjson.Result) error {
	id, ok1 := strLit(m.Get("id"))
	model, ok2 := strLit(m.Get("model"))
	if !ok1 || !ok2 {
		return &FieldError{Field: "stream.message_start", Reason: "no id or model"}
	}
	s.started = true
	s.usage = anUsageOf(m.Get("usage"))
	s.head = append(s.head[:0], `data: {"id":`...)
	s.head = append(s.head, id...)
	s.head = append(s.head, `,"object":"chat.completion.chunk","created":`...)
	s.head = appendInt(s.head, s.created)
	s.head = append(s.head, `,"model":`...)
	s.head = append(s.head, model...)
	s.head = append(s.head, `,"choices":[`...)
	s.delta(`{"role":"assistant","content":""}`, "", "", "")
	return nil
}

// delta writes one chunk whose delta is pre+lit+post, with finish as its
// finish_reason ("" is null).
func (s *anthropicToOpenAIStream) delta(pre, lit, post, finish string) {
	s.out = append(s.out, s.head...)
	s.out = append(s.out, `{"index":0,"delta":`...)
	s.out = append(s.out, pre...)
	s.out = append(s.out, lit...)
	s.out = append(s.out, post...)
	s.out = append(s.out, `,"logprobs":null,"finish_reason":`...)
	if finish == "" {
		s.out = append(s.out, "null"...)
	} else {
		s.out = appendJSONString(s.out, finish)
	}
	s.out = append(s.out, "}]}\n\n"...)
}

// toolDelta writes a tool_calls delta: the call's opening (id and name
// literals set) or a piece of its arguments.
func (s *anthropicToOpenAIStream) toolDelta(t int64, id, name, args string) {
	s.out = append(s.out, s.head...)
	s.out = append(s.out, `{"index":0,"delta":{"tool_calls":[{"index":`...)
	s.out = appendInt(s.out, t)
	if id != "" {
		s.out = append(s.out, `,"id":`...)
		s.out = append(s.out, id...)
		s.out = append(s.out, `,"type":"function","function":{"name":`...)
		s.out = append(s.out, name...)
		s.out = append(s.out, `,"arguments":`...)
	} else {
		s.out = append(s.out, `,"function":{"arguments":`...)
	}
	s.out = append(s.out, args...)
	s.out = append(s.out, `}}]},"logprobs":null,"finish_reason":null}]}`+"\n\n"...)
}

func (s *anthropicToOpenAIStream) stop() {
	if s.includeUsage {
		u := usageToOpenAI(s.usage)
		s.out = append(s.out, s.head...)
		s.out = append(s.out, `],"usage":{"prompt_tokens":`...)
		s.out = appendInt(s.out, u.PromptTokens)
		s.out = append(s.out, `,"completion_tokens":`...)
		s.out = appendInt(s.out, u.CompletionTokens)
		s.out = append(s.out, `,"total_tokens":`...)
		s.out = appendInt(s.out, u.TotalTokens)
		s.out = append(s.out, `,"prompt_tokens_details":{"cached_tokens":`...)
		s.out = appendInt(s.out, u.PromptTokensDetails.CachedTokens)
		s.out = append(s.out, "}}}\n\n"...)
	}
	s.out = append(s.out, "data: [DONE]\n\n"...)
	s.done = true
}

// mergeUsage takes the counts a message_delta carries; Anthropic's are
// cumulative, and newer streams repeat the input counts there.
func mergeUsage(u *anUsage, r gjson.Result) {
	set := func(dst *int64, key string) {
		if v := r.Get(key); v.Exists() && v.Type == gjson.Number {
			*dst = v.Int()
		}
	}
	set(&u.InputTokens, "input_tokens")
	set(&u.CacheCreationInputTokens, "cache_creation_input_tokens")
	set(&u.CacheReadInputTokens, "cache_read_input_tokens")
	set(&u.OutputTokens, "output_tokens")
}
