package translate

import (
	"bytes"

	"github.com/tidwall/gjson"
)

// openAIToAnthropicStream turns OpenAI chat.completion.chunk lines into
// Anthropic Messages events. OpenAI sends usage (if at all) after the
// finishing chunk, so message_delta waits for [DONE].
type openAIToAnthropicStream struct {
	sse       sseEvents
	out       []byte
	started   bool
	open      int64 // index of the open content block, -1 if none
	openText  bool  // the open block is text
	next      int64 // index of the next content block
	toolBlock map[int64]int64
	finish    string
	usage     anUsage
	done      bool
}

// NewOpenAIToAnthropicStream translates an OpenAI chat stream for an
// Anthropic client. The upstream request should set
// stream_options.include_usage (AnthropicToOpenAI does), or the usage
// Anthropic clients expect in message_delta is zero.
func NewOpenAIToAnthropicStream() StreamTranslator {
	s := &openAIToAnthropicStream{open: -1, toolBlock: map[int64]int64{}}
	s.sse.init(s.event)
	return s
}

func (s *openAIToAnthropicStream) Write(chunk []byte) ([]byte, error) {
	s.out = s.out[:0]
	err := s.sse.feed(chunk)
	return s.out, err
}

func (s *openAIToAnthropicStream) Close() ([]byte, error) {
	s.out = s.out[:0]
	if err := s.sse.flush(); err != nil {
		return s.out, err
	}
	if !s.done {
		if s.finish == "" {
			return s.out, &FieldError{Field: "stream", Reason: "ended before a finish_reason"}
		}
		s.stop()
	}
	return s.out, nil
}

func (s *openAIToAnthropicStream) event(_, data []byte) error {
	if s.done {
		return nil
	}
	if bytes.Equal(bytes.TrimSpace(data), []byte("[DONE]")) {
		if !s.started || s.finish == "" {
			return &FieldError{Field: "stream", Reason: "[DONE] before a finish_reason"}
		}
		s.stop()
		return nil
	}
	if !gjson.ValidBytes(data) {
		return &FieldError{Field: "stream", Reason: "chunk is not JSON"}
	}
	c := gjson.ParseBytes(data)
	if e := c.Get("error"); e.IsObject() {
		s.out = append(s.out, "event: error\ndata: "...)
		s.out = append(s.out, openAIErrorToAnthropic(e)...)
		s.out = append(s.out, "\n\n"...)
		s.done = true
		return nil
	}
	if !s.started {
		// Azure OpenAI opens with a chunk of prompt_filter_results only
		// (empty id, model and choices): nothing to start a message with.
		if c.Get("id").String() == "" && len(c.Get("choices").Array()) == 0 {
			return nil
		}
		if err := s.start(c); err != nil {
			return err
		}
	}
	if u := c.Get("usage"); u.IsObject() {
		s.usage = usageToAnthropic(u)
	}
	ch := c.Get("choices.0")
	if !ch.Exists() {
		return nil
	}
	d := ch.Get("delta")
	for _, key := range [...]string{"content", "refusal"} {
		if t, ok := strLit(d.Get(key)); ok && t != `""` {
			if s.open < 0 || !s.openText {
				s.closeBlock()
				s.openBlock(true)
				s.out = append(s.out, `{"type":"text","text":""}}`+"\n\n"...)
			}
			s.event2("content_block_delta", s.open, `{"type":"text_delta","text":`, t)
		}
	}
	var err error
	d.Get("tool_calls").ForEach(func(_, tc gjson.Result) bool {
		err = s.toolCall(tc)
		return err == nil
	})
	if err != nil {
		return err
	}
	if fr := ch.Get("finish_reason").String(); fr != "" {
		s.finish = fr
		s.closeBlock()
	}
	return nil
}

func (s *openAIToAnthropicStream) start(c gjson.Result) error {
	id, ok1 := strLit(c.Get("id"))
	model, ok2 := strLit(c.Get("model"))
	if !ok1 || !ok2 {
		return &FieldError{Field: "stream", Reason: "first chunk has no id or model"}
	}
	s.started = true
	s.out = append(s.out, `event: message_start`+"\n"+`data: {"type":"message_start","message":{"id":`...)
	s.out = append(s.out, id...)
	s.out = append(s.out, `,"type":"message","role":"assistant","model":`...)
	s.out = append(s.out, model...)
	s.out = append(s.out, `,"content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":0,"output_tokens":0}}}`+"\n\n"...)
	return nil
}

func (s *openAIToAnthropicStream) toolCall(tc gjson.Result) error {
	t := tc.Get("index").Int()
	b, known := s.toolBlock[t]
	if !known {
		id, ok1 := strLit(tc.Get("id"))
		name, ok2 := strLit(tc.Get("function.name"))
		if !ok1 || !ok2 {
			return &FieldError{Field: "stream.tool_calls", Reason: "a tool call's first delta has no id or name"}
		}
		s.closeBlock()
		b = s.openBlock(false)
		s.toolBlock[t] = b
		s.out = append(s.out, `{"type":"tool_use","id":`...)
		s.out = append(s.out, id...)
		s.out = append(s.out, `,"name":`...)
		s.out = append(s.out, name...)
		s.out = append(s.out, `,"input":{}}}`+"\n\n"...)
	}
	if args, ok := strLit(tc.Get("function.arguments")); ok && args != `""` {
		s.event2("content_block_delta", b, `{"type":"input_json_delta","partial_json":`, args)
	}
	return nil
}

// openBlock writes the head of a content_block_start, up to its
// content_block value, and returns the new block's index.
func (s *openAIToAnthropicStream) openBlock(text bool) int64 {
	s.open, s.openText = s.next, text
	s.next++
	s.out = append(s.out, `event: content_block_start`+"\n"+`data: {"type":"content_block_start","index":`...)
	s.out = appendInt(s.out, s.open)
	s.out = append(s.out, `,"content_block":`...)
	return s.open
}

func (s *openAIToAnthropicStream) closeBlock() {
	if s.open < 0 {
		return
	}
	s.out = append(s.out, `event: content_block_stop`+"\n"+`data: {"type":"content_block_stop","index":`...)
	s.out = appendInt(s.out, s.open)
	s.out = append(s.out, "}\n\n"...)
	s.open = -1
}

// event2 writes a content_block_delta whose delta is pre+lit+"}".
func (s *openAIToAnthropicStream) event2(name string, index int64, pre, lit string) {
	s.out = append(s.out, "event: "...)
	s.out = append(s.out, name...)
	s.out = append(s.out, `
data: {"type":"`...)
	s.out = append(s.out, name...)
	s.out = append(s.out, `","index":`...)
	s.out = appendInt(s.out, index)
	s.out = append(s.out, `,"delta":`...)
	s.out = append(s.out, pre...)
	s.out = append(s.out, lit...)
	s.out = append(s.out, "}}\n\n"...)
}

func (s *openAIToAnthropicStream) stop() {
	s.closeBlock()
	s.out = append(s.out, `event: message_delta`+"\n"+`data: {"type":"message_delta","delta":{"stop_reason":`...)
	s.out = appendJSONString(s.out, stopReason(s.finish))
	s.out = append(s.out, `,"stop_sequence":null},"usage":{"input_tokens":`...)
	s.out = appendInt(s.out, s.usage.InputTokens)
	s.out = append(s.out, `,"cache_creation_input_tokens":0,"cache_read_input_tokens":`...)
	s.out = appendInt(s.out, s.usage.CacheReadInputTokens)
	s.out = append(s.out, `,"output_tokens":`...)
	s.out = appendInt(s.out, s.usage.OutputTokens)
	s.out = append(s.out, "}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"...)
	s.done = true
}
