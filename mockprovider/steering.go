package mockprovider

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Steering request headers; see the package comment for their meaning.
const (
	HeaderLatency          = "x-mock-latency-ms"
	HeaderChunkDelay       = "x-mock-chunk-delay-ms"
	HeaderStatus           = "x-mock-status"
	HeaderRetryAfter       = "x-mock-retry-after"
	HeaderFailFirst        = "x-mock-fail-first"
	HeaderFailKey          = "x-mock-fail-key"
	HeaderFailModels       = "x-mock-fail-models"
	HeaderDisconnectAfter  = "x-mock-disconnect-after"
	HeaderCompletionTokens = "x-mock-completion-tokens"
	HeaderCachedTokens     = "x-mock-cached-tokens"
	HeaderCacheWriteTokens = "x-mock-cache-write-tokens"
	HeaderReasoningTokens  = "x-mock-reasoning-tokens"
	HeaderSplitEvents      = "x-mock-split-events"
	HeaderEndAfter         = "x-mock-end-after"
	HeaderTrailer          = "x-mock-trailer"
	HeaderStallAfter       = "x-mock-stall-after"
)

// plan is what the steering headers ask of one request.
type plan struct {
	latency    time.Duration
	chunkDelay time.Duration
	status     int    // error status to answer with; 0 for none
	retryAfter string // "" means the default for a 429, none otherwise
	failFirst  int    // -1 when the request is not part of a fail-first series
	failKey    string
	failModels []string // the body's model in this list fails (with status, or 503)
	disconnect int      // SSE events before the reset; -1 for none
	endAfter   int      // SSE events before a clean end without the terminal event; -1 for none
	stallAfter int      // SSE events before the stream holds until the client leaves; -1 for none
	maxStall   time.Duration
	trailer    [2]string // a response trailer to send after the body (name, value); "" for none
	completion int64
	cached     int64
	cacheWrite int64
	reasoning  int64
	split      int64 // write each SSE event in two parts, the first this long; 0: whole
}

// parsePlan reads the steering headers. The fast path — no x-mock header at
// all, as in benchmarks — costs a handful of map lookups.
func parsePlan(h http.Header, opts Options) (plan, error) {
	p := plan{
		latency:    opts.Latency,
		chunkDelay: opts.ChunkDelay,
		failFirst:  -1,
		disconnect: -1,
		endAfter:   -1,
		stallAfter: -1,
		maxStall:   opts.MaxStall,
		completion: CompletionTokens,
	}
	var err error
	num := func(name string, dst *int64, lo, hi int64) {
		v := h.Get(name)
		if v == "" || err != nil {
			return
		}
		n, perr := strconv.ParseInt(v, 10, 64)
		if perr != nil || n < lo || n > hi {
			err = fmt.Errorf("mock: header %s: want an integer from %d to %d, got %q", name, lo, hi, v)
			return
		}
		*dst = n
	}
	const big = 1 << 40
	var latency, chunkDelay, status, failFirst, disconnect, endAfter, stallAfter int64 = -1, -1, 0, -1, -1, -1, -1
	num(HeaderLatency, &latency, 0, 3_600_000)
	num(HeaderChunkDelay, &chunkDelay, 0, 3_600_000)
	num(HeaderStatus, &status, 400, 599)
	num(HeaderFailFirst, &failFirst, 0, big)
	num(HeaderDisconnectAfter, &disconnect, 0, big)
	num(HeaderEndAfter, &endAfter, 0, big)
	num(HeaderStallAfter, &stallAfter, 0, big)
	num(HeaderCompletionTokens, &p.completion, 0, big)
	num(HeaderCachedTokens, &p.cached, 0, big)
	num(HeaderCacheWriteTokens, &p.cacheWrite, 0, big)
	num(HeaderReasoningTokens, &p.reasoning, 0, big)
	num(HeaderSplitEvents, &p.split, 0, big)
	var retryAfter int64 = -1
	num(HeaderRetryAfter, &retryAfter, 0, 86_400)
	if err != nil {
		return p, err
	}
	if latency >= 0 {
		p.latency = time.Duration(latency) * time.Millisecond
	}
	if chunkDelay >= 0 {
		p.chunkDelay = time.Duration(chunkDelay) * time.Millisecond
	}
	if retryAfter >= 0 {
		p.retryAfter = strconv.FormatInt(retryAfter, 10)
	}
	p.status = int(status)
	p.failFirst = int(failFirst)
	p.failKey = h.Get(HeaderFailKey)
	if v := h.Get(HeaderFailModels); v != "" {
		for _, m := range strings.Split(v, ",") {
			p.failModels = append(p.failModels, strings.TrimSpace(m))
		}
	}
	p.disconnect = int(disconnect)
	p.endAfter = int(endAfter)
	p.stallAfter = int(stallAfter)
	if v := h.Get(HeaderTrailer); v != "" {
		name, value, ok := strings.Cut(v, "=")
		if !ok || strings.TrimSpace(name) == "" {
			return p, fmt.Errorf("mock: header %s: want name=value, got %q", HeaderTrailer, v)
		}
		p.trailer = [2]string{strings.TrimSpace(name), strings.TrimSpace(value)}
	}
	return p, nil
}

// failureStatus decides whether this request fails, and with which status.
// A fail-first series counts under its key on the server, so retries of the
// same logical call see the failures run out.
func (s *Server) failureStatus(p plan, model string) int {
	if len(p.failModels) > 0 {
		if !slices.Contains(p.failModels, model) {
			return 0
		}
		if p.status != 0 {
			return p.status
		}
		return http.StatusServiceUnavailable
	}
	if p.failFirst < 0 {
		return p.status
	}
	s.failMu.Lock()
	s.failSeen[p.failKey]++
	seen := s.failSeen[p.failKey]
	s.failMu.Unlock()
	if seen > p.failFirst {
		return 0
	}
	if p.status != 0 {
		return p.status
	}
	return http.StatusServiceUnavailable
}

func (p plan) usage(prompt int64) usage {
	return usage{
		prompt:     prompt,
		completion: p.completion,
		cached:     p.cached,
		cacheWrite: p.cacheWrite,
		reasoning:  p.reasoning,
	}
}
