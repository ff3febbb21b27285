package processor

import (
	"unsafe"

	"github.com/tollgate-dev/tollgate/record"
)

// Copies the processor does not make. Every call moves a few kilobytes of
// body and header bytes from Envoy's messages into its record and its
// replies; copying them again on the way was most of what a call
// allocated. Both views below rest on one rule: the bytes they share are
// never written afterwards.

// readOnlyBytes is s's bytes without a copy, for a reply field that is
// only marshalled (a header value set in a mutation). Writing to the
// result is forbidden.
func readOnlyBytes(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// messageString is b as a string without a copy, for bytes of a message
// Envoy sent: gRPC unmarshals every message into memory of its own (bytes
// fields are copied out of the receive buffer, see codec.go), the
// processor never writes into a received message, so those bytes are as
// immutable as a string's. The string keeps the message's field alive, no
// more than a copy would.
func messageString(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// loggedString is a body as the record keeps it (record.CapBody) without
// the copy: body is a received message's bytes or a body the processor
// built for this call (a rendered prompt, a rewritten request), neither
// written to again. A body over max is copied as before: its first max
// bytes must not hold all of it in memory while the record waits in the
// sink.
func loggedString(body []byte, max int) string {
	if len(body) > max {
		return record.CapBody(body, max)
	}
	return messageString(body)
}
