package mockprovider

import (
	"cmp"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidwall/gjson"
)

// Options are the defaults for every request; steering headers override
// them per request.
type Options struct {
	Latency    time.Duration // fixed delay before response headers (default 0)
	ChunkDelay time.Duration // delay between SSE chunks (default 0)
	// MaxStall bounds the hold of x-mock-stall-after, so that a stalled
	// stream whose client never leaves cannot hold a test forever.
	// Default 30 s.
	MaxStall time.Duration
}

// defaultMaxStall is Options.MaxStall's default: far longer than a test
// takes to hang up, far shorter than a test's own timeout.
const defaultMaxStall = 30 * time.Second

// Server is the mock provider. It is an http.Handler; mount it on any
// server or prefix. The zero value is not usable: call New.
type Server struct {
	opts     Options
	seq      atomic.Uint64 // numbers ids so every answer is distinct yet predictable
	received ring

	failMu   sync.Mutex
	failSeen map[string]int // fail-first key → requests seen
}

// New returns a mock provider with the given defaults.
func New(opts Options) *Server {
	if opts.MaxStall <= 0 {
		opts.MaxStall = defaultMaxStall
	}
	return &Server{opts: opts, failSeen: map[string]int{}}
}

// Received returns copies of the last requests received (bounded ring,
// 1000), oldest first.
func (s *Server) Received() []ReceivedRequest { return s.received.snapshot() }

// Reset clears the received requests and the fail-first counters, so one
// server can serve many independent tests.
func (s *Server) Reset() {
	s.received.reset()
	s.failMu.Lock()
	clear(s.failSeen)
	s.failMu.Unlock()
}

type provider int

const (
	openAI provider = iota
	anthropic
	gemini
)

// call is one request on its way through a handler.
type call struct {
	w      http.ResponseWriter
	r      *http.Request
	ctx    context.Context
	body   []byte
	plan   plan
	id     uint64 // sequence number, for ids
	model  string
	stream bool
}

type endpoint struct {
	suffix   string
	method   string
	provider provider
	handle   func(*Server, *call)
}

// endpoints are tried in order; a longer suffix comes before any suffix of
// it ("/v1/messages/count_tokens" before "/v1/messages").
var endpoints = []endpoint{
	{"/v1/chat/completions", http.MethodPost, openAI, (*Server).chatCompletions},
	{"/v1/completions", http.MethodPost, openAI, (*Server).completions},
	{"/v1/embeddings", http.MethodPost, openAI, (*Server).embeddings},
	{"/v1/moderations", http.MethodPost, openAI, (*Server).moderations},
	{"/v1/responses", http.MethodPost, openAI, (*Server).responses},
	{"/v1/models", http.MethodGet, openAI, (*Server).models},
	{"/v1/messages/count_tokens", http.MethodPost, anthropic, (*Server).countTokens},
	{"/v1/messages", http.MethodPost, anthropic, (*Server).messages},
}

// maxBody is far above any real prompt yet keeps a runaway client from
// exhausting memory.
const maxBody = 64 << 20

// ServeHTTP answers one request as the matching provider would.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	s.received.add(ReceivedRequest{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: body})
	ep, deployment := findEndpoint(r.URL.Path), ""
	if ep == nil {
		if ep, deployment = azureEndpoint(r.URL.Path); ep != nil && azureVersionMissing(w, r) {
			return
		}
	}
	if ep == nil || strings.HasPrefix(r.URL.Path, "/v1beta/") {
		ep, deployment = geminiEndpoint(r.URL.Path) // gemini.go
	}
	if ep == nil {
		writeError(w, openAI, "", http.StatusNotFound, "Invalid URL ("+r.Method+" "+r.URL.Path+")")
		return
	}
	c := &call{w: w, r: r, ctx: r.Context(), body: body, id: s.seq.Add(1)}
	requestID := requestIDFor(c.id)
	switch ep.provider {
	case anthropic:
		w.Header().Set("request-id", requestID)
	case gemini:
	default:
		w.Header().Set("x-request-id", requestID)
		w.Header().Set("openai-version", "2020-10-01")
	}
	if err != nil {
		writeError(w, ep.provider, "", http.StatusRequestEntityTooLarge, "request body too large or unreadable")
		return
	}
	if r.Method != ep.method {
		w.Header().Set("Allow", ep.method)
		writeError(w, ep.provider, "", http.StatusMethodNotAllowed, "method "+r.Method+" not allowed on "+r.URL.Path)
		return
	}
	if c.plan, err = parsePlan(r.Header, s.opts); err != nil {
		writeError(w, ep.provider, "", http.StatusBadRequest, err.Error())
		return
	}
	if !sleep(c.ctx, c.plan.latency) {
		return
	}
	if ep.provider == openAI {
		w.Header().Set("openai-processing-ms", strconv.FormatInt(c.plan.latency.Milliseconds(), 10))
	}
	model := gjson.GetBytes(body, "model").String()
	if status := s.failureStatus(c.plan, model); status != 0 {
		writeError(w, ep.provider, c.plan.retryAfter, status, "mock failure for model "+model+" requested by "+HeaderStatus+", "+HeaderFailFirst+" or "+HeaderFailModels)
		return
	}
	if ep.method == http.MethodPost {
		if !isJSONObject(body) {
			writeError(w, ep.provider, "", http.StatusBadRequest, badJSONMessage(ep.provider))
			return
		}
		got := gjson.GetManyBytes(body, "model", "stream")
		c.model, c.stream = cmp.Or(got[0].String(), deployment), got[1].Bool()
	}
	ep.handle(s, c)
	if t := c.plan.trailer; t[0] != "" {
		// Set after the body: net/http sends it as a trailer (an HTTP/2
		// HEADERS frame, or the last chunk of an HTTP/1.1 chunked body).
		w.Header().Set(http.TrailerPrefix+t[0], t[1])
	}
}

func findEndpoint(path string) *endpoint {
	for i := range endpoints {
		if strings.HasSuffix(path, endpoints[i].suffix) {
			return &endpoints[i]
		}
	}
	return nil
}

func isJSONObject(body []byte) bool {
	if !gjson.ValidBytes(body) {
		return false
	}
	for _, b := range body {
		switch b {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return b == '{'
	}
	return false
}

func requestIDFor(id uint64) string { return "req_mock" + strconv.FormatUint(id, 10) }

// sleep waits d, or less if the client goes away; it reports whether the
// full delay passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// now stamps "created" fields. It is the one non-deterministic value in an
// answer besides the ids; tests compare content and usage, never times.
func now() int64 { return time.Now().Unix() }
