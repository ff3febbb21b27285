package semcache

import (
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
