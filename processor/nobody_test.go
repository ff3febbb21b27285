package processor

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/tollgate-dev/tollgate/dataplane"
	"github.com/tollgate-dev/tollgate/policies/gate"
	"github.com/tollgate-dev/tollgate/record"
	"github.com/tollgate-dev/tollgate/storage/memstore"
)

// cachedChatCall is a cache-enabled chat call up to its response headers:
// a 200 whose buffered body has not come.
func cachedChatCall() []*extprocv3.ProcessingRequest {
	return []*extprocv3.ProcessingRequest{
		reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions", "content-type", "application/json",
			"authorization", "Bearer sk-provider", "helicone-cache-enabled", "true"),
		reqBody(chatBody),
		respHeaders(false, ":status", "200", "content-type", "application/json"),
	}
}

// Envoy closes the stream after the response headers, without the body
// its buffered mode owes, when the body goes over its buffer limit: the
// client gets Envoy's own 500. The call is logged as that 500, with its
// prompt counted (the provider read it), and nothing is cached: the next
// identical call goes to the provider, not to an empty cached answer.
func TestResponseBodyThatNeverCameIsA500(t *testing.T) {
	s, sink := newTestServer(t, func(o *Options) {
		o.Gate = gate.New(gate.Options{Store: memstore.New(memstore.Options{})})
	})
	_, _ = run(s, io.EOF, cachedChatCall()...)
	r := sink.Records()[0]
	if r.Status != http.StatusInternalServerError || !strings.Contains(r.Error, "never reached the processor") {
		t.Fatalf("record status %d, error %q: want 500 and why", r.Status, r.Error)
	}
	if r.PromptTokens == 0 || r.CostUSD <= 0 || r.UsageSource != record.UsageEstimated {
		t.Fatalf("record %d prompt tokens, $%v, usage %q: want the prompt counted and priced", r.PromptTokens, r.CostUSD, r.UsageSource)
	}

	full := append(cachedChatCall()[:2], respHeaders(false, ":status", "200", "content-type", "application/json"), respBody(chatResponse, true))
	_, _ = run(s, nil, full...)
	if again := sink.Records()[1]; again.CacheHit || again.Status != http.StatusOK {
		t.Fatalf("the next identical call: cache hit %v, status %d; want it sent to the provider", again.CacheHit, again.Status)
	}
}

// Through the local data plane, which does what Envoy does with a buffered
// response over its limit: the client gets a 500, the record is not a
// success, and the answer the client never got is not cached.
func TestResponseOverBufferLimitThroughDataPlane(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, chatResponse[:len(chatResponse)-1]+`,"padding":"`+strings.Repeat("x", 4000)+`"}`)
	}))
	t.Cleanup(up.Close)
	s, sink := newTestServer(t, func(o *Options) {
		o.Gate = gate.New(gate.Options{Store: memstore.New(memstore.Options{})})
	})
	front := httptest.NewServer(dataPlaneFor(t, s, dataplane.Config{
		OpenAIUpstream: up.URL, AnthropicUpstream: up.URL, MaxResponseBody: 1000,
		MessageTimeout: 5 * time.Second, AllowEnvoyHeaderMutation: true,
	}))
	t.Cleanup(front.Close)
	for i := range 2 {
		req, _ := http.NewRequest(http.MethodPost, front.URL+"/v1/chat/completions", strings.NewReader(chatBody))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer sk-provider")
		req.Header.Set("Helicone-Cache-Enabled", "true")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusInternalServerError {
			t.Fatalf("call %d answered %s, want Envoy's 500 for a body over the buffer limit", i, resp.Status)
		}
		// The processor logs the call when the stream ends, which may be
		// just after the client has its answer.
		recs := sink.WaitFor(i+1, 10*time.Second)
		r := recs[i]
		if r.Status >= 200 && r.Status <= 299 || r.PromptTokens == 0 {
			t.Fatalf("call %d logged with status %d and %d prompt tokens: want a failure with the prompt counted", i, r.Status, r.PromptTokens)
		}
	}
	if n := calls.Load(); n != 2 {
		t.Fatalf("the provider saw %d calls, want 2: the second must not be answered from the cache", n)
	}
}

// A message the processor cannot answer ends the call as the 500 Envoy
// gives the client, with the reason, not as a client that went away.
func TestUnexpectedMessageIsLoggedAsA500(t *testing.T) {
	s, sink := newTestServer(t)
	_, err := run(s, nil, reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions"), &extprocv3.ProcessingRequest{})
	if err == nil {
		t.Fatal("an empty ext_proc message was answered")
	}
	r := sink.Records()[0]
	if r.Status != http.StatusInternalServerError || !strings.Contains(r.Error, "unexpected ext_proc message") {
		t.Fatalf("record status %d, error %q: want 500 naming the unexpected message", r.Status, r.Error)
	}
}
