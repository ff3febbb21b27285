package dataplane

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// trailerHandler answers with the chunks, flushed one by one, then a trailer.
func trailerHandler(contentType string, chunks ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		for _, c := range chunks {
			_, _ = io.WriteString(w, c)
			w.(http.Flusher).Flush()
		}
		w.Header().Set(http.TrailerPrefix+"X-Upstream-Trailer", "done")
	}
}

// h2Server is an HTTP/2 (TLS) test server: trailers reach Envoy's filters
// only from an HTTP/2 peer, and reach only an HTTP/2 client.
func h2Server(t *testing.T, handler http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(handler)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// trailerHarness is a harness whose OpenAI upstream speaks HTTP/2 and sends
// trailers, with an HTTP/2 client in front.
func trailerHarness(t *testing.T, script func(*extprocv3.ProcessingRequest) step, up http.HandlerFunc) (*harness, *http.Client, string) {
	t.Helper()
	upstream := h2Server(t, up)
	h := newHarness(t, harnessOpts{script: script, config: func(c *Config) {
		c.OpenAIUpstream = upstream.URL
		c.Transport = upstream.Client().Transport
	}})
	front := h2Server(t, h.proxy)
	return h, front.Client(), front.URL
}

func getH2(t *testing.T, client *http.Client, url string) (*http.Response, string) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the body: %v", err)
	}
	if resp.ProtoMajor != 2 {
		t.Fatalf("client spoke %s, want HTTP/2", resp.Proto)
	}
	return resp, string(b)
}

func kinds(msgs []*extprocv3.ProcessingRequest) string {
	var k []string
	for _, m := range msgs {
		k = append(k, kind(m))
	}
	return strings.Join(k, " ")
}

// BUFFERED: the whole body in one message without end_of_stream, nothing
// after it; the trailer still reaches the client.
func TestBufferedResponseWithTrailers(t *testing.T) {
	t.Parallel()
	const body = `{"id":"chatcmpl-1","usage":{"prompt_tokens":3}}`
	h, client, url := trailerHarness(t, nil, trailerHandler("application/json", body[:10], body[10:]))
	resp, got := getH2(t, client, url+"/v1/models")
	if got != body || resp.Trailer.Get("X-Upstream-Trailer") != "done" {
		t.Fatalf("client got body %q trailers %v", got, resp.Trailer)
	}
	msgs := h.stream(t).messages()
	if kinds(msgs) != "request_headers response_headers response_body" {
		t.Fatalf("messages %s", kinds(msgs))
	}
	diffMsgs(t, []*extprocv3.ProcessingRequest{wantRespBody(body, false)}, msgs[2:])
}

// STREAMED (the processor's override for SSE): every chunk without
// end_of_stream, no empty end_of_stream message, no trailers message while
// trailer mode is SKIP.
func TestStreamedResponseWithTrailers(t *testing.T) {
	t.Parallel()
	chunks := []string{"data: {\"a\":1}\n\n", "data: [DONE]\n\n"}
	h, client, url := trailerHarness(t, streamOverride(nil), trailerHandler("text/event-stream", chunks...))
	resp, got := getH2(t, client, url+"/v1/chat/completions")
	if got != strings.Join(chunks, "") || resp.Trailer.Get("X-Upstream-Trailer") != "done" {
		t.Fatalf("client got body %q trailers %v", got, resp.Trailer)
	}
	msgs := h.stream(t).messages()
	var sent strings.Builder
	for _, m := range msgs[2:] {
		b := m.GetResponseBody()
		if b == nil || b.GetEndOfStream() {
			t.Fatalf("after the headers want body chunks without end_of_stream only, got %s: %v", kinds(msgs), m)
		}
		sent.Write(b.GetBody())
	}
	if sent.String() != got {
		t.Fatalf("processor saw %q, client got %q", sent.String(), got)
	}
}

// A processor that asks for the trailers (mode_override response_trailer_mode
// SEND) gets them after the last chunk, and its mutation reaches the client.
func TestStreamedResponseTrailersSentWhenAsked(t *testing.T) {
	t.Parallel()
	trailerMode := &filterv3.ProcessingMode{ResponseTrailerMode: filterv3.ProcessingMode_SEND}
	h, client, url := trailerHarness(t, streamOverride(trailerMode), trailerHandler("text/event-stream", "data: x\n\n"))
	resp, got := getH2(t, client, url+"/v1/chat/completions")
	if got != "data: x\n\n" || resp.Trailer.Get("X-Upstream-Trailer") != "done" || resp.Trailer.Get("X-Processor") != "seen" {
		t.Fatalf("client got body %q trailers %v", got, resp.Trailer)
	}
	msgs := h.stream(t).messages()
	want := &extprocv3.ProcessingRequest{
		Request: &extprocv3.ProcessingRequest_ResponseTrailers{
			ResponseTrailers: &extprocv3.HttpTrailers{Trailers: hmap("x-upstream-trailer", "done")}},
		MetadataContext: &corev3.Metadata{},
	}
	diffMsgs(t, []*extprocv3.ProcessingRequest{wantRespBody("data: x\n\n", false), want}, msgs[len(msgs)-2:])
}

// Envoy's HTTP/1 codec drops trailers (enable_trailers is off in envoy/):
// from an HTTP/1 upstream the body ends with end_of_stream as usual, and an
// HTTP/1 client gets none.
func TestHTTP1DropsTrailers(t *testing.T) {
	t.Parallel()
	t.Run("upstream", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, harnessOpts{upstream: trailerHandler("application/json", `{"ok":true}`)})
		front := h2Server(t, h.proxy)
		resp, _ := getH2(t, front.Client(), front.URL+"/v1/models")
		if len(resp.Trailer) != 0 {
			t.Fatalf("client got trailers %v", resp.Trailer)
		}
		msgs := h.stream(t).messages()
		diffMsgs(t, []*extprocv3.ProcessingRequest{wantRespBody(`{"ok":true}`, true)}, msgs[2:])
	})
	t.Run("client", func(t *testing.T) {
		t.Parallel()
		h, _, _ := trailerHarness(t, nil, trailerHandler("application/json", `{"ok":true}`))
		resp := h.send(t, t.Context(), http.MethodGet, "/v1/models", "", nil)
		defer resp.Body.Close()
		_, _ = io.ReadAll(resp.Body)
		if resp.ProtoMajor != 1 || len(resp.Trailer) != 0 {
			t.Fatalf("%s client got trailers %v", resp.Proto, resp.Trailer)
		}
	})
}

// streamOverride answers response_headers with a STREAMED body override
// (plus the fields of extra) and sets x-processor: seen on trailers.
func streamOverride(extra *filterv3.ProcessingMode) func(*extprocv3.ProcessingRequest) step {
	return func(req *extprocv3.ProcessingRequest) step {
		switch req.GetRequest().(type) {
		case *extprocv3.ProcessingRequest_ResponseHeaders:
			mode := &filterv3.ProcessingMode{ResponseBodyMode: filterv3.ProcessingMode_STREAMED}
			if extra != nil {
				mode.ResponseTrailerMode = extra.GetResponseTrailerMode()
			}
			r := reply(req, &extprocv3.CommonResponse{})
			r.ModeOverride = mode
			return step{resp: r}
		case *extprocv3.ProcessingRequest_ResponseTrailers:
			return step{resp: reply(req, &extprocv3.CommonResponse{
				HeaderMutation: mutation([]*corev3.HeaderValueOption{setHdr("x-processor", "seen")})})}
		}
		return continueAll(req)
	}
}

// A request with trailers (HTTP/2) sends its buffered body without
// end_of_stream, as Envoy's decodeTrailers does with trailer mode SKIP.
func TestRequestWithTrailers(t *testing.T) {
	t.Parallel()
	h, client, url := trailerHarness(t, nil, jsonReply(`{"ok":true}`))
	req, err := http.NewRequest(http.MethodPost, url+"/v1/chat/completions", io.NopCloser(strings.NewReader(`{"model":"m"}`)))
	if err != nil {
		t.Fatal(err)
	}
	req.Trailer = http.Header{"X-Request-Trailer": {"v"}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	msgs := h.stream(t).messages()
	if kinds(msgs) != "request_headers request_body response_headers response_body" {
		t.Fatalf("messages %s", kinds(msgs))
	}
	diffMsgs(t, []*extprocv3.ProcessingRequest{wantReqBody(`{"model":"m"}`, false)}, msgs[1:2])
}
