package screen

import (
	"strings"

	"github.com/tidwall/gjson"
)

// input is what the checks look at: the last message of a chat completion
// when it is the user's, as Helicone checks it (worker/src/lib/
// HeliconeProxyRequest/ProxyForwarder.ts: the body's messages.pop(), only
// when its role is "user" and its content is not empty).
type input struct {
	// moderation is the moderation request's "input": the content string
	// as sent, or its text and image parts in the moderation API's
	// multimodal form; nil when there is nothing to moderate.
	moderation any
	// text is the text the classifier reads: the content string, or the
	// text parts joined by newlines; "" when there is none.
	text string
}

type textPart struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type imagePart struct {
	Type     string   `json:"type"`
	ImageURL imageURL `json:"image_url"`
}

type imageURL struct {
	URL string `json:"url"`
}

// lastUserInput reads body's last message. ok is false when the body has no
// messages, the last one is not the user's, or its content is empty: the
// call then goes on unchecked, as at Helicone.
//
// Helicone hands an array content to the moderation endpoint as it is,
// which refuses the part types it does not know (audio, files) and so
// fails the call; here only the text and image parts go, the two kinds
// OpenAI's moderation models read.
func lastUserInput(body []byte) (in input, ok bool) {
	msgs := gjson.GetBytes(body, "messages")
	if !msgs.IsArray() {
		return in, false
	}
	var last gjson.Result
	msgs.ForEach(func(_, m gjson.Result) bool {
		last = m
		return true
	})
	if role := last.Get("role"); role.Type != gjson.String || role.Str != "user" {
		return in, false
	}
	content := last.Get("content")
	switch {
	case content.Type == gjson.String:
		if content.Str == "" {
			return in, false
		}
		return input{moderation: content.Str, text: content.Str}, true
	case content.IsArray():
		var parts []any
		var texts []string
		content.ForEach(func(_, p gjson.Result) bool {
			switch p.Get("type").String() {
			case "text":
				if t := p.Get("text"); t.Type == gjson.String && t.Str != "" {
					parts = append(parts, textPart{Type: "text", Text: t.Str})
					texts = append(texts, t.Str)
				}
			case "image_url":
				url := p.Get("image_url.url")
				if !url.Exists() {
					url = p.Get("image_url") // an older form: the URL itself
				}
				if url.Type == gjson.String && url.Str != "" {
					parts = append(parts, imagePart{Type: "image_url", ImageURL: imageURL{URL: url.Str}})
				}
			}
			return true
		})
		if len(parts) == 0 {
			return in, false
		}
		return input{moderation: parts, text: strings.Join(texts, "\n")}, true
	}
	return in, false
}
