package dataplane

import (
	"testing"
	"time"

	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestProcessorUnreachable(t *testing.T) {
	addr := freeAddr(t)
	t.Run("fail closed", func(t *testing.T) {
		h := newHarness(t, harnessOpts{procAddr: addr})
		code, _, body := h.do(t, "POST", "/v1/chat/completions", `{}`, nil)
		if code != 500 || body != "ext_proc error" {
			t.Errorf("client got %d %q", code, body)
		}
		if n := h.openai.hits.Load(); n != 0 {
			t.Errorf("upstream called %d times", n)
		}
	})
	t.Run("fail open", func(t *testing.T) {
		h := newHarness(t, harnessOpts{procAddr: addr, config: func(c *Config) { c.FailureModeAllow = true }})
		code, _, body := h.do(t, "POST", "/v1/chat/completions", `{"a":1}`, nil)
		if code != 200 || body != `{"ok":true}` {
			t.Errorf("client got %d %q", code, body)
		}
		if up := h.openai.next(t); up.body != `{"a":1}` {
			t.Errorf("upstream body %q", up.body)
		}
	})
}

func TestMessageTimeout(t *testing.T) {
	hang := func(req *extprocv3.ProcessingRequest) step {
		if kind(req) == "request_headers" {
			return step{hang: true}
		}
		return continueAll(req)
	}
	t.Run("fail closed is a 504 like current Envoy", func(t *testing.T) {
		h := newHarness(t, harnessOpts{script: hang, config: func(c *Config) { c.MessageTimeout = 200 * time.Millisecond }})
		code, _, body := h.do(t, "GET", "/v1/models", "", nil)
		if code != 504 || body != "ext_proc error" {
			t.Errorf("client got %d %q", code, body)
		}
		if n := h.openai.hits.Load(); n != 0 {
			t.Errorf("upstream called %d times", n)
		}
		if rec := h.stream(t); rec.endCode != codes.Canceled {
			t.Errorf("processor saw %v, want Canceled", rec.endCode)
		}
	})
	t.Run("fail open continues without the processor", func(t *testing.T) {
		h := newHarness(t, harnessOpts{script: hang, config: func(c *Config) {
			c.MessageTimeout = 200 * time.Millisecond
			c.FailureModeAllow = true
		}})
		code, _, body := h.do(t, "POST", "/v1/chat/completions", `{"a":1}`, nil)
		if code != 200 || body != `{"ok":true}` {
			t.Errorf("client got %d %q", code, body)
		}
		if up := h.openai.next(t); up.body != `{"a":1}` {
			t.Errorf("upstream body %q", up.body)
		}
		if got := len(h.stream(t).messages()); got != 1 {
			t.Errorf("processor got %d messages after timing out", got)
		}
	})
}

func TestSpuriousReply(t *testing.T) {
	wrongKind := func(req *extprocv3.ProcessingRequest) step {
		if kind(req) == "request_headers" {
			return step{resp: &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{
				ResponseBody: &extprocv3.BodyResponse{}}}}
		}
		return continueAll(req)
	}
	h := newHarness(t, harnessOpts{script: wrongKind})
	if code, _, body := h.do(t, "GET", "/v1/models", "", nil); code != 500 || body != "ext_proc error" {
		t.Errorf("fail closed: client got %d %q", code, body)
	}
	h.stream(t)

	h = newHarness(t, harnessOpts{script: wrongKind, config: func(c *Config) { c.FailureModeAllow = true }})
	if code, _, _ := h.do(t, "GET", "/v1/models", "", nil); code != 200 {
		t.Errorf("fail open: client got %d", code)
	}
	h.stream(t)
}

func TestUnsupportedModeOverride(t *testing.T) {
	h := newHarness(t, harnessOpts{script: func(req *extprocv3.ProcessingRequest) step {
		resp := continueAll(req).resp
		resp.ModeOverride = &filterv3.ProcessingMode{ResponseBodyMode: filterv3.ProcessingMode_FULL_DUPLEX_STREAMED}
		return step{resp: resp}
	}})
	if code, _, _ := h.do(t, "GET", "/v1/models", "", nil); code != 500 {
		t.Errorf("client got %d", code)
	}
	h.stream(t)
}

func TestProcessorEndsStream(t *testing.T) {
	t.Run("with OK status processing just stops", func(t *testing.T) {
		h := newHarness(t, harnessOpts{script: func(req *extprocv3.ProcessingRequest) step { return step{ok: true} }})
		code, _, body := h.do(t, "POST", "/v1/chat/completions", `{"a":1}`, nil)
		if code != 200 || body != `{"ok":true}` {
			t.Errorf("client got %d %q", code, body)
		}
		h.stream(t)
	})
	errorOn := func(k string) func(*extprocv3.ProcessingRequest) step {
		return func(req *extprocv3.ProcessingRequest) step {
			if kind(req) == k {
				return step{end: status.Error(codes.Internal, "processor bug")}
			}
			return continueAll(req)
		}
	}
	t.Run("with an error status in the response path, fail closed", func(t *testing.T) {
		h := newHarness(t, harnessOpts{script: errorOn("response_headers")})
		code, _, body := h.do(t, "GET", "/v1/models", "", nil)
		if code != 500 || body != "ext_proc error" {
			t.Errorf("client got %d %q", code, body)
		}
		h.stream(t)
	})
	t.Run("with an error status in the response path, fail open", func(t *testing.T) {
		h := newHarness(t, harnessOpts{script: errorOn("response_body"), config: func(c *Config) { c.FailureModeAllow = true }})
		code, _, body := h.do(t, "GET", "/v1/models", "", nil)
		if code != 200 || body != `{"ok":true}` {
			t.Errorf("client got %d %q", code, body)
		}
		h.stream(t)
	})
}
