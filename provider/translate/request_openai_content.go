package translate

// OpenAI message content, images and tool calls as Anthropic blocks.

import (
	"encoding/json"
	"strings"
)

// openAIContent turns a message's content (string, parts or null) into
// Anthropic blocks. Empty text is skipped: Anthropic refuses empty text
// blocks. images says whether image parts are allowed here.
func openAIContent(m obj, path string, images bool) ([]anBlock, error) {
	if !m.has("content") {
		return nil, nil
	}
	if m.isString("content") {
		s, _ := m.str("content")
		if s == "" {
			return nil, nil
		}
		return []anBlock{textBlock(s)}, nil
	}
	parts, err := m.array("content")
	if err != nil {
		return nil, err
	}
	blocks := make([]anBlock, 0, len(parts))
	for j, raw := range parts {
		pp := index(path+".content", j)
		p, err := parseObj(raw, pp)
		if err != nil {
			return nil, err
		}
		typ, err := p.str("type")
		if err != nil {
			return nil, err
		}
		switch typ {
		case "text", "refusal":
			if err := p.allow("type", typ); err != nil {
				return nil, err
			}
			s, err := p.str(typ)
			if err != nil {
				return nil, err
			}
			if s != "" {
				blocks = append(blocks, textBlock(s))
			}
		case "image_url":
			if !images {
				return nil, unsupported(pp, "images are allowed in user messages only")
			}
			b, err := openAIImage(p, pp)
			if err != nil {
				return nil, err
			}
			blocks = append(blocks, b)
		default:
			return nil, unsupported(pp+"."+typ, "no Anthropic content block for "+quote(typ))
		}
	}
	return blocks, nil
}

// anthropicImageTypes are the media types Anthropic accepts.
var anthropicImageTypes = []string{"image/jpeg", "image/png", "image/gif", "image/webp"}

func openAIImage(p obj, path string) (anBlock, error) {
	if err := p.allow("type", "image_url"); err != nil {
		return anBlock{}, err
	}
	iu, err := parseObj(p.m["image_url"], path+".image_url")
	if err != nil {
		return anBlock{}, err
	}
	if err := iu.allow("url", "detail"); err != nil {
		return anBlock{}, err
	}
	url, err := iu.str("url")
	if err != nil {
		return anBlock{}, err
	}
	if rest, ok := strings.CutPrefix(url, "data:"); ok {
		meta, data, ok := strings.Cut(rest, ",")
		media, enc, _ := strings.Cut(meta, ";")
		if !ok || enc != "base64" {
			return anBlock{}, unsupported(path+".image_url.url", "a data: URL must be base64")
		}
		if !contains(anthropicImageTypes, media) {
			return anBlock{}, unsupported(path+".image_url.url", "Anthropic accepts jpeg, png, gif and webp, not "+quote(media))
		}
		return anBlock{Type: "image", Source: &anSource{Type: "base64", MediaType: media, Data: data}}, nil
	}
	if strings.HasPrefix(url, "https://") || strings.HasPrefix(url, "http://") {
		return anBlock{Type: "image", Source: &anSource{Type: "url", URL: url}}, nil
	}
	return anBlock{}, unsupported(path+".image_url.url", "want a data: or http(s) URL")
}

func openAIToolCall(raw json.RawMessage, path string) (anBlock, error) {
	c, err := parseObj(raw, path)
	if err != nil {
		return anBlock{}, err
	}
	if err := c.allow("id", "type", "function"); err != nil {
		return anBlock{}, err
	}
	if t, _ := c.str("type"); t != "" && t != "function" {
		return anBlock{}, unsupported(path+".type", "only function tool calls translate")
	}
	var tc oaToolCall
	if err := json.Unmarshal(raw, &tc); err != nil {
		return anBlock{}, invalid(path, err)
	}
	args := strings.TrimSpace(tc.Function.Arguments)
	if args == "" {
		args = "{}"
	}
	var input map[string]json.RawMessage
	if err := json.Unmarshal([]byte(args), &input); err != nil || input == nil {
		return anBlock{}, unsupported(path+".function.arguments", "Anthropic tool input must be a JSON object")
	}
	return anBlock{Type: "tool_use", ID: tc.ID, Name: tc.Function.Name, Input: json.RawMessage(args)}, nil
}
