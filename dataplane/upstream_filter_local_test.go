package dataplane

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

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
