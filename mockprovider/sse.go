package mockprovider

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"
)

// errStreamEnded stops a handler once the stream cannot go on: the client
// left, or x-mock-disconnect-after cut it.
var errStreamEnded = errors.New("mockprovider: stream ended")

// splitPause separates the two writes of an event x-mock-split-events
// splits: long enough that the reader sees two chunks.
const splitPause = 20 * time.Millisecond

// sseWriter frames Server-Sent Events the way the providers do and flushes
// each one, so a client (or Envoy) sees every event as soon as it is sent.
type sseWriter struct {
	c       *call
	rc      *http.ResponseController
	sent    int
	stalled bool // x-mock-stall-after's hold is over
	buf     []byte
}

// startSSE sends the streaming response headers at once: real providers
// answer the headers before the first token, and time-to-first-token
// measurements depend on it.
func (c *call) startSSE() *sseWriter {
	h := c.w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	c.w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(c.w)
	_ = rc.Flush()
	return &sseWriter{c: c, rc: rc}
}

// event sends one SSE event; name "" leaves out the event: line, as
// OpenAI's chat and completion streams do.
func (s *sseWriter) event(name string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		panic("mockprovider: marshal: " + err.Error())
	}
	return s.send(name, data)
}

// done sends OpenAI's end-of-stream marker.
func (s *sseWriter) done() error { return s.send("", []byte("[DONE]")) }

func (s *sseWriter) send(name string, data []byte) error {
	if s.sent > 0 && !sleep(s.c.ctx, s.c.plan.chunkDelay) {
		return errStreamEnded
	}
	if s.c.plan.disconnect >= 0 && s.sent >= s.c.plan.disconnect {
		abortConnection(s.c.w)
		return errStreamEnded
	}
	if s.c.plan.endAfter >= 0 && s.sent >= s.c.plan.endAfter {
		return errStreamEnded // the handler returns: a clean end, cut short
	}
	if s.sent == s.c.plan.stallAfter && !s.stalled {
		// A stall: nothing more until the client leaves (or MaxStall
		// passes, and the stream goes on), however late the client reads.
		s.stalled = true
		if !sleep(s.c.ctx, s.c.plan.maxStall) {
			return errStreamEnded
		}
	}
	s.buf = s.buf[:0]
	if name != "" {
		s.buf = append(s.buf, "event: "...)
		s.buf = append(s.buf, name...)
		s.buf = append(s.buf, '\n')
	}
	s.buf = append(s.buf, "data: "...)
	s.buf = append(s.buf, data...)
	s.buf = append(s.buf, "\n\n"...)
	out := s.buf
	if cut := s.c.plan.split; cut > 0 && cut < int64(len(out)) {
		// Two writes with a pause between, so a proxy reads the event
		// in two chunks, as a transport can deliver it.
		if _, err := s.c.w.Write(out[:cut]); err != nil {
			return errStreamEnded
		}
		if err := s.rc.Flush(); err != nil || !sleep(s.c.ctx, splitPause) {
			return errStreamEnded
		}
		out = out[cut:]
	}
	if _, err := s.c.w.Write(out); err != nil {
		return errStreamEnded
	}
	if err := s.rc.Flush(); err != nil {
		return errStreamEnded
	}
	s.sent++
	return nil
}
