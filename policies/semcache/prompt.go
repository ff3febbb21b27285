package semcache

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"

	"github.com/tidwall/gjson"
)

// PromptText renders what a request asks, deterministically, for
// embedding: the system prompt and every message as "role: text" lines
// (OpenAI and Anthropic chat bodies: text parts only, images and tool
// payloads left out), or a completion's prompt or a Responses input. ""
// when the body holds none of these (nothing to compare).
func PromptText(body []byte) string {
	if !gjson.ValidBytes(body) {
		return ""
	}
	r := gjson.ParseBytes(body)
	var b strings.Builder
	if sys := r.Get("system"); sys.Exists() { // Anthropic
		line(&b, "system", contentText(sys))
	}
	for _, m := range r.Get("messages").Array() {
		line(&b, m.Get("role").String(), contentText(m.Get("content")))
	}
	for _, key := range [...]string{"prompt", "input"} {
		if v := r.Get(key); v.Exists() {
			if v.IsArray() {
				for _, m := range v.Array() {
					if m.IsObject() {
						line(&b, m.Get("role").String(), contentText(m.Get("content")))
					} else {
						line(&b, key, m.String())
					}
				}
			} else {
				line(&b, key, v.String())
			}
		}
	}
	return strings.TrimSpace(b.String())
}

func line(b *strings.Builder, role, text string) {
	if text = strings.TrimSpace(text); text == "" {
		return
	}
	b.WriteString(role)
	b.WriteString(": ")
	b.WriteString(text)
	b.WriteByte('\n')
}

// contentText is a message content's text: a string, or the text of its
// parts ({"type":"text","text":…}, also input_text / output_text).
func contentText(c gjson.Result) string {
	if c.Type == gjson.String {
		return c.String()
	}
	var parts []string
	for _, p := range c.Array() {
		if t := p.Get("text"); t.Type == gjson.String {
			parts = append(parts, t.String())
		}
	}
	return strings.Join(parts, "\n")
}

// PromptFields are the top-level body fields PromptText reads: the scope
// of a request is its exact cache key computed without them.
var PromptFields = []string{"messages", "system", "prompt", "input"}

// Headers of the semantic cache (lowercase).
const (
	HeaderEnabled    = "helicone-cache-semantic-enabled"
	HeaderThreshold  = "helicone-cache-semantic-threshold"
	HeaderSimilarity = "helicone-cache-similarity" // on a semantic hit
)

// PromptRest is a hash of everything of the prompt fields that PromptText
// does not render: images, Anthropic tool_use / tool_result blocks, a
// Responses function_call_output, any other part or field. It goes into
// the scope, so two requests whose text is alike but whose other parts
// differ never share an answer. "" when the body holds none of the
// prompt fields or is not JSON.
func PromptRest(body []byte) string {
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil {
		return ""
	}
	h := sha256.New()
	seen := false
	for _, key := range PromptFields {
		raw, ok := top[key]
		if !ok {
			continue
		}
		var v any
		if json.Unmarshal(raw, &v) != nil {
			continue
		}
		switch key {
		case "system":
			v = stripContent(v)
		case "messages":
			v = stripMessages(v, "")
		default: // prompt, input: a string, or a list of strings or messages
			v = stripMessages(v, key)
		}
		// encoding/json sorts map keys: the same rest hashes the same.
		b, _ := json.Marshal(v)
		h.Write([]byte(key))
		h.Write([]byte{0})
		h.Write(b)
		h.Write([]byte{0})
		seen = true
	}
	if !seen {
		return ""
	}
	return hex.EncodeToString(h.Sum(nil))
}

// stripMessages removes from a list of messages what PromptText renders
// (a string role, the content's text); bare strings (prompt / input
// items, or a whole prompt when strings is set) are rendered too.
func stripMessages(v any, strings string) any {
	switch t := v.(type) {
	case string:
		if strings != "" {
			return ""
		}
		return t
	case []any:
		out := make([]any, len(t))
		for i, m := range t {
			switch mm := m.(type) {
			case map[string]any:
				if _, ok := mm["role"].(string); ok {
					delete(mm, "role")
				}
				if c, ok := mm["content"]; ok {
					mm["content"] = stripContent(c)
				}
				out[i] = mm
			case string:
				if strings != "" {
					out[i] = ""
				} else {
					out[i] = mm
				}
			default:
				out[i] = m
			}
		}
		return out
	}
	return v
}

// stripContent removes a content's rendered text: a string, or the "text"
// string of each part. Every other part or field stays.
func stripContent(c any) any {
	switch t := c.(type) {
	case string:
		return ""
	case map[string]any:
		if _, ok := t["text"].(string); ok {
			delete(t, "text")
		}
		return t
	case []any:
		for _, p := range t {
			if pm, ok := p.(map[string]any); ok {
				if _, ok := pm["text"].(string); ok {
					delete(pm, "text")
				}
			}
		}
		return t
	}
	return c
}
