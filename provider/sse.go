package provider

import "bytes"

// MaxSSELine bounds what one SSE stream can make the parser hold: a line
// longer than this is dropped, and so is an event whose data lines add up
// to more. Real provider events are a few KB; this only stops a broken or
// hostile upstream from growing the buffer without end.
const MaxSSELine = 8 << 20

// retainCap is the buffer capacity kept between events; a buffer grown past
// it by one large event is released so idle streams stay small.
const retainCap = 64 << 10

// Event is one dispatched server-sent event. Name is the "event:" field
// ("" means the default type, "message"). ID is the last event ID seen on
// the stream, which per the spec carries over to later events.
type Event struct {
	Name, Data, ID string
}

// SSEParser splits a text/event-stream body into events following the
// WHATWG EventSource rules. The zero value is ready to use; it is not safe
// for concurrent use.
type SSEParser struct {
	line      []byte // a line begun in an earlier chunk
	data      []byte // data lines of the event being built, each followed by '\n'
	name      []byte // event type buffer
	id        string // last event ID buffer
	skipLF    bool   // the last chunk ended in '\r': a '\n' opening the next belongs to it
	discard   bool   // the line being read is over the limit: skip to its end
	oversized bool   // the event being built is over the limit: drop it
	started   bool   // a line has been read, so a byte order mark can no longer appear
	dropped   bool   // a line or event over the limit was dropped since FeedRaw last reported
	limit     int    // 0 means MaxSSELine; tests lower it
	names     [4]string
	nameNext  int
}

// rawEmit receives an event whose name and data alias the parser's buffers;
// they are only valid during the call.
type rawEmit func(name, data []byte, id string)

// Feed consumes the next chunk and calls emit for every complete event. It
// does not retain chunk after returning.
func (p *SSEParser) Feed(chunk []byte, emit func(Event)) {
	p.feed(chunk, func(name, data []byte, id string) {
		emit(Event{Name: p.nameString(name), Data: string(data), ID: id})
	})
}

// Close dispatches a final event that was not terminated by a blank line
// (if it has data), then resets the parser for reuse. A last line without a
// line ending counts as a line. (Browsers drop such an event; a proxy that
// accounts usage would rather see it.)
func (p *SSEParser) Close(emit func(Event)) {
	p.close(func(name, data []byte, id string) {
		emit(Event{Name: p.nameString(name), Data: string(data), ID: id})
	})
}

// FeedRaw is Feed without allocating: name and data alias the parser's
// buffers and are valid only during emit. It returns false when a line or
// event over the limit was dropped while reading chunk, for callers (the
// stream translators) that must fail a stream rather than skip an event.
func (p *SSEParser) FeedRaw(chunk []byte, emit func(name, data []byte, id string)) (complete bool) {
	p.feed(chunk, emit)
	complete = !p.dropped
	p.dropped = false
	return complete
}

// CloseRaw is Close without allocating, with FeedRaw's emit and result.
func (p *SSEParser) CloseRaw(emit func(name, data []byte, id string)) (complete bool) {
	return p.close(emit)
}

func (p *SSEParser) feed(chunk []byte, emit rawEmit) {
	if p.skipLF && len(chunk) > 0 {
		p.skipLF = false
		if chunk[0] == '\n' {
			chunk = chunk[1:]
		}
	}
	// lf is the next '\n' at or after off, found once and reused until
	// passed: searching again for every '\r'-ended line would make a long
	// chunk of them quadratic.
	lf := bytes.IndexByte(chunk, '\n')
	for off := 0; off < len(chunk); {
		if lf >= 0 && lf < off {
			if lf = bytes.IndexByte(chunk[off:], '\n'); lf >= 0 {
				lf += off
			}
		}
		end, next := lineEnd(chunk, off, lf)
		if end < 0 {
			p.appendPartial(chunk[off:])
			return
		}
		if end+1 == len(chunk) && chunk[end] == '\r' {
			// A lone '\r' ends the chunk: a '\n' opening the next chunk
			// would complete this "\r\n", not end an empty line.
			p.skipLF = true
		}
		p.endLine(chunk[off:end], emit)
		off = next
	}
}

func (p *SSEParser) close(emit rawEmit) (complete bool) {
	if len(p.line) > 0 && !p.discard {
		p.processLine(p.line, emit)
	}
	p.dispatch(emit)
	complete = !p.dropped
	*p = SSEParser{limit: p.limit, data: reuse(p.data), name: reuse(p.name), line: reuse(p.line)}
	p.release()
	return complete
}

// lineEnd finds the first line terminator (\r\n, \n or \r) in b at or
// after off, given lf, the index of the first '\n' there (or -1). end is
// where the line stops and next where the following line starts; end is -1
// when there is no terminator. IndexByte beats a byte loop: it is vectorized.
func lineEnd(b []byte, off, lf int) (end, next int) {
	scope := b
	if lf >= 0 {
		scope = b[:lf]
	}
	if cr := bytes.IndexByte(scope[off:], '\r'); cr >= 0 {
		cr += off
		if cr+1 < len(b) && b[cr+1] == '\n' {
			return cr, cr + 2
		}
		return cr, cr + 1
	}
	if lf >= 0 {
		return lf, lf + 1
	}
	return -1, -1
}

func (p *SSEParser) max() int {
	if p.limit > 0 {
		return p.limit
	}
	return MaxSSELine
}

// appendPartial keeps the unterminated end of a chunk for the next one.
func (p *SSEParser) appendPartial(b []byte) {
	if p.discard {
		return
	}
	if len(p.line)+len(b) > p.max() {
		p.discard, p.dropped = true, true
		p.line = p.line[:0]
		p.release()
		return
	}
	p.line = appendBounded(p.line, b, p.max())
}

// endLine handles a line whose terminator has just been found; tail is the
// part of it in the current chunk. The length check is on the whole line,
// so a line is dropped or kept the same however the stream was chunked.
func (p *SSEParser) endLine(tail []byte, emit rawEmit) {
	switch {
	case p.discard:
		p.discard = false
		p.started = true
	case len(p.line) == 0:
		if len(tail) > p.max() {
			p.started, p.dropped = true, true
			return
		}
		p.processLine(tail, emit)
	default:
		if len(p.line)+len(tail) <= p.max() {
			p.line = appendBounded(p.line, tail, p.max())
			p.processLine(p.line, emit)
		} else {
			p.started, p.dropped = true, true
		}
		p.line = p.line[:0]
		p.release()
	}
}

var bom = []byte("\xEF\xBB\xBF")

// processLine interprets one complete line (without its terminator).
func (p *SSEParser) processLine(line []byte, emit rawEmit) {
	if !p.started {
		p.started = true
		line = bytes.TrimPrefix(line, bom)
	}
	if len(line) == 0 {
		p.dispatch(emit)
		return
	}
	if line[0] == ':' {
		return // comment, often a keep-alive
	}
	field, value := line, []byte(nil)
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		field, value = line[:i], line[i+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	switch string(field) {
	case "data":
		if p.oversized {
			return
		}
		if len(p.data)+len(value)+1 > p.max() {
			p.oversized, p.dropped = true, true
			p.data = p.data[:0]
			p.release()
			return
		}
		p.data = appendBounded(p.data, value, p.max())
		p.data = append(p.data, '\n') // room was made: the check above counts it
	case "event":
		p.name = append(p.name[:0], value...)
	case "id":
		// The spec ignores ids containing NUL. Comparing before converting
		// avoids an allocation when a server repeats the same id.
		if bytes.IndexByte(value, 0) < 0 && string(value) != p.id {
			p.id = string(value)
		}
	}
}

// dispatch ends the event being built at a blank line. An event with no
// data line is not dispatched, as in the spec.
func (p *SSEParser) dispatch(emit rawEmit) {
	if len(p.data) > 0 && !p.oversized {
		emit(p.name, p.data[:len(p.data)-1], p.id)
	}
	p.data = p.data[:0]
	p.name = p.name[:0]
	p.oversized = false
	p.release()
}

// appendBounded appends like append, but never grows dst's capacity past
// limit (append may round up well beyond it). Callers check that
// len(dst)+len(src) fits; one byte of slack is kept for the data buffer's
// trailing '\n'.
func appendBounded(dst, src []byte, limit int) []byte {
	need := len(dst) + len(src) + 1
	if need > cap(dst) {
		grown := make([]byte, len(dst), min(max(2*cap(dst), need, 512), limit))
		copy(grown, dst)
		dst = grown
	}
	return append(dst, src...)
}

// Reset readies p for another stream, keeping its buffers (those within
// retainCap) and the event names it has seen, so a parser reused from one
// stream to the next reads without allocating.
func (p *SSEParser) Reset() {
	*p = SSEParser{line: reuse(p.line), data: reuse(p.data), name: reuse(p.name),
		limit: p.limit, names: p.names, nameNext: p.nameNext}
}

// reuse is b emptied for reuse, or nil when it grew past retainCap.
func reuse(b []byte) []byte {
	if cap(b) > retainCap {
		return nil
	}
	return b[:0]
}

// release drops buffers that one large line or event grew.
func (p *SSEParser) release() {
	if cap(p.line) > retainCap && len(p.line) == 0 {
		p.line = nil
	}
	if cap(p.data) > retainCap && len(p.data) == 0 {
		p.data = nil
	}
	if cap(p.name) > retainCap && len(p.name) == 0 {
		p.name = nil
	}
}

// maxCachedName bounds the event names nameString keeps: real ones are a
// few bytes; a broken upstream's can be a whole line.
const maxCachedName = 64

// nameString converts an event name, reusing a recent string: providers
// send a handful of names over and over.
func (p *SSEParser) nameString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	for _, s := range p.names {
		if s == string(b) {
			return s
		}
	}
	s := string(b)
	if len(s) > maxCachedName {
		return s // a pooled parser must not keep an oversized name alive
	}
	p.names[p.nameNext%len(p.names)] = s
	p.nameNext++
	return s
}
