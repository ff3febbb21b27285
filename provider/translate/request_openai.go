package translate

import (
	"encoding/json"
	"slices"
)

// OpenAI request keys handled here. ignoredOpenAI are dropped on purpose:
// they do not change the answer (store, metadata, service_tier) or are
// best-effort hints with no Anthropic counterpart (seed).
var (
	knownOpenAI = []string{"model", "messages", "max_tokens", "max_completion_tokens",
		"temperature", "top_p", "stop", "stream", "stream_options", "user", "tools",
		"tool_choice", "parallel_tool_calls", "n", "logprobs", "top_logprobs",
		"response_format", "frequency_penalty", "presence_penalty", "logit_bias"}
	ignoredOpenAI = []string{"store", "metadata", "service_tier", "seed"}
)

// OpenAIToAnthropic translates an OpenAI Chat Completions request body into
// an Anthropic Messages request for opt.Model. A field Anthropic cannot honour
// is a *FieldError naming it.
func OpenAIToAnthropic(body []byte, opt RequestOptions) (Request, error) {
	if opt.Model == "" {
		return Request{}, errNoModel
	}
	o, err := parseObj(body, "")
	if err != nil {
		return Request{}, err
	}
	if err := o.allow(append(knownOpenAI, ignoredOpenAI...)...); err != nil {
		return Request{}, err
	}
	if err := refuseOpenAIOnly(o); err != nil {
		return Request{}, err
	}
	out := anRequest{Model: opt.Model}
	var res Request

	raw, err := o.array("messages")
	if err != nil {
		return res, err
	}
	var system []anBlock
	for i, m := range raw {
		if err := appendOpenAIMessage(&out, &system, m, index("messages", i)); err != nil {
			return res, err
		}
	}
	if len(out.Messages) == 0 {
		return res, unsupported("messages", "Anthropic needs at least one user or assistant message")
	}
	switch {
	case len(system) == 1:
		out.System = *system[0].Text
	case len(system) > 1:
		out.System = system
	}

	for _, k := range []string{"max_completion_tokens", "max_tokens"} {
		if ok, err := o.decode(k, &out.MaxTokens); err != nil {
			return res, err
		} else if ok {
			if out.MaxTokens <= 0 {
				return res, unsupported(k, "must be positive")
			}
			break
		}
	}
	if out.MaxTokens == 0 {
		out.MaxTokens = defaultMaxTokens(opt.Model, opt.DefaultMaxTokens)
	}
	if _, err := o.decode("temperature", &out.Temperature); err != nil {
		return res, err
	}
	if out.Temperature != nil && *out.Temperature > 1 {
		return res, unsupported("temperature", "Anthropic accepts 0 to 1")
	}
	if _, err := o.decode("top_p", &out.TopP); err != nil {
		return res, err
	}
	if o.isString("stop") {
		s, err := o.str("stop")
		if err != nil {
			return res, err
		}
		out.StopSequences = []string{s}
	} else if _, err := o.decode("stop", &out.StopSequences); err != nil {
		return res, err
	}
	// OpenAI ignores an empty stop string; Anthropic refuses it.
	out.StopSequences = slices.DeleteFunc(out.StopSequences, func(s string) bool { return s == "" })
	if _, err := o.decode("stream", &out.Stream); err != nil {
		return res, err
	}
	res.Stream = out.Stream
	if o.has("stream_options") {
		so, err := parseObj(o.m["stream_options"], "stream_options")
		if err != nil {
			return res, err
		}
		if err := so.allow("include_usage", "include_obfuscation"); err != nil {
			return res, err
		}
		if _, err := so.decode("include_usage", &res.IncludeUsage); err != nil {
			return res, err
		}
	}
	if user, err := o.str("user"); err != nil {
		return res, err
	} else if user != "" {
		out.Metadata = &anMetadata{UserID: user}
	}
	if err := openAITools(o, &out); err != nil {
		return res, err
	}
	res.Body, err = json.Marshal(out)
	return res, err
}

// refuseOpenAIOnly names the first field whose value asks for something
// Anthropic does not do. Default values pass, since SDKs often send them.
func refuseOpenAIOnly(o obj) error {
	var n int64
	if _, err := o.decode("n", &n); err != nil {
		return err
	} else if n > 1 {
		return unsupported("n", "Anthropic returns one choice")
	}
	var b bool
	if _, err := o.decode("logprobs", &b); err != nil {
		return err
	} else if b {
		return unsupported("logprobs", "Anthropic returns no log probabilities")
	}
	if o.has("top_logprobs") {
		return unsupported("top_logprobs", "Anthropic returns no log probabilities")
	}
	for _, k := range []string{"frequency_penalty", "presence_penalty"} {
		var f float64
		if _, err := o.decode(k, &f); err != nil {
			return err
		} else if f != 0 {
			return unsupported(k, "Anthropic has no repetition penalties")
		}
	}
	var bias map[string]float64
	if _, err := o.decode("logit_bias", &bias); err != nil {
		return err
	} else if len(bias) > 0 {
		return unsupported("logit_bias", "Anthropic has no token biases")
	}
	if o.has("response_format") {
		rf, err := parseObj(o.m["response_format"], "response_format")
		if err != nil {
			return err
		}
		if t, _ := rf.str("type"); t != "text" {
			return unsupported("response_format", "Anthropic has no JSON mode; only type text translates")
		}
	}
	return nil
}

// appendOpenAIMessage adds one OpenAI message: system and developer text goes
// to Anthropic's top-level system (Anthropic has no system turns), tool
// results become tool_result blocks of a user turn, and consecutive turns of
// one role merge since Anthropic wants tool results first in the user turn
// that follows the tool calls.
func appendOpenAIMessage(out *anRequest, system *[]anBlock, raw json.RawMessage, path string) error {
	m, err := parseObj(raw, path)
	if err != nil {
		return err
	}
	role, err := m.str("role")
	if err != nil {
		return err
	}
	switch role {
	case "system", "developer":
		if err := m.allow("role", "content", "name"); err != nil {
			return err
		}
		blocks, err := openAIContent(m, path, false)
		if err != nil {
			return err
		}
		for _, b := range blocks {
			if b.Type != "text" {
				return unsupported(path+".content", "a system prompt holds text only")
			}
		}
		*system = append(*system, blocks...)
		return nil
	case "user":
		if err := m.allow("role", "content", "name"); err != nil {
			return err
		}
		if m.isString("content") {
			s, _ := m.str("content")
			addTurn(out, "user", nil, &s)
			return nil
		}
		blocks, err := openAIContent(m, path, true)
		if err != nil {
			return err
		}
		if len(blocks) == 0 {
			return unsupported(path+".content", "Anthropic refuses a user turn without content")
		}
		addTurn(out, "user", blocks, nil)
		return nil
	case "assistant":
		if err := m.allow("role", "content", "name", "tool_calls", "refusal"); err != nil {
			return err
		}
		blocks, err := openAIContent(m, path, false)
		if err != nil {
			return err
		}
		calls, err := m.array("tool_calls")
		if err != nil {
			return err
		}
		for j, c := range calls {
			b, err := openAIToolCall(c, index(path+".tool_calls", j))
			if err != nil {
				return err
			}
			blocks = append(blocks, b)
		}
		if len(calls) == 0 && m.isString("content") {
			s, _ := m.str("content")
			addTurn(out, "assistant", nil, &s)
			return nil
		}
		if len(blocks) == 0 {
			return unsupported(path+".content", "Anthropic refuses an assistant turn without content")
		}
		addTurn(out, "assistant", blocks, nil)
		return nil
	case "tool":
		if err := m.allow("role", "content", "tool_call_id"); err != nil {
			return err
		}
		id, err := m.str("tool_call_id")
		if err != nil {
			return err
		}
		b := anBlock{Type: "tool_result", ToolUseID: id}
		if m.isString("content") {
			b.Content, _ = m.str("content")
		} else {
			parts, err := openAIContent(m, path, false)
			if err != nil {
				return err
			}
			b.Content = parts
		}
		addTurn(out, "user", []anBlock{b}, nil)
		return nil
	case "function":
		return unsupported(path+".role", "legacy function messages; use tool messages")
	}
	return unsupported(path+".role", "unknown role "+quote(role))
}

// addTurn appends blocks (or a plain string) as a turn of role, merging with
// the previous turn when it has the same role. A string stays a string when
// it starts a turn, so plain conversations keep their shape.
func addTurn(out *anRequest, role string, blocks []anBlock, text *string) {
	n := len(out.Messages)
	if n > 0 && out.Messages[n-1].Role == role {
		prev := &out.Messages[n-1]
		var merged []anBlock
		switch c := prev.Content.(type) {
		case string:
			if c != "" {
				merged = append(merged, textBlock(c))
			}
		case []anBlock:
			merged = c
		}
		if text != nil {
			blocks = []anBlock{textBlock(*text)}
		}
		// Anthropic wants tool results ahead of other blocks of a turn.
		merged = append(merged, blocks...)
		prev.Content = toolResultsFirst(merged)
		return
	}
	if text != nil {
		out.Messages = append(out.Messages, anMessage{Role: role, Content: *text})
		return
	}
	if blocks == nil {
		blocks = []anBlock{}
	}
	out.Messages = append(out.Messages, anMessage{Role: role, Content: blocks})
}

func toolResultsFirst(blocks []anBlock) []anBlock {
	out := make([]anBlock, 0, len(blocks))
	for _, b := range blocks {
		if b.Type == "tool_result" {
			out = append(out, b)
		}
	}
	for _, b := range blocks {
		if b.Type != "tool_result" {
			out = append(out, b)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
