package tokenlimit

// Rewriting the body: render, its edits and the JSON string quoting.

import (
	"slices"
	"strings"
	"unicode/utf8"
)

// edit replaces body[start:end].
type edit struct {
	start, end int
	repl       string
}

// render is the body with each text set to out[i] (unchanged where out[i]
// is the text as read), the plain messages whose texts all went removed
// when drop is true, and extra edits (the model) applied. Its work is one
// pass over the texts and one over the messages, a few allocations in all
// and an encoding for each text that changed only: a prompt of many small
// messages must not cost allocations for each.
func (p *prompt) render(out []string, drop bool, extra ...edit) []byte {
	changed := make([]bool, len(p.texts))
	nChanged := 0
	// Each message's texts are byMsg[first[mi]:first[mi+1]]: no loop over
	// all texts per message, and no slice per message.
	first := make([]int, len(p.msgs)+1)
	for i, t := range p.texts {
		if changed[i] = out[i] != t.s; changed[i] {
			nChanged++
		}
		if t.msg >= 0 {
			first[t.msg+1]++
		}
	}
	for mi := range p.msgs {
		first[mi+1] += first[mi]
	}
	byMsg := make([]int, first[len(p.msgs)])
	fill := slices.Clone(first[:len(p.msgs)])
	for i, t := range p.texts {
		if t.msg >= 0 {
			byMsg[fill[t.msg]] = i
			fill[t.msg]++
		}
	}
	textsOf := func(mi int) []int { return byMsg[first[mi]:first[mi+1]] }

	dropped := make([]bool, len(p.msgs))
	anyDropped := false
	emptyPart := func(ti int) bool { return ti >= 0 && drop && p.texts[ti].removable && out[ti] == "" }
	if drop && p.listRanged {
		kept := 0
		for mi, m := range p.msgs {
			ts := textsOf(mi)
			if !m.plain || m.start == 0 || len(ts) == 0 {
				kept++
				continue
			}
			all := true
			for _, ti := range ts {
				all = all && out[ti] == ""
			}
			dropped[mi], anyDropped = all, anyDropped || all
			if !all {
				kept++
			}
		}
		// A prompt keeps at least its last message.
		if kept == 0 && len(dropped) > 0 {
			dropped[len(dropped)-1] = false
			anyDropped = len(dropped) > 1
		}
	}

	// The messages' edits, in message order: message mi's are
	// edits[msgEdits[mi]:msgEdits[mi+1]].
	edits := make([]edit, 0, nChanged+len(extra)+1)
	msgEdits := make([]int, len(p.msgs)+1)
	for mi, m := range p.msgs {
		msgEdits[mi] = len(edits)
		if dropped[mi] {
			continue
		}
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
			edits = append(edits, edit{m.contentArr[0], m.contentArr[1], "[" + strings.Join(kept, ",") + "]"})
		}
		for _, ti := range textsOf(mi) {
			t := p.texts[ti]
			if !changed[ti] {
				continue
			}
			if rebuild && m.contentArr[0] > 0 && t.start >= m.contentArr[0] && t.end <= m.contentArr[1] {
				continue // inside the rebuilt array
			}
			edits = append(edits, edit{t.start, t.end, jsonString(out[ti])})
		}
	}
	msgEdits[len(p.msgs)] = len(edits)
	if anyDropped {
		start, end, _ := p.at(p.list)
		var b strings.Builder
		b.Grow(end - start)
		b.WriteByte('[')
		n := 0
		for mi, m := range p.msgs {
			if dropped[mi] {
				continue
			}
			if n++; n > 1 {
				b.WriteByte(',')
			}
			b.WriteString(splice(p.body[m.start:m.end], m.start, edits[msgEdits[mi]:msgEdits[mi+1]]))
		}
		b.WriteByte(']')
		edits = append(edits[:0], edit{start, end, b.String()})
	}
	for ti, t := range p.texts {
		if t.msg < 0 && changed[ti] {
			edits = append(edits, edit{t.start, t.end, jsonString(out[ti])})
		}
	}
	edits = append(edits, extra...)
	return spliceBody(p.body, edits)
}

// spliceBody is splice of the whole body, made once in the []byte the
// result needs: a body of megabytes is not copied a second time.
func spliceBody(body string, edits []edit) []byte {
	slices.SortFunc(edits, func(a, b edit) int { return a.start - b.start })
	size := len(body)
	for _, e := range edits {
		size += len(e.repl) - (e.end - e.start)
	}
	out := make([]byte, 0, size)
	pos := 0
	for _, e := range edits {
		out = append(out, body[pos:e.start]...)
		out = append(out, e.repl...)
		pos = e.end
	}
	return append(out, body[pos:]...)
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
