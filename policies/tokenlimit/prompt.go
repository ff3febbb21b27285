package tokenlimit

import (
	"slices"

	"github.com/tidwall/gjson"

	"github.com/tollgate-dev/tollgate/provider/tokens"
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
// counted and never changed. An image, audio or file part counts
// tokens.PerMediaPart whatever its size (its bytes are base64 or a URL, not
// words), and is never changed either.
type prompt struct {
	body  string
	texts []text
	fixed []string // counted, never cut
	// overhead is the tokens of the chat format itself (tokens.PerMessage
	// a message, tokens.PerName a name, tokens.ReplyPriming once) and of
	// the media parts (tokens.PerMediaPart each).
	overhead int

	// msgs is the list's layout, which only render needs: kept when
	// parsePrompt is asked for it and the list has at most MaxTexts
	// elements (a larger one is never rewritten, and keeping it would
	// cost an allocation for each).
	msgs       []message
	nmsgs      int          // the list's elements, kept or not
	list       gjson.Result // the messages (or input items) array
	listRanged bool         // list's bytes were located in body
	layout     bool         // msgs is kept
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

// addPart counts a content part that is not cut: a media part as
// tokens.PerMediaPart, an Anthropic text document as its text, anything
// else (tool_use, an unknown type) as sent.
func (p *prompt) addPart(part gjson.Result, typ string) {
	switch typ {
	case "image_url", "input_image", "image", "input_audio", "audio", "file", "input_file":
		p.overhead += tokensPerMedia
	case "document": // Anthropic: a PDF, an image, or plain text
		var src [1]gjson.Result
		if fields(part, src[:], "source"); src[0].Get("type").String() == "text" {
			p.addFixed(src[0].Get("data"))
		} else {
			p.overhead += tokensPerMedia
		}
	default:
		p.addFixed(part)
	}
}

// readPart reads a content part's type and, for a text part (OpenAI's
// text and input_text / output_text parts, Anthropic's text blocks), its
// text; text does not exist for any other part.
func readPart(part gjson.Result) (typ string, text gjson.Result) {
	var f [2]gjson.Result
	fields(part, f[:], "type", "text")
	switch typ = f[0].String(); typ {
	case "text", "input_text", "output_text":
		if f[1].Type == gjson.String {
			return typ, f[1]
		}
	}
	return typ, gjson.Result{}
}

// fields reads an object's members in one pass and sets out[i] to the
// first named names[i] (the one gjson.Get finds). A Get scans the object
// again on each call, past every large string in it: a Get per name on a
// message of several megabytes would read it as many times. A value that
// is not an object has no fields. out is the caller's, so that a prompt of
// many small messages does not allocate for each.
func fields(obj gjson.Result, out []gjson.Result, names ...string) {
	clear(out)
	if !obj.IsObject() {
		return
	}
	left := len(names)
	obj.ForEach(func(k, v gjson.Result) bool {
		for i, n := range names {
			if k.Str == n && !out[i].Exists() {
				out[i] = v
				left--
			}
		}
		return left > 0
	})
}

// Top-level members read (topFields), by their index.
const (
	topModel = iota
	topSystem
	topInstructions
	topMessages
	topInput
	topTools
	topFunctions
	topOutputLimits // the first of outputLimits
)

// outputLimits are where a body reserves output tokens, in Helicone's
// order (reservedOutput); the last three are objects that hold them.
var outputLimits = []string{"max_completion_tokens", "max_tokens", "max_output_tokens", "maxOutputTokens",
	"response", "generation_config", "generationConfig"}

var topFields = append([]string{"model", "system", "instructions", "messages", "input", "tools", "functions"}, outputLimits...)

// parseTop reads body's top-level members once; ok is false when body is
// not a JSON object.
func parseTop(body string) (top []gjson.Result, ok bool) {
	if !gjson.Valid(body) {
		return nil, false
	}
	root := gjson.Parse(body)
	if !root.IsObject() {
		return nil, false
	}
	// Parse leaves out the leading spaces: the members' Index then counts
	// from body's first byte, as prompt.at needs.
	root.Index = len(body) - len(root.Raw)
	top = make([]gjson.Result, len(topFields))
	fields(root, top, topFields...)
	return top, true
}

// parsePrompt reads body, whose top-level members parseTop read, and its
// layout for render when layout is true; ok is false when it holds no
// prompt.
func parsePrompt(body string, top []gjson.Result, layout bool) (*prompt, bool) {
	p := &prompt{body: body}
	sys := top[topSystem] // Anthropic
	if sys.IsArray() {
		sys.ForEach(func(_, b gjson.Result) bool {
			if typ, text := readPart(b); text.Exists() {
				p.addText(text, -1, -1)
			} else {
				p.addPart(b, typ)
			}
			return true
		})
	} else {
		p.addText(sys, -1, -1)
	}
	p.addText(top[topInstructions], -1, -1) // Responses
	list := top[topMessages]
	if !list.Exists() {
		if in := top[topInput]; in.IsArray() {
			list = in
		} else {
			p.addText(in, -1, -1)
		}
	}
	if list.IsArray() {
		// Sized once: growing them message by message copies a long
		// conversation's worth of each many times over.
		n := int(list.Get("#").Int())
		if p.layout = layout && n <= MaxTexts; p.layout {
			p.msgs = make([]message, 0, n)
		}
		p.texts = slices.Grow(p.texts, n)
		p.fixed = slices.Grow(p.fixed, n)
		p.list = list
		_, _, p.listRanged = p.at(list)
		list.ForEach(func(_, m gjson.Result) bool {
			p.addMessage(m)
			return true
		})
		p.overhead += tokensReplyPriming
	}
	p.addFixed(top[topTools])
	p.addFixed(top[topFunctions])
	if len(p.texts) == 0 && p.nmsgs == 0 {
		return nil, false
	}
	return p, true
}

func (p *prompt) addMessage(m gjson.Result) {
	idx := p.nmsgs
	p.nmsgs++
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
		p.keep(msg)
		return
	}
	var f [9]gjson.Result
	fields(m, f[:], "role", "name", "type", "output", "content", "tool_calls", "function_call", "tool_call_id", "call_id")
	switch role := f[0]; role.String() {
	case "user", "assistant", "system", "developer":
		p.addFixed(role)
	default:
		p.addFixed(role)
		msg.plain = false // tool results answer a call: never dropped
	}
	if name := f[1]; name.Exists() {
		p.addFixed(name)
		p.overhead += tokensPerName
	}
	switch t := f[2].String(); t {
	case "", "message":
	case "function_call_output": // Responses: a tool's answer
		msg.plain = false
		p.addText(f[3], idx, -1)
	default: // function_call, reasoning, …: counted whole
		msg.plain = false
		p.addFixed(m)
		p.keep(msg)
		return
	}
	for _, v := range f[5:] { // tool_calls, function_call, tool_call_id, call_id
		if v.Exists() {
			p.addFixed(v)
			msg.plain = false
		}
	}
	content := f[4]
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
			switch typ, text := readPart(part); {
			case text.Exists():
				pr.text = p.addText(text, idx, len(msg.parts))
				if pr.text >= 0 {
					p.texts[pr.text].removable = ok && ps > 0
				}
			case typ == "tool_result": // Anthropic
				msg.plain = false
				p.addToolResult(part, idx)
			default: // images, files, tool_use: never cut
				msg.plain = false
				p.addPart(part, typ)
			}
			if p.layout {
				msg.parts = append(msg.parts, pr)
			}
			return true
		})
	case content.Exists() && content.Type != gjson.Null:
		p.addFixed(content)
	}
	p.keep(msg)
}

func (p *prompt) keep(msg message) {
	if p.layout {
		p.msgs = append(p.msgs, msg)
	}
}

// addToolResult reads an Anthropic tool_result block: its content, a
// string or text blocks, may be cut (never removed); anything else in it
// counts as sent.
func (p *prompt) addToolResult(block gjson.Result, msg int) {
	var f [1]gjson.Result
	fields(block, f[:], "content")
	c := f[0]
	if c.IsArray() {
		c.ForEach(func(_, b gjson.Result) bool {
			if typ, text := readPart(b); text.Exists() {
				p.addText(text, msg, -1)
			} else {
				p.addPart(b, typ)
			}
			return true
		})
		return
	}
	p.addText(c, msg, -1)
}

// The chat overhead and the media part (provider/tokens).
const (
	tokensPerMessage   = tokens.PerMessage
	tokensPerName      = tokens.PerName
	tokensReplyPriming = tokens.ReplyPriming
	tokensPerMedia     = tokens.PerMediaPart
)
