package dataplane

import (
	"bytes"
	"sync"
)

// Buffers are pooled because every call through the data plane buffers a
// request and a response body; without pools a benchmark at 1000 req/s spends
// its time in the garbage collector.

// maxPooledBuffer keeps one huge body from pinning its buffer forever.
const maxPooledBuffer = 4 << 20

var bufferPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func getBuffer() *bytes.Buffer { return bufferPool.Get().(*bytes.Buffer) }

func putBuffer(b *bytes.Buffer) {
	if b.Cap() > maxPooledBuffer {
		return
	}
	b.Reset()
	bufferPool.Put(b)
}

// chunkSize is the read size for streamed and passed-through bodies; Envoy
// reads upstream data in chunks of about this size too.
const chunkSize = 32 << 10

var chunkPool = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}

func getChunk() *[]byte  { return chunkPool.Get().(*[]byte) }
func putChunk(b *[]byte) { chunkPool.Put(b) }
