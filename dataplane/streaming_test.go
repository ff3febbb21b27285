package dataplane

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc/codes"
)

// gate is a channel that can be opened more than once (tests open every gate
// in cleanup so a failing test does not leave a handler blocked).
type gate struct {
	ch   chan struct{}
	once sync.Once
}

func newGate(t *testing.T) *gate {
	g := &gate{ch: make(chan struct{})}
	t.Cleanup(g.open)
	return g
}

func (g *gate) open() { g.once.Do(func() { close(g.ch) }) }

// streamedScript switches the response body to STREAMED in the
// response_headers reply and prefixes every non-empty chunk with "P:"; the
// final, empty chunk becomes a [DONE] event.
func streamedScript(req *extprocv3.ProcessingRequest) step {
	switch kind(req) {
	case "response_headers":
		resp := continueAll(req).resp
		resp.ModeOverride = &filterv3.ProcessingMode{ResponseBodyMode: filterv3.ProcessingMode_STREAMED}
		return step{resp: resp}
	case "response_body":
		b := req.GetResponseBody()
		if len(b.GetBody()) == 0 && b.GetEndOfStream() {
			return step{resp: reply(req, &extprocv3.CommonResponse{BodyMutation: bodyMutation("data: [DONE]\n\n")})}
		}
		return step{resp: reply(req, &extprocv3.CommonResponse{BodyMutation: bodyMutation("P:" + string(b.GetBody()))})}
	}
	return continueAll(req)
}

// sse writes SSE events, flushing each, and waits for a gate before each
// event after the first one.
func sse(events []string, gates ...*gate) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Date"] = nil
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		for i, ev := range events {
			if i > 0 {
				select {
				case <-gates[i-1].ch:
				case <-r.Context().Done():
					return
				}
			}
			_, _ = io.WriteString(w, ev)
			http.NewResponseController(w).Flush()
		}
		if len(gates) >= len(events) {
			select {
			case <-gates[len(events)-1].ch:
			case <-r.Context().Done():
			}
		}
	}
}

func readEvent(t *testing.T, br *bufio.Reader) string {
	t.Helper()
	var ev string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading event: %v (got %q)", err, ev+line)
		}
		ev += line
		if line == "\n" {
			return ev
		}
	}
}

// firstEventThenCut requests a streamed completion, expects its first event
// ("data: 1", through the processor) and then a body that breaks off instead
// of ending cleanly; what names the response in the failure.
func firstEventThenCut(t *testing.T, h *harness, what string) {
	t.Helper()
	resp := h.send(t, context.Background(), "GET", "/v1/chat/completions", "", nil)
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if ev := readEvent(t, br); ev != "P:data: 1\n\n" {
		t.Errorf("first event %q", ev)
	}
	if _, err := io.ReadAll(br); err == nil {
		t.Errorf("client saw a clean end of %s response", what)
	}
}

func TestStreamedResponseFlushesChunkByChunk(t *testing.T) {
	g1, g2 := newGate(t), newGate(t)
	h := newHarness(t, harnessOpts{script: streamedScript, upstream: sse([]string{"data: 1\n\n", "data: 2\n\n"}, g1, g2)})
	resp := h.send(t, context.Background(), "GET", "/v1/chat/completions", "", nil)
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("client got %d %v", resp.StatusCode, resp.Header)
	}
	br := bufio.NewReader(resp.Body)
	// The upstream is parked on g1 here: this event can only arrive if the
	// proxy flushed it on its own.
	if ev := readEvent(t, br); ev != "P:data: 1\n\n" {
		t.Errorf("first event %q", ev)
	}
	g1.open()
	if ev := readEvent(t, br); ev != "P:data: 2\n\n" {
		t.Errorf("second event %q", ev)
	}
	g2.open()
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "data: [DONE]\n\n" {
		t.Errorf("rest %q, err %v", rest, err)
	}
	rec := h.stream(t)
	diffMsgs(t, []*extprocMsg{
		wantRespHeaders(hmap(":status", "200", "content-type", "text/event-stream"), false),
		wantRespBody("data: 1\n\n", false),
		wantRespBody("data: 2\n\n", false),
		wantRespBody("", true),
	}, rec.messages()[1:])
}

func TestClientCancelMidStream(t *testing.T) {
	g := newGate(t)
	upstreamGone := make(chan struct{})
	h := newHarness(t, harnessOpts{script: streamedScript, upstream: func(w http.ResponseWriter, r *http.Request) {
		sse([]string{"data: 1\n\n"}, g)(w, r)
		if r.Context().Err() != nil {
			close(upstreamGone)
		}
	}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp := h.send(t, ctx, "GET", "/v1/chat/completions", "", nil)
	defer resp.Body.Close()
	if ev := readEvent(t, bufio.NewReader(resp.Body)); ev != "P:data: 1\n\n" {
		t.Errorf("first event %q", ev)
	}
	cancel()

	rec := h.stream(t)
	if rec.endCode != codes.Canceled || !errors.Is(rec.ctxErr, context.Canceled) || rec.endedByDeadline() {
		t.Errorf("processor saw %v / %v, want Canceled before the deadline", rec.endCode, rec.ctxErr)
	}
	h.waitServed(t)
	select {
	case <-upstreamGone:
	case <-time.After(waitLimit):
		t.Error("upstream call was not cancelled")
	}
}

func TestUpstreamClosesMidStream(t *testing.T) {
	h := newHarness(t, harnessOpts{script: streamedScript, upstream: func(w http.ResponseWriter, r *http.Request) {
		sse([]string{"data: 1\n\n"})(w, r)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			_ = conn.Close()
		}
	}})
	firstEventThenCut(t, h, "a truncated")
	rec := h.stream(t)
	if rec.endCode != codes.Canceled {
		t.Errorf("processor saw %v, want Canceled", rec.endCode)
	}
	h.waitServed(t)
}

func TestUpstreamClosesBeforeBufferedBodyEnds(t *testing.T) {
	h := newHarness(t, harnessOpts{upstream: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		_, _ = io.WriteString(w, "partial")
		http.NewResponseController(w).Flush()
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			_ = conn.Close()
		}
	}})
	req, _ := http.NewRequest("GET", h.front.URL+"/v1/models", nil)
	resp, err := h.client.Do(req)
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Error("client got a complete response")
	}
	if rec := h.stream(t); rec.endCode != codes.Canceled {
		t.Errorf("processor saw %v, want Canceled", rec.endCode)
	}
	h.waitServed(t)
}

func TestRouteTimeoutBeforeHeadersIs504ThroughProcessor(t *testing.T) {
	h := newHarness(t, harnessOpts{
		config:   func(c *Config) { c.RouteTimeout = 300 * time.Millisecond },
		upstream: func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
	})
	code, _, body := h.do(t, "GET", "/v1/models", "", nil)
	if code != 504 || body != "upstream request timeout" {
		t.Errorf("client got %d %q", code, body)
	}
	diffMsgs(t, []*extprocMsg{
		wantRespHeaders(hmap(":status", "504", "content-length", "24", "content-type", "text/plain"), false),
		wantRespBody("upstream request timeout", true),
	}, h.stream(t).messages()[1:])
}

// The upstream stays parked after its first event, so the timeouts below
// end the stream whatever their length; they are long enough for the first
// event to pass the processor's round trips first on a loaded machine.
func TestRouteTimeoutAfterHeadersEndsStreamWithDeadline(t *testing.T) {
	g := newGate(t)
	h := newHarness(t, harnessOpts{
		script: streamedScript,
		config: func(c *Config) {
			c.RouteTimeout = 3 * time.Second
			c.MessageTimeout = time.Second
		},
		upstream: sse([]string{"data: 1\n\n"}, g),
	})
	firstEventThenCut(t, h, "a timed-out")
	rec := h.stream(t)
	if !rec.endedByDeadline() {
		t.Errorf("processor saw %v / %v at %v, deadline %v: want the end by deadline",
			rec.endCode, rec.ctxErr, rec.endedAt, rec.deadline)
	}
}

func TestIdleTimeoutAfterHeadersCancelsStream(t *testing.T) {
	g := newGate(t)
	h := newHarness(t, harnessOpts{
		script:   streamedScript,
		config:   func(c *Config) { c.StreamIdleTimeout = 2 * time.Second },
		upstream: sse([]string{"data: 1\n\n"}, g),
	})
	firstEventThenCut(t, h, "an idle-timed-out")
	if rec := h.stream(t); rec.endCode != codes.Canceled {
		t.Errorf("processor saw %v, want Canceled", rec.endCode)
	}
}
