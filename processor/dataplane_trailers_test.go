package processor

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-dev/tollgate/dataplane"
	"github.com/tollgate-dev/tollgate/provider"
	"github.com/tollgate-dev/tollgate/record"
)

// An HTTP/2 provider that ends its response with trailers: through the data
// plane (as through Envoy with trailers SKIP) the body's last message has no
// end_of_stream. The call must still be logged with its status, tokens and
// cost, buffered or streamed, and the client must get the trailers.
func TestResponseTrailersThroughDataPlane(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, path, reqBody, contentType, respBody string
		usage                                      provider.Usage
		cost                                       float64
	}{
		{
			name: "buffered", path: "/v1/chat/completions", reqBody: chatBody,
			contentType: "application/json", respBody: chatResponse,
			usage: provider.Usage{PromptTokens: 1200, CompletionTokens: 300, CachedTokens: 200, ReasoningTokens: 50},
			cost:  chatCost,
		},
		{
			name: "streamed", path: "/v1/messages", reqBody: `{"model":"claude-sonnet-4-5","stream":true,"max_tokens":64}`,
			contentType: "text/event-stream", respBody: anthropicStream,
			usage: provider.Usage{PromptTokens: 150, CompletionTokens: 25, CachedTokens: 40, CacheWriteTokens: 10},
			cost:  anthropicStreamCost,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up := h2Upstream(t, func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", tc.contentType)
				half := len(tc.respBody) / 2
				for _, part := range []string{tc.respBody[:half], tc.respBody[half:]} {
					_, _ = io.WriteString(w, part)
					w.(http.Flusher).Flush()
				}
				w.Header().Set(http.TrailerPrefix+"X-Upstream-Trailer", "done")
			})
			sink, client, front := throughDataPlane(t, up)
			resp, err := client.Post(front+tc.path, "application/json", strings.NewReader(tc.reqBody))
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || string(body) != tc.respBody || resp.Trailer.Get("X-Upstream-Trailer") != "done" {
				t.Fatalf("client got %d %q (%v), trailers %v", resp.StatusCode, body, err, resp.Trailer)
			}
			recs := sink.Records()
			if len(recs) != 1 {
				t.Fatalf("records %+v", recs)
			}
			r := recs[0]
			if r.Status != 200 || r.PromptTokens != tc.usage.PromptTokens || r.CompletionTokens != tc.usage.CompletionTokens ||
				cmp.Diff(tc.cost, r.CostUSD, approxCost) != "" || r.Error != "" {
				t.Fatalf("record %+v, want status 200, usage %+v, cost %v", r, tc.usage, tc.cost)
			}
		})
	}
}

// A client that goes away in the middle of a stream is still a cancel (-3).
func TestStreamCancelThroughDataPlane(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	up := h2Upstream(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, anthropicStream[:100])
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	sink, client, front := throughDataPlane(t, up)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, front+"/v1/messages",
		strings.NewReader(`{"model":"claude-sonnet-4-5","stream":true,"max_tokens":64}`))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	cancel()
	resp.Body.Close()
	// The processor logs the call when it sees the stream end, which may be
	// just after the client returns.
	recs := sink.WaitFor(1, 10*time.Second)
	if len(recs) != 1 || recs[0].Status != record.StatusClientCancelled {
		t.Fatalf("records %+v", recs)
	}
}

func h2Upstream(t *testing.T, handler http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(handler)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// throughDataPlane serves a processor over gRPC and puts the local data
// plane in front of it, with up as both providers; the client speaks HTTP/2,
// which trailers need.
func throughDataPlane(t *testing.T, up *httptest.Server) (*record.Memory, *http.Client, string) {
	t.Helper()
	s, sink := newTestServer(t)
	proxy := dataPlaneFor(t, s, dataplane.Config{
		OpenAIUpstream: up.URL, AnthropicUpstream: up.URL, Transport: up.Client().Transport,
		MessageTimeout: 5 * time.Second, AllowEnvoyHeaderMutation: true,
	})
	front := h2Upstream(t, proxy.ServeHTTP)
	return sink, front.Client(), front.URL
}
