package prompt

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode"

	"github.com/tidwall/gjson"
)

// Helicone's legacy prompts: an application names its prompt with
// Helicone-Prompt-Id and marks the variable parts of the messages it sends
// itself, <helicone-prompt-input key="name">value</helicone-prompt-input>.
// Helicone sends the provider the text without the markers, logs the
// values as the call's prompt inputs and keeps, as the prompt's template,
// the body with each marker closed over its key:
// <helicone-prompt-input key="name" />.

const (
	markerOpen  = `<helicone-prompt-input key="`
	markerClose = `</helicone-prompt-input>`
	// markerName is what a marker always spells out, even in a body whose
	// encoder escaped '<' (Go's encoding/json writes \u003c).
	markerName = "helicone-prompt-input"
)

// Marked is a request body read for markers.
type Marked struct {
	// Body is what the provider gets: each marker replaced by its text.
	Body []byte
	// Template is the body with each marker replaced by the
	// self-closing marker of its key.
	Template []byte
	// Inputs maps each key to its text, trimmed of surrounding space; a
	// key marked twice keeps the last text. Nil when the body has none.
	Inputs map[string]string
}

// ExtractMarkers finds the markers in the string values of a JSON body
// (never in object keys). A body without any comes back as it is, with no
// copy; one that is not valid JSON is an error (and is not changed).
// Text between markers is kept byte for byte; a marker missing its
// closing tag, or with a malformed opening, is left alone, as Helicone's
// pattern leaves it.
func ExtractMarkers(body []byte) (Marked, error) {
	if !bytes.Contains(body, []byte(markerName)) {
		return Marked{Body: body, Template: body}, nil
	}
	if !json.Valid(body) {
		return Marked{}, errNotJSON
	}
	inputs := map[string]string{}
	stripped, err := rewriteStrings(body, `<\`, func(out []byte, s string) ([]byte, bool) {
		text, _, changed := replaceMarkers(s, inputs)
		if !changed {
			return out, false
		}
		return appendJSONString(out, text), true
	})
	if err != nil {
		return Marked{}, err
	}
	if len(inputs) == 0 {
		return Marked{Body: body, Template: body}, nil
	}
	tpl, _ := rewriteStrings(body, `<\`, func(out []byte, s string) ([]byte, bool) {
		_, t, changed := replaceMarkers(s, nil)
		if !changed {
			return out, false
		}
		return appendJSONString(out, t), true
	})
	return Marked{Body: stripped, Template: tpl, Inputs: inputs}, nil
}

// replaceMarkers rewrites the markers of s twice over: text keeps each
// marker's content, template its self-closing form. Inputs, when not nil,
// collects the values.
func replaceMarkers(s string, inputs map[string]string) (text, template string, changed bool) {
	text, template, changed, _ = scanMarkers(s, inputs)
	return text, template, changed
}

// scanMarkers is replaceMarkers, also answering how many bytes its
// searches read (for the test that keeps it linear).
//
// It reads s in one pass: every search starts past where the one before
// it stopped. Openings are searched from the end of the last one; a
// closing tag is searched only past the last closing tag found (the one
// found is the answer for every opening before it), and once none is left
// no opening after that can complete. A body of openings without closing
// tags was quadratic otherwise: each opening read the rest of the string.
func scanMarkers(s string, inputs map[string]string) (text, template string, changed bool, scanned int) {
	if !strings.Contains(s, markerOpen) {
		return s, s, false, len(s)
	}
	var t, p strings.Builder
	opens, closes := newForwardIndex(s, markerOpen), newForwardIndex(s, markerClose)
	done, from := 0, 0 // s[:done] is written; openings are searched from from
	for {
		open := opens.from(from)
		if open < 0 {
			break
		}
		key, value, end := markerAt(s, open, &closes)
		if end == 0 {
			if closes.none {
				break // no closing tag after this opening, so none after any later one
			}
			from = open + 1
			continue
		}
		changed = true
		t.WriteString(s[done:open])
		t.WriteString(value)
		p.WriteString(s[done:open])
		p.WriteString(markerOpen + key + `" />`)
		if inputs != nil {
			inputs[key] = strings.TrimFunc(value, isJSSpace)
		}
		done, from = end, end
	}
	t.WriteString(s[done:])
	p.WriteString(s[done:])
	return t.String(), p.String(), changed, opens.scanned + closes.scanned
}

// markerAt parses a whole marker at s[open:]: <helicone-prompt-input
// key="key" >value</helicone-prompt-input> (spaces only before the '>',
// the value up to the first closing tag). end is where it ends in s, 0
// when there is none at open.
func markerAt(s string, open int, closes *forwardIndex) (key, value string, end int) {
	i := open + len(markerOpen)
	q := strings.IndexByte(s[i:], '"')
	if q < 0 {
		return "", "", 0
	}
	key = s[i : i+q]
	i += q + 1
	for i < len(s) && s[i] == ' ' {
		i++
	}
	if i >= len(s) || s[i] != '>' {
		return "", "", 0
	}
	i++
	c := closes.from(i)
	if c < 0 {
		return "", "", 0
	}
	return key, s[i:c], c + len(markerClose)
}

// selfClosingMarkerAt parses <helicone-prompt-input key="name" /> (any
// space before the "/>", a name of at least one character) at the start
// of s, the form templates keep; n is 0 when s does not start with one.
func selfClosingMarkerAt(s string) (name string, n int) {
	if !strings.HasPrefix(s, markerOpen) {
		return "", 0
	}
	i := len(markerOpen)
	q := strings.IndexByte(s[i:], '"')
	if q < 1 {
		return "", 0
	}
	name = s[i : i+q]
	i += q + 1
	for i < len(s) && strings.IndexByte(" \t\n\r\f\v", s[i]) >= 0 {
		i++
	}
	if !strings.HasPrefix(s[i:], "/>") {
		return "", 0
	}
	return name, i + 2
}

// isJSSpace is JavaScript's idea of white space (String.prototype.trim),
// which Helicone trims input values with.
func isJSSpace(r rune) bool { return unicode.IsSpace(r) || r == '\ufeff' }

// TemplateOf is the part of a request body a prompt version keeps: its
// model, messages and (Anthropic) system prompt. ok is false when the
// body has no messages array, or they do not make a valid template.
func TemplateOf(body []byte) (tpl Template, ok bool) {
	msgs := gjson.GetBytes(body, "messages")
	if !msgs.IsArray() {
		return Template{}, false
	}
	tpl.Messages = []byte(msgs.Raw)
	if m := gjson.GetBytes(body, "model"); m.Type == gjson.String {
		tpl.Model = m.Str
	}
	if s := gjson.GetBytes(body, "system"); s.Exists() {
		tpl.System = []byte(s.Raw)
	}
	tpl, err := NormalizeTemplate(tpl)
	return tpl, err == nil
}
