package tokenlimit

import (
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// prompt is what of a request body is counted and what may be cut, read
// with gjson so that a rewrite changes those bytes and no others (key
// order, numbers and every field Tollgate does not read stay as sent).
//
// Shapes read: chat completions (messages[].content, a string or parts
// with text), Anthropic messages (system, messages[].content blocks,
// tool_result content) and Responses (instructions, input as a string or
// items). Texts are the prompt's words and may be cut; the rest that
// costs tokens (roles, names, tool calls' arguments, tool definitions) is
// counted and never changed.
type prompt struct {
	body  string
	texts []text
	fixed []string // counted, never cut
	// overhead is the tokens of the chat format itself (tokens.PerMessage
	// a message, tokens.PerName a name, tokens.ReplyPriming once).
	overhead int

	msgs       []message
	list       gjson.Result // the messages (or input items) array
	listRanged bool         // list's bytes were located in body
}

// text is one cuttable string value of the body.
type text struct {
	start, end int // the JSON string's bytes in body, quotes included
	s          string
	msg        int // index in prompt.msgs; -1 for system, instructions or a string input
	part       int // index of its part in the message's content array; -1 for string content
	removable  bool
}

// message is one element of the messages (or input) array.
type message struct {
	start, end int
	plain      bool // only text: may be dropped once all its text is cut
	parts      []partRange
	contentArr [2]int // the content array's bytes; zero when content is not an array
}

type partRange struct {
	start, end int
	text       int // index in prompt.texts; -1 for a part that is not text
}

// at locates r in body: gjson knows where a value it returned sits
// (Index), and the raw bytes there are checked, so a splice can never land
// anywhere else.
func (p *prompt) at(r gjson.Result) (int, int, bool) {
	i := r.Index
	if i <= 0 || i+len(r.Raw) > len(p.body) || p.body[i:i+len(r.Raw)] != r.Raw {
		return 0, 0, false
	}
	return i, i + len(r.Raw), true
}

// addText records a cuttable string; a value that is not a string, or
// whose place is unknown, is counted as fixed.
func (p *prompt) addText(r gjson.Result, msg, part int) int {
	if r.Type != gjson.String {
		if r.Exists() {
			p.fixed = append(p.fixed, r.Raw)
		}
		return -1
	}
	start, end, ok := p.at(r)
	if !ok {
		p.fixed = append(p.fixed, r.String())
		return -1
	}
	p.texts = append(p.texts, text{start: start, end: end, s: r.String(), msg: msg, part: part})
	return len(p.texts) - 1
}

func (p *prompt) addFixed(r gjson.Result) {
	switch {
	case !r.Exists():
	case r.Type == gjson.String:
		p.fixed = append(p.fixed, r.String())
	default:
		p.fixed = append(p.fixed, r.Raw)
	}
}

// textPart says whether a content part is plain text: OpenAI's text and
// input_text / output_text parts, Anthropic's text blocks.
func textPart(part gjson.Result) bool {
	switch part.Get("type").String() {
	case "text", "input_text", "output_text":
		return part.Get("text").Type == gjson.String
	}
	return false
}

// parsePrompt reads body; ok is false when it holds no prompt.
func parsePrompt(body string) (*prompt, bool) {
	if !gjson.Valid(body) {
		return nil, false
	}
	root := gjson.Parse(body)
	if !root.IsObject() {
		return nil, false
	}
	p := &prompt{body: body}
	// Top-level values are read from body itself (not root), so that
	// their Index counts from body's first byte.
	sys := gjson.Get(body, "system") // Anthropic
	if sys.IsArray() {
		sys.ForEach(func(_, b gjson.Result) bool {
			if textPart(b) {
				p.addText(b.Get("text"), -1, -1)
			} else {
				p.addFixed(b)
			}
			return true
		})
	} else {
		p.addText(sys, -1, -1)
	}
	p.addText(gjson.Get(body, "instructions"), -1, -1) // Responses
	list := gjson.Get(body, "messages")
	if !list.Exists() {
		if in := gjson.Get(body, "input"); in.IsArray() {
			list = in
		} else {
			p.addText(in, -1, -1)
		}
	}
	if list.IsArray() {
		p.list = list
		_, _, p.listRanged = p.at(list)
		list.ForEach(func(_, m gjson.Result) bool {
			p.addMessage(m)
			return true
		})
		p.overhead += tokensReplyPriming
	}
	p.addFixed(gjson.Get(body, "tools"))
	p.addFixed(gjson.Get(body, "functions"))
	if len(p.texts) == 0 && len(p.msgs) == 0 {
		return nil, false
	}
	return p, true
}

func (p *prompt) addMessage(m gjson.Result) {
	idx := len(p.msgs)
	msg := message{plain: true}
	start, end, ok := p.at(m)
	if !ok {
		p.listRanged = false // cannot rebuild the list without every element's place
	}
	msg.start, msg.end = start, end
	p.overhead += tokensPerMessage
	if !m.IsObject() {
		p.addFixed(m)
		msg.plain = false
		p.msgs = append(p.msgs, msg)
		return
	}
	switch role := m.Get("role"); role.String() {
	case "user", "assistant", "system", "developer":
		p.addFixed(role)
	default:
		p.addFixed(role)
		msg.plain = false // tool results answer a call: never dropped
	}
	if name := m.Get("name"); name.Exists() {
		p.addFixed(name)
		p.overhead += tokensPerName
	}
	switch t := m.Get("type").String(); t {
	case "", "message":
	case "function_call_output": // Responses: a tool's answer
		msg.plain = false
		p.addText(m.Get("output"), idx, -1)
	default: // function_call, reasoning, …: counted whole
		msg.plain = false
		p.addFixed(m)
		p.msgs = append(p.msgs, msg)
		return
	}
	for _, k := range []string{"tool_calls", "function_call", "tool_call_id", "call_id"} {
		if v := m.Get(k); v.Exists() {
			p.addFixed(v)
			msg.plain = false
		}
	}
	content := m.Get("content")
	switch {
	case content.Type == gjson.String:
		if i := p.addText(content, idx, -1); i >= 0 {
			p.texts[i].removable = false
		}
	case content.IsArray():
		cs, ce, ok := p.at(content)
		if ok {
			msg.contentArr = [2]int{cs, ce}
		}
		content.ForEach(func(_, part gjson.Result) bool {
			ps, pe, _ := p.at(part)
			pr := partRange{start: ps, end: pe, text: -1}
			switch {
			case textPart(part):
				pr.text = p.addText(part.Get("text"), idx, len(msg.parts))
				if pr.text >= 0 {
					p.texts[pr.text].removable = ok && ps > 0
				}
			case part.Get("type").String() == "tool_result": // Anthropic
				msg.plain = false
				p.addToolResult(part, idx)
			default: // images, files, tool_use: counted as sent, never cut
				msg.plain = false
				p.addFixed(part)
			}
			msg.parts = append(msg.parts, pr)
			return true
		})
	case content.Exists() && content.Type != gjson.Null:
		p.addFixed(content)
	}
	p.msgs = append(p.msgs, msg)
}

// addToolResult reads an Anthropic tool_result block: its content, a
// string or text blocks, may be cut (never removed); anything else in it
// counts as sent.
func (p *prompt) addToolResult(block gjson.Result, msg int) {
	c := block.Get("content")
	if c.IsArray() {
		c.ForEach(func(_, b gjson.Result) bool {
			if textPart(b) {
				p.addText(b.Get("text"), msg, -1)
			} else {
				p.addFixed(b)
			}
			return true
		})
		return
	}
	p.addText(c, msg, -1)
}

// Local copies of the chat overhead, so the parser needs no counter.
const (
	tokensPerMessage   = 3
	tokensPerName      = 1
	tokensReplyPriming = 3
)

// edit replaces body[start:end].
type edit struct {
	start, end int
	repl       string
}

// render is the body with each text set to out[i] (unchanged where out[i]
// is the text as read), the plain messages whose texts all went removed
// when drop is true, and extra edits (the model) applied.
func (p *prompt) render(out []string, drop bool, extra ...edit) string {
	var edits []edit
	changed := make([]bool, len(p.texts))
	for i, t := range p.texts {
		changed[i] = out[i] != t.s
	}
	dropped := make([]bool, len(p.msgs))
	emptyPart := func(ti int) bool { return ti >= 0 && drop && p.texts[ti].removable && out[ti] == "" }
	if drop && p.listRanged {
		for mi, m := range p.msgs {
			if !m.plain || m.start == 0 {
				continue
			}
			all := true
			n := 0
			for ti, t := range p.texts {
				if t.msg == mi {
					n++
					all = all && out[ti] == ""
				}
			}
			dropped[mi] = n > 0 && all
		}
		// A prompt keeps at least its last message.
		if !slices.Contains(dropped, false) && len(dropped) > 0 {
			dropped[len(dropped)-1] = false
		}
	}
	msgEdits := make([][]edit, len(p.msgs))
	for mi, m := range p.msgs {
		var es []edit
		rebuild := false
		for _, pr := range m.parts {
			if emptyPart(pr.text) {
				rebuild = true
			}
		}
		if rebuild && m.contentArr[0] > 0 {
			var kept []string
			for _, pr := range m.parts {
				if emptyPart(pr.text) {
					continue
				}
				raw := p.body[pr.start:pr.end]
				if pr.text >= 0 && changed[pr.text] {
					t := p.texts[pr.text]
					raw = splice(raw, pr.start, []edit{{t.start, t.end, jsonString(out[pr.text])}})
				}
				kept = append(kept, raw)
			}
			if len(kept) == 0 { // every part went: the first, emptied, keeps the array valid
				pr := m.parts[0]
				t := p.texts[pr.text]
				kept = append(kept, splice(p.body[pr.start:pr.end], pr.start, []edit{{t.start, t.end, `""`}}))
			}
			es = append(es, edit{m.contentArr[0], m.contentArr[1], "[" + strings.Join(kept, ",") + "]"})
		}
		for ti, t := range p.texts {
			if t.msg != mi || !changed[ti] {
				continue
			}
			if rebuild && m.contentArr[0] > 0 && t.start >= m.contentArr[0] && t.end <= m.contentArr[1] {
				continue // inside the rebuilt array
			}
			es = append(es, edit{t.start, t.end, jsonString(out[ti])})
		}
		msgEdits[mi] = es
	}
	if slices.Contains(dropped, true) {
		start, end, _ := p.at(p.list)
		var kept []string
		for mi, m := range p.msgs {
			if dropped[mi] {
				continue
			}
			kept = append(kept, splice(p.body[m.start:m.end], m.start, msgEdits[mi]))
		}
		edits = append(edits, edit{start, end, "[" + strings.Join(kept, ",") + "]"})
	} else {
		for _, es := range msgEdits {
			edits = append(edits, es...)
		}
	}
	for ti, t := range p.texts {
		if t.msg < 0 && changed[ti] {
			edits = append(edits, edit{t.start, t.end, jsonString(out[ti])})
		}
	}
	edits = append(edits, extra...)
	return splice(p.body, 0, edits)
}

// splice applies edits, given at offsets of the whole body, to raw, which
// starts at base. Edits must not overlap.
func splice(raw string, base int, edits []edit) string {
	if len(edits) == 0 {
		return raw
	}
	slices.SortFunc(edits, func(a, b edit) int { return a.start - b.start })
	var b strings.Builder
	pos := 0
	for _, e := range edits {
		s, t := e.start-base, e.end-base
		b.WriteString(raw[pos:s])
		b.WriteString(e.repl)
		pos = t
	}
	b.WriteString(raw[pos:])
	return b.String()
}

// jsonString quotes s as a JSON string without HTML escaping (a prompt's
// "<" stays "<"); invalid UTF-8 becomes U+FFFD, as encoding/json does.
func jsonString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b.WriteByte('\\')
				b.WriteByte(c)
			case c == '\n':
				b.WriteString(`\n`)
			case c == '\r':
				b.WriteString(`\r`)
			case c == '\t':
				b.WriteString(`\t`)
			case c < 0x20:
				const hex = "0123456789abcdef"
				b.WriteString(`\u00`)
				b.WriteByte(hex[c>>4])
				b.WriteByte(hex[c&0xf])
			default:
				b.WriteByte(c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteString(`\ufffd`)
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	b.WriteByte('"')
	return b.String()
}
