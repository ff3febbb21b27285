package translate

import (
	"bytes"
	"encoding/json"
	"strings"
)

var (
	knownAnthropic = []string{"model", "messages", "system", "max_tokens", "stop_sequences",
		"temperature", "top_p", "top_k", "stream", "metadata", "tools", "tool_choice", "thinking"}
	// service_tier only picks Anthropic capacity; it does not change the answer.
	ignoredAnthropic = []string{"service_tier"}
)

// openAIMaxStops is OpenAI's limit on stop sequences.
const openAIMaxStops = 4

// AnthropicToOpenAI translates an Anthropic Messages request body into an
// OpenAI Chat Completions request for opt.Model. A field OpenAI cannot honour
// is a *FieldError naming it.
func AnthropicToOpenAI(body []byte, opt RequestOptions) (Request, error) {
	if opt.Model == "" {
		return Request{}, errNoModel
	}
	o, err := parseObj(body, "")
	if err != nil {
		return Request{}, err
	}
	if err := o.allow(append(knownAnthropic, ignoredAnthropic...)...); err != nil {
		return Request{}, err
	}
	if o.has("top_k") {
		return Request{}, unsupported("top_k", "OpenAI has no top_k sampling")
	}
	if o.has("thinking") {
		th, err := parseObj(o.m["thinking"], "thinking")
		if err != nil {
			return Request{}, err
		}
		if t, _ := th.str("type"); t != "disabled" {
			return Request{}, unsupported("thinking", "extended thinking has no Chat Completions equivalent")
		}
	}
	out := oaRequest{Model: opt.Model}
	res := Request{}

	if err := anthropicSystem(o, &out); err != nil {
		return res, err
	}
	raw, err := o.array("messages")
	if err != nil {
		return res, err
	}
	for i, m := range raw {
		if err := appendAnthropicMessage(&out, m, index("messages", i)); err != nil {
			return res, err
		}
	}
	var maxTokens int64
	if ok, err := o.decode("max_tokens", &maxTokens); err != nil {
		return res, err
	} else if ok {
		if opt.LegacyMaxTokens {
			out.MaxTokens = &maxTokens
		} else {
			out.MaxCompletionTokens = &maxTokens
		}
	}
	if _, err := o.decode("stop_sequences", &out.Stop); err != nil {
		return res, err
	}
	if len(out.Stop) > openAIMaxStops {
		return res, unsupported("stop_sequences", "OpenAI takes at most 4 stop sequences")
	}
	if _, err := o.decode("temperature", &out.Temperature); err != nil {
		return res, err
	}
	if _, err := o.decode("top_p", &out.TopP); err != nil {
		return res, err
	}
	if _, err := o.decode("stream", &out.Stream); err != nil {
		return res, err
	}
	res.Stream = out.Stream
	if out.Stream {
		// Anthropic streams always carry usage, and so must the record.
		out.StreamOptions = &oaStreamOpts{IncludeUsage: true}
		res.IncludeUsage = true
	}
	if o.has("metadata") {
		md, err := parseObj(o.m["metadata"], "metadata")
		if err != nil {
			return res, err
		}
		if err := md.allow("user_id"); err != nil {
			return res, err
		}
		if out.User, err = md.str("user_id"); err != nil {
			return res, err
		}
	}
	if err := anthropicTools(o, &out); err != nil {
		return res, err
	}
	res.Body, err = json.Marshal(out)
	return res, err
}

// anthropicSystem turns Anthropic's top-level system prompt into one system
// message at the start (a string stays a string). cache_control is dropped:
// OpenAI caches prompt prefixes on its own.
func anthropicSystem(o obj, out *oaRequest) error {
	if !o.has("system") {
		return nil
	}
	if o.isString("system") {
		s, _ := o.str("system")
		out.Messages = append(out.Messages, oaMessage{Role: "system", Content: s})
		return nil
	}
	blocks, err := o.array("system")
	if err != nil {
		return err
	}
	parts := make([]oaPart, 0, len(blocks))
	for i, raw := range blocks {
		path := index("system", i)
		b, err := parseObj(raw, path)
		if err != nil {
			return err
		}
		if err := b.allow("type", "text", "cache_control"); err != nil {
			return err
		}
		if t, _ := b.str("type"); t != "text" {
			return unsupported(path+".type", "a system prompt holds text only")
		}
		s, err := b.str("text")
		if err != nil {
			return err
		}
		parts = append(parts, oaPart{Type: "text", Text: &s})
	}
	out.Messages = append(out.Messages, oaMessage{Role: "system", Content: parts})
	return nil
}

// appendAnthropicMessage adds one Anthropic turn. A user turn's tool_result
// blocks become tool messages placed before the rest of the turn, because
// OpenAI wants tool messages right after the assistant's tool calls.
func appendAnthropicMessage(out *oaRequest, raw json.RawMessage, path string) error {
	m, err := parseObj(raw, path)
	if err != nil {
		return err
	}
	if err := m.allow("role", "content"); err != nil {
		return err
	}
	role, err := m.str("role")
	if err != nil {
		return err
	}
	if role != "user" && role != "assistant" {
		return unsupported(path+".role", "unknown role "+quote(role))
	}
	if m.isString("content") {
		s, _ := m.str("content")
		out.Messages = append(out.Messages, oaMessage{Role: role, Content: s})
		return nil
	}
	blocks, err := m.array("content")
	if err != nil {
		return err
	}
	var parts []oaPart
	var calls []oaToolCall
	for j, rb := range blocks {
		bp := index(path+".content", j)
		b, err := parseObj(rb, bp)
		if err != nil {
			return err
		}
		typ, err := b.str("type")
		if err != nil {
			return err
		}
		switch {
		case typ == "text":
			if err := b.allow("type", "text", "cache_control", "citations"); err != nil {
				return err
			}
			if b.has("citations") {
				return unsupported(bp+".citations", "OpenAI has no citations")
			}
			s, err := b.str("text")
			if err != nil {
				return err
			}
			parts = append(parts, oaPart{Type: "text", Text: &s})
		case typ == "image" && role == "user":
			p, err := anthropicImage(b, bp)
			if err != nil {
				return err
			}
			parts = append(parts, p)
		case typ == "tool_use" && role == "assistant":
			c, err := anthropicToolUse(b, bp)
			if err != nil {
				return err
			}
			calls = append(calls, c)
		case typ == "tool_result" && role == "user":
			msg, err := anthropicToolResult(b, bp)
			if err != nil {
				return err
			}
			out.Messages = append(out.Messages, msg)
		default:
			return unsupported(bp+".type", "no OpenAI equivalent for a "+role+" "+quote(typ)+" block")
		}
	}
	if role == "assistant" {
		msg := oaMessage{Role: role, ToolCalls: calls}
		if len(parts) > 0 {
			// Assistant content in OpenAI is text; join the blocks.
			var sb strings.Builder
			for _, p := range parts {
				sb.WriteString(*p.Text)
			}
			msg.Content = sb.String()
		}
		out.Messages = append(out.Messages, msg)
		return nil
	}
	if len(parts) > 0 || len(blocks) == 0 {
		if parts == nil {
			parts = []oaPart{}
		}
		out.Messages = append(out.Messages, oaMessage{Role: role, Content: parts})
	}
	return nil
}

func anthropicImage(b obj, path string) (oaPart, error) {
	if err := b.allow("type", "source", "cache_control"); err != nil {
		return oaPart{}, err
	}
	src, err := parseObj(b.m["source"], path+".source")
	if err != nil {
		return oaPart{}, err
	}
	var s anSource
	if err := json.Unmarshal(b.m["source"], &s); err != nil {
		return oaPart{}, invalid(path+".source", err)
	}
	switch s.Type {
	case "base64":
		if err := src.allow("type", "media_type", "data"); err != nil {
			return oaPart{}, err
		}
		return oaPart{Type: "image_url", ImageURL: &oaImageURL{URL: "data:" + s.MediaType + ";base64," + s.Data}}, nil
	case "url":
		if err := src.allow("type", "url"); err != nil {
			return oaPart{}, err
		}
		return oaPart{Type: "image_url", ImageURL: &oaImageURL{URL: s.URL}}, nil
	}
	return oaPart{}, unsupported(path+".source.type", "only base64 and url images translate")
}

func anthropicToolUse(b obj, path string) (oaToolCall, error) {
	if err := b.allow("type", "id", "name", "input", "cache_control"); err != nil {
		return oaToolCall{}, err
	}
	id, err := b.str("id")
	if err != nil {
		return oaToolCall{}, err
	}
	name, err := b.str("name")
	if err != nil {
		return oaToolCall{}, err
	}
	args := "{}"
	if b.has("input") {
		var input map[string]json.RawMessage
		if _, err := b.decode("input", &input); err != nil {
			return oaToolCall{}, err
		}
		args = compactJSON(b.m["input"])
	}
	return oaToolCall{ID: id, Type: "function", Function: oaFunction{Name: name, Arguments: args}}, nil
}

func anthropicToolResult(b obj, path string) (oaMessage, error) {
	if err := b.allow("type", "tool_use_id", "content", "is_error", "cache_control"); err != nil {
		return oaMessage{}, err
	}
	id, err := b.str("tool_use_id")
	if err != nil {
		return oaMessage{}, err
	}
	msg := oaMessage{Role: "tool", ToolCallID: id, Content: ""}
	if b.isString("content") {
		msg.Content, _ = b.str("content")
		return msg, nil
	}
	inner, err := b.array("content")
	if err != nil {
		return msg, err
	}
	parts := make([]oaPart, 0, len(inner))
	for k, raw := range inner {
		ip := index(path+".content", k)
		c, err := parseObj(raw, ip)
		if err != nil {
			return msg, err
		}
		if t, _ := c.str("type"); t != "text" {
			return msg, unsupported(ip+".type", "OpenAI tool results hold text only")
		}
		if err := c.allow("type", "text", "cache_control"); err != nil {
			return msg, err
		}
		s, err := c.str("text")
		if err != nil {
			return msg, err
		}
		parts = append(parts, oaPart{Type: "text", Text: &s})
	}
	if len(parts) > 0 {
		msg.Content = parts
	}
	return msg, nil
}

func anthropicTools(o obj, out *oaRequest) error {
	tools, err := o.array("tools")
	if err != nil {
		return err
	}
	for i, raw := range tools {
		path := index("tools", i)
		t, err := parseObj(raw, path)
		if err != nil {
			return err
		}
		if typ, _ := t.str("type"); typ != "" && typ != "custom" {
			return unsupported(path+".type", "Anthropic server and client tools ("+quote(typ)+") have no OpenAI equivalent")
		}
		if err := t.allow("type", "name", "description", "input_schema", "cache_control"); err != nil {
			return err
		}
		var v anTool
		if err := json.Unmarshal(raw, &v); err != nil {
			return invalid(path, err)
		}
		out.Tools = append(out.Tools, oaTool{Type: "function", Function: oaFunctionDef{
			Name: v.Name, Description: v.Description, Parameters: v.InputSchema}})
	}
	if !o.has("tool_choice") {
		return nil
	}
	tc, err := parseObj(o.m["tool_choice"], "tool_choice")
	if err != nil {
		return err
	}
	if err := tc.allow("type", "name", "disable_parallel_tool_use"); err != nil {
		return err
	}
	typ, err := tc.str("type")
	if err != nil {
		return err
	}
	switch typ {
	case "auto":
		out.ToolChoice = json.RawMessage(`"auto"`)
	case "any":
		out.ToolChoice = json.RawMessage(`"required"`)
	case "none":
		out.ToolChoice = json.RawMessage(`"none"`)
	case "tool":
		name, err := tc.str("name")
		if err != nil {
			return err
		}
		out.ToolChoice, err = json.Marshal(oaNamedChoice{Type: "function", Function: oaChoiceName{Name: name}})
		if err != nil {
			return err
		}
	default:
		return unsupported("tool_choice.type", "unknown value "+quote(typ))
	}
	var noParallel bool
	if _, err := tc.decode("disable_parallel_tool_use", &noParallel); err != nil {
		return err
	}
	if noParallel && len(out.Tools) > 0 {
		f := false
		out.ParallelToolCalls = &f
	}
	return nil
}

func compactJSON(raw json.RawMessage) string {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return string(raw)
	}
	return buf.String()
}
