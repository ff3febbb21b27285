package gate

import (
	"encoding/binary"
	"errors"

	"github.com/tollgate-dev/tollgate/provider"
)

// cacheEntry is one stored response: what the hit replays and what its log
// record needs (DESIGN §4: the reference to the filling request and the
// original token counts, so savings can be computed).
type cacheEntry struct {
	RequestID   string
	Status      int
	ContentType string
	Model       string
	provider.Usage
	LatencyMs     int64
	CreatedUnixMs int64
	// Headers are the provider's response headers a hit replays (see
	// ReplayHeader), lowercase names.
	Headers [][2]string
	Body    []byte
}

// Encoding: the magic "tgc2", then the fields in order — status as a
// uvarint, the three strings length-prefixed, the seven counters as
// varints, the number of headers as a uvarint and each name and value
// length-prefixed — then the body as raw bytes. A hit decodes it in well
// under a microsecond, and a cached SSE stream or JSON answer is stored
// once, not escaped or base64-inflated. A new field means a new magic:
// "tgc1" entries (no headers) still read; any other magic reads as
// unreadable, is served as a miss and overwritten.
const (
	entryMagic   = "tgc2"
	entryMagicV1 = "tgc1"
)

var errBadEntry = errors.New("cache entry: unreadable")

func (e *cacheEntry) encode() []byte {
	n := len(entryMagic) + len(e.RequestID) + len(e.ContentType) + len(e.Model) + len(e.Body) + 12*binary.MaxVarintLen64
	for _, h := range e.Headers {
		n += len(h[0]) + len(h[1]) + 2*binary.MaxVarintLen64
	}
	out := make([]byte, 0, n)
	out = append(out, entryMagic...)
	out = binary.AppendUvarint(out, uint64(e.Status))
	for _, s := range [...]string{e.RequestID, e.ContentType, e.Model} {
		out = binary.AppendUvarint(out, uint64(len(s)))
		out = append(out, s...)
	}
	for _, v := range [...]int64{e.PromptTokens, e.CompletionTokens, e.CachedTokens, e.CacheWriteTokens,
		e.ReasoningTokens, e.LatencyMs, e.CreatedUnixMs} {
		out = binary.AppendVarint(out, v)
	}
	out = binary.AppendUvarint(out, uint64(len(e.Headers)))
	for _, h := range e.Headers {
		for _, s := range h {
			out = binary.AppendUvarint(out, uint64(len(s)))
			out = append(out, s...)
		}
	}
	return append(out, e.Body...)
}

// decodeEntry reads an entry; the body aliases b.
func decodeEntry(b []byte) (*cacheEntry, error) {
	if len(b) < len(entryMagic) {
		return nil, errBadEntry
	}
	v1 := string(b[:len(entryMagicV1)]) == entryMagicV1
	if !v1 && string(b[:len(entryMagic)]) != entryMagic {
		return nil, errBadEntry
	}
	r := entryReader{b: b[len(entryMagic):]}
	e := &cacheEntry{Status: int(r.uvarint())}
	e.RequestID, e.ContentType, e.Model = r.str(), r.str(), r.str()
	for _, p := range [...]*int64{&e.PromptTokens, &e.CompletionTokens, &e.CachedTokens, &e.CacheWriteTokens,
		&e.ReasoningTokens, &e.LatencyMs, &e.CreatedUnixMs} {
		*p = r.varint()
	}
	if !v1 {
		n := r.uvarint()
		if n > maxReplayHeaders {
			return nil, errBadEntry
		}
		for ; n > 0 && !r.bad; n-- {
			name := r.str()
			e.Headers = append(e.Headers, [2]string{name, r.str()})
		}
	}
	if r.bad || e.Status < 200 || e.Status > 299 {
		return nil, errBadEntry
	}
	e.Body = r.b
	return e, nil
}

type entryReader struct {
	b   []byte
	bad bool
}

func (r *entryReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *entryReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *entryReader) str() string {
	n := r.uvarint()
	if r.bad || n > uint64(len(r.b)) {
		r.bad = true
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}
