package translate

import (
	"errors"

	"github.com/tollgate-dev/tollgate/provider"
)

// MaxEventSize bounds one SSE line or event a stream translator will hold:
// provider's parser limit, since translators read streams with it.
const MaxEventSize = provider.MaxSSELine

var errEventTooLarge = errors.New("translate: SSE event larger than MaxEventSize")

// sseEvents reads an upstream stream with provider's SSE parser (the one
// the processor accounts streams with) and hands each event to a
// translator's handler. Unlike the parser, which skips an oversized event,
// it fails the stream: a translated answer missing an event would be wrong.
type sseEvents struct {
	parser provider.SSEParser
	handle func(name, data []byte) error
	emit   func(name, data []byte, id string) // bound once, so feeding does not allocate
	err    error                              // the handler's first error in this chunk
}

// init binds handle; name and data it gets are valid only during the call.
// After handle fails, the rest of the chunk's events are not handled: the
// caller ends the stream on the error.
func (e *sseEvents) init(handle func(name, data []byte) error) {
	e.handle = handle
	e.emit = func(name, data []byte, _ string) {
		if e.err == nil {
			e.err = e.handle(name, data)
		}
	}
}

// feed handles every event that chunk completes.
func (e *sseEvents) feed(chunk []byte) error {
	e.err = nil
	return e.result(e.parser.FeedRaw(chunk, e.emit))
}

// flush handles an event left without its closing blank line when the
// stream ends.
func (e *sseEvents) flush() error {
	e.err = nil
	return e.result(e.parser.CloseRaw(e.emit))
}

func (e *sseEvents) result(complete bool) error {
	if e.err != nil {
		return e.err
	}
	if !complete {
		return errEventTooLarge
	}
	return nil
}
