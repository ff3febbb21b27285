package dataplane

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// wantUpstreamReqHeaders is the upstream filter's first message: its
// protocol_config names its own body modes (both NONE).
func wantUpstreamReqHeaders(h *corev3.HeaderMap, eos bool) *extprocv3.ProcessingRequest {
	m := wantReqHeaders(h, eos)
	m.ProtocolConfig = &extprocv3.ProtocolConfiguration{}
	return m
}

// attemptOf reads x-envoy-attempt-count from a request_headers message.
func attemptOf(req *extprocv3.ProcessingRequest) string {
	for _, v := range req.GetRequestHeaders().GetHeaders().GetHeaders() {
		if v.GetKey() == "x-envoy-attempt-count" {
			return string(v.GetRawValue())
		}
	}
	return ""
}

func upstreamHost(u *upstream) string { return u.Listener.Addr().String() }

func retry5xx(n int) map[string]string {
	return map[string]string{"X-Envoy-Retry-On": "5xx", "X-Envoy-Max-Retries": strconv.Itoa(n)}
}

func TestUpstreamFilterRunsOncePerAttempt(t *testing.T) {
	h := newHarness(t, harnessOpts{config: fastRetries, upstream: textReply(503, "down"), upstreamScript: continueAll})
	code, _, _ := h.do(t, "POST", "/v1/chat/completions", `{"a":1}`, retry5xx(2))
	if code != 503 {
		t.Errorf("client got %d", code)
	}
	for n := 1; n <= 3; n++ {
		rec := h.upstreamStream(t)
		if got := rec.md.Get(UpstreamFilterMetadataKey); len(got) != 1 || got[0] != UpstreamFilterMetadataValue {
			t.Errorf("attempt %d: stream metadata %v", n, rec.md)
		}
		diffMsgs(t, []*extprocMsg{wantUpstreamReqHeaders(hmap(
			":method", "POST",
			":path", "/v1/chat/completions",
			":authority", upstreamHost(h.openai),
			":scheme", "http",
			"content-length", "7",
			"user-agent", "tollgate-test",
			"x-envoy-attempt-count", strconv.Itoa(n),
			"x-forwarded-proto", "http",
			"x-request-id", "req-1",
		), false)}, rec.messages())
		// Done after request_headers (response headers are skipped):
		// half-closed and reset.
		if rec.endCode != codes.OK && rec.endCode != codes.Canceled {
			t.Errorf("attempt %d: stream ended with %v", n, rec.endCode)
		}
	}
	if rec := h.stream(t); len(rec.md.Get(UpstreamFilterMetadataKey)) != 0 {
		t.Errorf("router-level stream carries %v", rec.md)
	}
	for n, rec := range attemptsOf(t, h.openai, 3) {
		if rec.header.Get("X-Envoy-Attempt-Count") != strconv.Itoa(n+1) {
			t.Errorf("attempt %d: upstream headers %v", n+1, rec.header)
		}
	}
}

func TestUpstreamFilterReplacesTheBodyPerAttempt(t *testing.T) {
	h := newHarness(t, harnessOpts{
		config:   fastRetries,
		upstream: perAttempt(textReply(503, ""), textReply(503, ""), jsonReply(`{"ok":true}`)),
		upstreamScript: func(req *extprocv3.ProcessingRequest) step {
			return step{resp: reply(req, &extprocv3.CommonResponse{
				Status:       extprocv3.CommonResponse_CONTINUE_AND_REPLACE,
				BodyMutation: bodyMutation(`{"model":"fallback-` + attemptOf(req) + `"}`),
			})}
		},
	})
	if code, _, _ := h.do(t, "POST", "/v1/chat/completions", `{"model":"gpt-4o"}`, retry5xx(2)); code != 200 {
		t.Errorf("client got %d", code)
	}
	for n, rec := range attemptsOf(t, h.openai, 3) {
		want := `{"model":"fallback-` + strconv.Itoa(n+1) + `"}`
		if rec.body != want || rec.header.Get("Content-Length") != strconv.Itoa(len(want)) {
			t.Errorf("attempt %d: upstream got %q content-length %q", n+1, rec.body, rec.header.Get("Content-Length"))
		}
	}
	h.stream(t)
}

func TestUpstreamFilterBodyStartsFromTheRoutersBody(t *testing.T) {
	h := newHarness(t, harnessOpts{
		config:   fastRetries,
		upstream: perAttempt(textReply(503, ""), jsonReply(`{}`)),
		script: func(req *extprocv3.ProcessingRequest) step {
			if kind(req) == "request_body" {
				return step{resp: reply(req, &extprocv3.CommonResponse{BodyMutation: bodyMutation("router")})}
			}
			return continueAll(req)
		},
		upstreamScript: func(req *extprocv3.ProcessingRequest) step {
			switch kind(req) {
			case "request_headers":
				resp := continueAll(req).resp
				resp.ModeOverride = &filterv3.ProcessingMode{RequestBodyMode: filterv3.ProcessingMode_BUFFERED}
				return step{resp: resp}
			case "request_body":
				body := string(req.GetRequestBody().GetBody())
				return step{resp: reply(req, &extprocv3.CommonResponse{BodyMutation: bodyMutation(body + "+attempt")})}
			}
			return continueAll(req)
		},
	})
	if code, _, _ := h.do(t, "POST", "/v1/chat/completions", "client", retry5xx(1)); code != 200 {
		t.Errorf("client got %d", code)
	}
	for n := 1; n <= 2; n++ {
		msgs := h.upstreamStream(t).messages()
		if len(msgs) != 2 || kind(msgs[1]) != "request_body" || string(msgs[1].GetRequestBody().GetBody()) != "router" ||
			!msgs[1].GetRequestBody().GetEndOfStream() {
			t.Errorf("attempt %d: upstream filter got %v", n, msgs)
		}
	}
	for n, rec := range attemptsOf(t, h.openai, 2) {
		if rec.body != "router+attempt" || rec.header.Get("Content-Length") != "14" {
			t.Errorf("attempt %d: upstream got %q content-length %q", n+1, rec.body, rec.header.Get("Content-Length"))
		}
	}
	h.stream(t)
}

func TestUpstreamFilterHeaderChangesStayForLaterAttempts(t *testing.T) {
	// Envoy's upstream filters change the router's own header map, so what
	// the first attempt's filter set is still there for the second.
	h := newHarness(t, harnessOpts{
		config:   fastRetries,
		upstream: perAttempt(textReply(503, ""), jsonReply(`{}`)),
		upstreamScript: func(req *extprocv3.ProcessingRequest) step {
			if attemptOf(req) == "1" {
				return step{resp: reply(req, &extprocv3.CommonResponse{HeaderMutation: mutation([]*corev3.HeaderValueOption{
					setHdr(":path", "/v1/responses?fallback=1"),
					setHdr("x-fallback", "1"),
					setHdr(":authority", "elsewhere.example"), // ignored by the mutation rules
				})})}
			}
			return continueAll(req)
		},
	})
	if code, _, _ := h.do(t, "GET", "/v1/models", "", retry5xx(1)); code != 200 {
		t.Errorf("client got %d", code)
	}
	for n, rec := range attemptsOf(t, h.openai, 2) {
		if rec.path != "/v1/responses?fallback=1" || rec.header.Get("X-Fallback") != "1" || rec.host != upstreamHost(h.openai) {
			t.Errorf("attempt %d: upstream got %s %s %v", n+1, rec.host, rec.path, rec.header)
		}
	}
	h.upstreamStream(t)
	second := h.upstreamStream(t).messages()[0]
	diffMsgs(t, []*extprocMsg{wantUpstreamReqHeaders(hmap(
		":method", "GET",
		":path", "/v1/responses?fallback=1",
		":authority", upstreamHost(h.openai),
		":scheme", "http",
		"user-agent", "tollgate-test",
		"x-envoy-attempt-count", "2",
		"x-forwarded-proto", "http",
		"x-request-id", "req-1",
		"x-fallback", "1",
	), true)}, []*extprocMsg{second})
	h.stream(t)
}

func TestUpstreamFilterSeesTheRoutePrefix(t *testing.T) {
	h := newHarness(t, harnessOpts{
		config: func(c *Config) { c.OpenAIUpstream += "/openai" },
		upstreamScript: func(req *extprocv3.ProcessingRequest) step {
			path := ""
			for _, v := range req.GetRequestHeaders().GetHeaders().GetHeaders() {
				if v.GetKey() == ":path" {
					path = string(v.GetRawValue())
				}
			}
			return step{resp: reply(req, &extprocv3.CommonResponse{HeaderMutation: mutation([]*corev3.HeaderValueOption{
				setHdr(":path", path+"-seen"),
			})})}
		},
	})
	if code, _, _ := h.do(t, "GET", "/v1/models", "", nil); code != 200 {
		t.Errorf("client got %d", code)
	}
	if rec := h.openai.next(t); rec.path != "/openai/v1/models-seen" {
		t.Errorf("upstream path %q", rec.path)
	}
	h.stream(t)
}

func TestUpstreamFilterResponseHeadersDecideTheRetry(t *testing.T) {
	var judged atomic.Int32
	h := newHarness(t, harnessOpts{
		config:   fastRetries,
		upstream: jsonReply(`{"ok":true}`),
		upstreamScript: func(req *extprocv3.ProcessingRequest) step {
			switch kind(req) {
			case "request_headers":
				resp := continueAll(req).resp
				resp.ModeOverride = &filterv3.ProcessingMode{ResponseHeaderMode: filterv3.ProcessingMode_SEND}
				return step{resp: resp}
			case "response_headers":
				// The processor judges the first answer unusable.
				if judged.Add(1) == 1 {
					return step{resp: reply(req, &extprocv3.CommonResponse{HeaderMutation: mutation([]*corev3.HeaderValueOption{
						setHdr("x-tollgate-fallback", "next"),
					})})}
				}
				return step{resp: reply(req, &extprocv3.CommonResponse{HeaderMutation: mutation([]*corev3.HeaderValueOption{
					setHdr("helicone-fallback-index", "1"),
				})})}
			}
			return continueAll(req)
		},
	})
	code, hdr, body := h.do(t, "POST", "/v1/chat/completions", `{}`, map[string]string{
		"X-Envoy-Retry-On": "retriable-headers", "X-Envoy-Retriable-Header-Names": "x-tollgate-fallback",
	})
	if code != 200 || body != `{"ok":true}` || hdr.Get("Helicone-Fallback-Index") != "1" || hdr.Get("X-Tollgate-Fallback") != "" {
		t.Errorf("client got %d %q %v", code, body, hdr)
	}
	if got := h.openai.hits.Load(); got != 2 {
		t.Errorf("upstream saw %d attempts, want 2", got)
	}
	for n := 1; n <= 2; n++ {
		msgs := h.upstreamStream(t).messages()
		if len(msgs) != 2 {
			t.Fatalf("attempt %d: upstream filter got %d messages", n, len(msgs))
		}
		diffMsgs(t, []*extprocMsg{wantRespHeaders(hmap(
			":status", "200", "content-length", "11", "content-type", "application/json", "x-upstream", "yes",
		), false)}, msgs[1:])
	}
	// The router-level filter sees the response the upstream filter changed.
	msgs := h.stream(t).messages()
	diffMsgs(t, []*extprocMsg{wantRespHeaders(hmap(
		":status", "200", "content-length", "11", "content-type", "application/json",
		"helicone-fallback-index", "1", "x-upstream", "yes",
	), false)}, msgs[2:3])
}

func TestUpstreamFilterImmediateResponse(t *testing.T) {
	immediate := func(code typev3.StatusCode, body string) step {
		return step{resp: &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{
			ImmediateResponse: &extprocv3.ImmediateResponse{
				Status:  &typev3.HttpStatus{Code: code},
				Headers: mutation([]*corev3.HeaderValueOption{setHdr("x-from", "upstream-filter")}),
				Body:    []byte(body),
			},
		}}}
	}
	t.Run("in the request phase ends the request, never retried", func(t *testing.T) {
		// Envoy sends an upstream filter's local reply through the
		// downstream filter chain, past the router's retry logic.
		h := newHarness(t, harnessOpts{config: fastRetries, upstreamScript: func(req *extprocv3.ProcessingRequest) step {
			return immediate(typev3.StatusCode_ServiceUnavailable, "primary down")
		}})
		code, hdr, body := h.do(t, "POST", "/v1/chat/completions", `{}`, retry5xx(3))
		if code != 503 || body != "primary down" || hdr.Get("X-From") != "upstream-filter" {
			t.Errorf("client got %d %q %v", code, body, hdr)
		}
		if got := h.openai.hits.Load(); got != 0 {
			t.Errorf("upstream saw %d requests", got)
		}
		if msgs := h.upstreamStream(t).messages(); len(msgs) != 1 {
			t.Errorf("upstream filter got %d messages", len(msgs))
		}
		h.stream(t)
		select {
		case rec := <-h.ext.upStarted:
			t.Errorf("a second upstream filter stream was opened: %v", rec.messages())
		default:
		}
	})
	t.Run("in the response phase replaces the response, never retried", func(t *testing.T) {
		h := newHarness(t, harnessOpts{config: fastRetries, upstream: textReply(503, "down"),
			upstreamScript: func(req *extprocv3.ProcessingRequest) step {
				if kind(req) == "request_headers" {
					resp := continueAll(req).resp
					resp.ModeOverride = &filterv3.ProcessingMode{ResponseHeaderMode: filterv3.ProcessingMode_SEND}
					return step{resp: resp}
				}
				return immediate(typev3.StatusCode_BadGateway, "rewritten")
			}})
		code, _, body := h.do(t, "POST", "/v1/chat/completions", `{}`, retry5xx(3))
		if code != 502 || body != "rewritten" {
			t.Errorf("client got %d %q", code, body)
		}
		if got := h.openai.hits.Load(); got != 1 {
			t.Errorf("upstream saw %d requests, want 1", got)
		}
		h.stream(t)
	})
	t.Run("goes through the router-level response phases", func(t *testing.T) {
		h := newHarness(t, harnessOpts{upstreamScript: func(req *extprocv3.ProcessingRequest) step {
			return immediate(typev3.StatusCode_TooManyRequests, "no budget")
		}})
		code, hdr, body := h.do(t, "POST", "/v1/chat/completions", `{}`, nil)
		if code != 429 || body != "no budget" || hdr.Get("X-From") != "upstream-filter" {
			t.Errorf("client got %d %q %v", code, body, hdr)
		}
		if got := h.openai.hits.Load(); got != 0 {
			t.Errorf("upstream saw %d requests", got)
		}
		diffMsgs(t, []*extprocMsg{
			wantRespHeaders(hmap(":status", "429", "content-length", "9", "content-type", "text/plain", "x-from", "upstream-filter"), false),
			wantRespBody("no budget", true),
		}, h.stream(t).messages()[2:])
	})
}

func TestUpstreamFilterFailure(t *testing.T) {
	failing := func(req *extprocv3.ProcessingRequest) step {
		return step{end: status.Error(codes.Internal, "processor bug")}
	}
	t.Run("fail closed is a 500 through the response phases", func(t *testing.T) {
		h := newHarness(t, harnessOpts{upstreamScript: failing})
		code, _, body := h.do(t, "POST", "/v1/chat/completions", `{}`, nil)
		if code != 500 || body != "ext_proc error" {
			t.Errorf("client got %d %q", code, body)
		}
		if got := h.openai.hits.Load(); got != 0 {
			t.Errorf("upstream saw %d requests", got)
		}
		msgs := h.stream(t).messages()
		if len(msgs) != 4 || kind(msgs[2]) != "response_headers" {
			t.Errorf("router-level processor got %v", msgs)
		}
	})
	t.Run("fail closed is not retried", func(t *testing.T) {
		h := newHarness(t, harnessOpts{config: fastRetries, upstreamScript: failing})
		if code, _, _ := h.do(t, "POST", "/v1/chat/completions", `{}`, retry5xx(1)); code != 500 {
			t.Errorf("client got %d", code)
		}
		h.upstreamStream(t)
		h.stream(t)
		select {
		case <-h.ext.upStarted:
			t.Error("a second upstream filter stream was opened")
		default:
		}
	})
	t.Run("fail open, a failing attempt is retried", func(t *testing.T) {
		h := newHarness(t, harnessOpts{upstreamScript: failing, upstream: perAttempt(textReply(503, ""), jsonReply(`{}`)),
			config: func(c *Config) {
				fastRetries(c)
				c.UpstreamFilter.FailureModeAllow = true
			}})
		if code, _, _ := h.do(t, "POST", "/v1/chat/completions", `{}`, retry5xx(1)); code != 200 {
			t.Errorf("client got %d", code)
		}
		h.upstreamStream(t)
		h.upstreamStream(t)
		h.stream(t)
	})
	t.Run("fail open goes on without the processor", func(t *testing.T) {
		h := newHarness(t, harnessOpts{upstreamScript: failing, config: func(c *Config) {
			c.UpstreamFilter.FailureModeAllow = true
		}})
		code, _, body := h.do(t, "POST", "/v1/chat/completions", `{"a":1}`, nil)
		if code != 200 || body != `{"ok":true}` {
			t.Errorf("client got %d %q", code, body)
		}
		if rec := h.openai.next(t); rec.body != `{"a":1}` {
			t.Errorf("upstream got %q", rec.body)
		}
		h.stream(t)
	})
	t.Run("a message timeout is a 504", func(t *testing.T) {
		h := newHarness(t, harnessOpts{
			upstreamScript: func(*extprocv3.ProcessingRequest) step { return step{hang: true} },
			config:         func(c *Config) { c.UpstreamFilter.MessageTimeout = 200 * time.Millisecond },
		})
		code, _, body := h.do(t, "POST", "/v1/chat/completions", `{}`, nil)
		if code != 504 || body != "ext_proc error" {
			t.Errorf("client got %d %q", code, body)
		}
		if rec := h.upstreamStream(t); rec.endCode != codes.Canceled {
			t.Errorf("upstream filter stream ended with %v", rec.endCode)
		}
		h.stream(t)
	})
	t.Run("a rejected mutation is a 500 even failing open", func(t *testing.T) {
		h := newHarness(t, harnessOpts{
			upstreamScript: func(req *extprocv3.ProcessingRequest) step {
				return step{resp: reply(req, &extprocv3.CommonResponse{HeaderMutation: mutation([]*corev3.HeaderValueOption{
					{Header: &corev3.HeaderValue{Key: "x-bad", Value: "v", RawValue: []byte("v")}},
				})})}
			},
			config: func(c *Config) { c.UpstreamFilter.FailureModeAllow = true },
		})
		if code, _, body := h.do(t, "GET", "/v1/models", "", nil); code != 500 || body != "ext_proc error" {
			t.Errorf("client got %d %q", code, body)
		}
		if got := h.openai.hits.Load(); got != 0 {
			t.Errorf("upstream saw %d requests", got)
		}
		h.stream(t)
	})
	t.Run("an unsupported response body mode fails the attempt", func(t *testing.T) {
		h := newHarness(t, harnessOpts{upstreamScript: func(req *extprocv3.ProcessingRequest) step {
			resp := continueAll(req).resp
			resp.ModeOverride = &filterv3.ProcessingMode{ResponseBodyMode: filterv3.ProcessingMode_BUFFERED}
			return step{resp: resp}
		}})
		if code, _, _ := h.do(t, "GET", "/v1/models", "", nil); code != 500 {
			t.Errorf("client got %d", code)
		}
		h.stream(t)
	})
}

func TestUpstreamFilterClientGone(t *testing.T) {
	h := newHarness(t, harnessOpts{upstreamScript: func(*extprocv3.ProcessingRequest) step { return step{hang: true} }})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, _ := http.NewRequestWithContext(ctx, "GET", h.front.URL+"/v1/models", nil)
		if resp, err := h.client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	var rec *streamRec
	select {
	case rec = <-h.ext.upStarted:
	case <-time.After(waitLimit):
		t.Fatal("no upstream filter stream")
	}
	cancel()
	<-done
	h.waitServed(t)
	<-rec.done
	if rec.endCode != codes.Canceled {
		t.Errorf("upstream filter stream ended with %v", rec.endCode)
	}
	if got := h.openai.hits.Load(); got != 0 {
		t.Errorf("upstream saw %d requests", got)
	}
}
