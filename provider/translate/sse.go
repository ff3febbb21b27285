package translate

import (
	"bytes"
	"errors"
)

// MaxEventSize bounds one SSE event a stream translator will hold; real
// provider events are a few KB, and a broken upstream must not grow the
// buffer without end.
const MaxEventSize = 8 << 20

var errEventTooLarge = errors.New("translate: SSE event larger than MaxEventSize")

// sseReader splits an event stream into (event name, data) pairs, across
// chunk boundaries. Lines end in "\n" or "\r\n" (what OpenAI and Anthropic
// send); multi-line data is joined with "\n"; comments and unknown fields are
// skipped. Its buffers are reused for the life of the stream.
type sseReader struct {
	buf  []byte // bytes after the last complete line
	name []byte
	data []byte
	seen bool // the event being built has a data line
}

// feed calls emit for every event completed by chunk. name and data alias
// the reader's buffers and are valid only during the call.
func (r *sseReader) feed(chunk []byte, emit func(name, data []byte) error) error {
	r.buf = append(r.buf, chunk...)
	off := 0
	for {
		nl := bytes.IndexByte(r.buf[off:], '\n')
		if nl < 0 {
			break
		}
		line := r.buf[off : off+nl]
		off += nl + 1
		if err := r.line(bytes.TrimSuffix(line, []byte("\r")), emit); err != nil {
			r.buf = r.buf[:copy(r.buf, r.buf[off:])]
			return err
		}
	}
	r.buf = r.buf[:copy(r.buf, r.buf[off:])]
	if len(r.buf)+len(r.data) > MaxEventSize {
		return errEventTooLarge
	}
	return nil
}

// flush dispatches an event left without its closing blank line when the
// stream ends.
func (r *sseReader) flush(emit func(name, data []byte) error) error {
	if len(r.buf) > 0 {
		line := bytes.TrimSuffix(r.buf, []byte("\r"))
		r.buf = r.buf[:0]
		if err := r.line(line, emit); err != nil {
			return err
		}
	}
	return r.line(nil, emit)
}

func (r *sseReader) line(line []byte, emit func(name, data []byte) error) error {
	if len(line) == 0 {
		if !r.seen {
			r.name = r.name[:0]
			return nil
		}
		err := emit(r.name, r.data)
		r.name, r.data, r.seen = r.name[:0], r.data[:0], false
		return err
	}
	field, value, _ := bytes.Cut(line, []byte(":"))
	value = bytes.TrimPrefix(value, []byte(" "))
	switch string(field) {
	case "event":
		r.name = append(r.name[:0], value...)
	case "data":
		if r.seen {
			r.data = append(r.data, '\n')
		}
		r.data = append(r.data, value...)
		r.seen = true
	}
	return nil
}
