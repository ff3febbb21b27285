package provider

import (
	"bytes"

	"github.com/tidwall/gjson"
)

// maxHeldEvent bounds the start of an event a UsageEventFilter keeps back
// while it cannot yet tell whether that event is the usage event. OpenAI's
// usage event is a few hundred bytes; a longer event is passed on.
const maxHeldEvent = 64 << 10

// UsageEventFilter takes out of an OpenAI chat/completions stream the event
// that stream_options.include_usage adds: the one whose "choices" is an
// empty array and whose "usage" is an object. Tollgate asks every stream for
// its usage, to account it exactly; a client that did not ask must not see
// that event, since parsers that read choices[0] of every chunk fail on it.
// The accumulator still reads the whole stream: the filter only changes
// what the client receives.
//
// The body comes in chunks, and an event may straddle two of them. The start
// of an event that might be the usage event is kept back until the event is
// complete (the client could not use half an event anyway); an event whose
// start already shows non-empty choices, or data that is not an object, is
// passed on as it comes. A chunk with nothing to remove or keep back is
// returned as it is, without allocating.
//
// The zero value is ready to use; it is not safe for concurrent use.
type UsageEventFilter struct {
	held    []byte // start of the current event, kept back
	passed  bool   // the current event's start went to the client: it stays
	midLine bool   // the last chunk ended inside a line
	skipLF  bool   // the last chunk ended in '\r': a '\n' opening the next belongs to it
	dropLF  bool   // ...and that '\r' ended a removed event, so the '\n' goes too
	cuts    []span // removed events of the chunk being filtered, reused
	cutBuf  [2]span
	removed int
}

type span struct{ from, to int }

// Removed counts the events taken out so far.
func (f *UsageEventFilter) Removed() int { return f.removed }

// Held reports how many bytes are kept back, waiting for the rest of their
// event. A response that ends with bytes held and without a last chunk
// marked end of stream (it had trailers) loses them; OpenAI ends every event
// with a blank line, so nothing is held at the end of its streams.
func (f *UsageEventFilter) Held() int { return len(f.held) }

// Filter takes the next body chunk and returns what to send to the client
// in its place. changed is false when out is chunk itself. final marks the
// last chunk: nothing is kept back, and an unterminated usage event at the
// very end is removed too. out may alias chunk; chunk is not retained.
func (f *UsageEventFilter) Filter(chunk []byte, final bool) (out []byte, changed bool) {
	buf := chunk
	if len(f.held) > 0 {
		buf = make([]byte, 0, len(f.held)+len(chunk))
		buf = append(append(buf, f.held...), chunk...)
		f.held = f.held[:0]
		changed = true
	}
	if f.cuts == nil {
		f.cuts = f.cutBuf[:0]
	}
	f.cuts = f.cuts[:0]
	pos, evStart := 0, 0
	if f.passed {
		evStart = -1
	}
	if f.skipLF && len(buf) > 0 {
		f.skipLF = false
		if buf[0] == '\n' {
			pos = 1
			if f.dropLF {
				f.cuts = append(f.cuts, span{0, 1})
			}
			if evStart == 0 {
				evStart = 1
			}
		}
		f.dropLF = false
	}

	lf := bytes.IndexByte(buf[pos:], '\n')
	if lf >= 0 {
		lf += pos
	}
	for pos < len(buf) {
		if lf >= 0 && lf < pos {
			if lf = bytes.IndexByte(buf[pos:], '\n'); lf >= 0 {
				lf += pos
			}
		}
		end, next := lineEnd(buf, pos, lf)
		if end < 0 {
			break
		}
		blank := end == pos && !f.midLine
		f.midLine = false
		if next == len(buf) && buf[end] == '\r' {
			f.skipLF = true
		}
		if blank {
			if evStart >= 0 && evStart < pos && isUsageEvent(buf[evStart:pos]) {
				f.cuts = append(f.cuts, span{evStart, next})
				f.removed++
				f.dropLF = f.skipLF
			}
			evStart = next
			f.passed = false
		}
		pos = next
	}
	f.midLine = pos < len(buf)

	keepTo := len(buf) // bytes from here on are held back
	switch {
	case evStart < 0 || evStart >= len(buf):
	case final:
		if isUsageEvent(buf[evStart:]) {
			f.cuts = append(f.cuts, span{evStart, len(buf)})
			f.removed++
		}
	case len(buf)-evStart <= maxHeldEvent && mightBeUsageEvent(buf[evStart:]):
		f.held = append(f.held, buf[evStart:]...)
		keepTo = evStart
		f.midLine, f.skipLF, f.dropLF = false, false, false // the held bytes are read again
	default:
		f.passed = true
	}
	if len(f.cuts) > 0 || keepTo < len(buf) {
		out, changed = f.assemble(buf, keepTo), true
	} else {
		out = buf
	}
	if final {
		// Ready for another stream (StripUsageEvents, a reused filter).
		*f = UsageEventFilter{held: f.held[:0], removed: f.removed}
	}
	return out, changed
}

// assemble returns buf[:keepTo] without the cut spans, as a subslice when
// what is left is one run of bytes.
func (f *UsageEventFilter) assemble(buf []byte, keepTo int) []byte {
	from, to := 0, keepTo
	cuts := f.cuts
	if len(cuts) > 0 && cuts[0].from == 0 {
		from = cuts[0].to
		cuts = cuts[1:]
	}
	if len(cuts) > 0 && cuts[len(cuts)-1].to >= keepTo {
		to = min(to, cuts[len(cuts)-1].from)
		cuts = cuts[:len(cuts)-1]
	}
	if len(cuts) == 0 {
		if from >= to {
			return buf[:0]
		}
		return buf[from:to]
	}
	out := make([]byte, 0, to-from)
	for _, c := range cuts {
		out = append(out, buf[from:c.from]...)
		from = c.to
	}
	return append(out, buf[from:to]...)
}

// StripUsageEvents is the filter applied to a whole stream at once (a
// cached stream replayed to a client that did not ask for usage).
func StripUsageEvents(body []byte) []byte {
	var f UsageEventFilter
	out, _ := f.Filter(body, true)
	return out
}

// isUsageEvent reads one event (its lines, without the blank line that ends
// it) and reports whether its data is an object with "choices": [] and a
// "usage" object. The byte pattern is checked first, so the events of the
// answer itself are not parsed.
func isUsageEvent(ev []byte) bool {
	return emptyChoices(ev) && isUsageData(eventData(ev))
}

// isUsageData says whether an event's data is the usage chunk.
func isUsageData(data []byte) bool {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' || checkJSON(data) != "" {
		return false
	}
	e := partsOf(gjson.Parse(bytesView(data)))
	if !e.choices.IsArray() || !e.usage.IsObject() {
		return false
	}
	empty := true
	e.choices.ForEach(func(_, _ gjson.Result) bool { empty = false; return false })
	return empty
}

// mightBeUsageEvent looks at the start of an event and says whether it
// could still turn out to be the usage event.
func mightBeUsageEvent(start []byte) bool {
	if v, ok := bytes.CutPrefix(start, []byte("data:")); ok {
		v = bytes.TrimLeft(v, " ")
		if len(v) > 0 && v[0] != '{' && v[0] != '\r' && v[0] != '\n' {
			return false // [DONE], or not JSON: never the usage event
		}
	}
	return !nonEmptyChoices(start)
}

var choicesKey = []byte(`"choices"`)

// choicesArray finds `"choices"` followed by ':' and '[' and returns the
// index just past the '[' for each occurrence until visit says stop.
func choicesArray(b []byte, visit func(rest []byte) bool) {
	for off := 0; ; {
		i := bytes.Index(b[off:], choicesKey)
		if i < 0 {
			return
		}
		j := skipSpace(b, off+i+len(choicesKey))
		if j < len(b) && b[j] == ':' {
			if j = skipSpace(b, j+1); j < len(b) && b[j] == '[' {
				if !visit(b[skipSpace(b, j+1):]) {
					return
				}
			}
		}
		off += i + len(choicesKey)
	}
}

// emptyChoices: some "choices" is written as an empty array.
func emptyChoices(b []byte) bool {
	found := false
	choicesArray(b, func(rest []byte) bool {
		found = len(rest) > 0 && rest[0] == ']'
		return !found
	})
	return found
}

// nonEmptyChoices: some "choices" array visibly has an element.
func nonEmptyChoices(b []byte) bool {
	found := false
	choicesArray(b, func(rest []byte) bool {
		found = len(rest) > 0 && rest[0] != ']'
		return !found
	})
	return found
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// eventData returns the data of one event's lines, joined by '\n' as the
// SSE rules say. The usual single "data:" line is returned as a subslice.
func eventData(ev []byte) []byte {
	var data []byte
	lines := 0
	for len(ev) > 0 {
		end := bytes.IndexAny(ev, "\r\n")
		line := ev
		if end >= 0 {
			line = ev[:end]
			if ev[end] == '\r' && end+1 < len(ev) && ev[end+1] == '\n' {
				end++
			}
			ev = ev[end+1:]
		} else {
			ev = nil
		}
		v, ok := bytes.CutPrefix(line, []byte("data"))
		if !ok || (len(v) > 0 && v[0] != ':') {
			continue
		}
		if len(v) > 0 {
			v = v[1:]
			if len(v) > 0 && v[0] == ' ' {
				v = v[1:]
			}
		}
		if lines == 0 {
			data = v
		} else {
			if lines == 1 {
				data = append([]byte(nil), data...)
			}
			data = append(append(data, '\n'), v...)
		}
		lines++
	}
	return data
}
