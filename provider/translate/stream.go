package translate

import (
	"strconv"

	"github.com/tidwall/gjson"
)

// StreamTranslator rewrites a streamed answer event by event. Write takes the
// next chunk of the upstream body as it arrives, split anywhere, and returns
// the bytes to send to the client now (possibly none); the returned slice is
// reused by the next call. Close ends the stream and returns what is still
// owed. An error means the upstream stream is broken or not translatable; the
// caller ends the client's stream.
type StreamTranslator interface {
	Write(chunk []byte) ([]byte, error)
	Close() ([]byte, error)
}

// appendJSONString appends s as a JSON string literal. Only for strings this
// package makes (never holds characters needing more than the basic escapes).
func appendJSONString(dst []byte, s string) []byte {
	return strconv.AppendQuote(dst, s)
}

// strLit returns the JSON literal of r when it is a string, else "" (and
// false). Literals are copied as is so deltas need no re-escaping.
func strLit(r gjson.Result) (string, bool) {
	if r.Type != gjson.String {
		return "", false
	}
	return r.Raw, true
}

func appendInt(dst []byte, n int64) []byte { return strconv.AppendInt(dst, n, 10) }
