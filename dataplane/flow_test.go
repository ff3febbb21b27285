package dataplane

import (
	"net/http"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
)

func TestHeaderMutationsEndToEnd(t *testing.T) {
	h := newHarness(t, harnessOpts{script: func(req *extprocv3.ProcessingRequest) step {
		switch kind(req) {
		case "request_headers":
			return step{resp: reply(req, &extprocv3.CommonResponse{HeaderMutation: mutation([]*corev3.HeaderValueOption{
				setHdr("x-new", "1"),
				appendHdr("x-multi", "c"),
				setHdr("x-over", "new"),
				setHdr(":authority", "evil.example"), // ignored
				setHdr("host", "evil.example"),       // ignored
				setHdr("x-envoy-custom", "3"),        // ignored (allow_envoy is off); the router would not consume it
				setHdr(":path", "/v1/responses"),     // allowed by Envoy's default rules
			}, "x-remove-me", ":path")})}
		case "response_headers":
			return step{resp: reply(req, &extprocv3.CommonResponse{HeaderMutation: mutation([]*corev3.HeaderValueOption{
				setHdr("x-resp", "added"),
				setHdr(":status", "201"),
			}, "x-upstream")})}
		}
		return continueAll(req)
	}})
	req, _ := http.NewRequest("GET", h.front.URL+"/v1/models", nil)
	req.Header.Add("X-Multi", "a")
	req.Header.Add("X-Multi", "b")
	req.Header.Set("X-Over", "old")
	req.Header.Set("X-Remove-Me", "bye")
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 || resp.Header.Get("X-Resp") != "added" || resp.Header.Get("X-Upstream") != "" {
		t.Errorf("client got %d %v", resp.StatusCode, resp.Header)
	}
	up := h.openai.next(t)
	if up.path != "/v1/responses" {
		t.Errorf("upstream path = %q", up.path)
	}
	if up.host != h.openai.Listener.Addr().String() {
		t.Errorf("upstream Host = %q", up.host)
	}
	checks := map[string][]string{
		"X-New":          {"1"},
		"X-Multi":        {"a", "b", "c"},
		"X-Over":         {"new"},
		"X-Remove-Me":    nil,
		"X-Envoy-Custom": nil,
	}
	for k, want := range checks {
		if got := up.header.Values(k); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("upstream %s = %q, want %q", k, got, want)
		}
	}
	h.stream(t)
}

func TestBothValueAndRawValueFails(t *testing.T) {
	h := newHarness(t, harnessOpts{config: func(c *Config) { c.FailureModeAllow = true }, script: func(req *extprocv3.ProcessingRequest) step {
		return step{resp: reply(req, &extprocv3.CommonResponse{HeaderMutation: mutation([]*corev3.HeaderValueOption{
			{Header: &corev3.HeaderValue{Key: "x-bad", Value: "v", RawValue: []byte("v")}},
		})})}
	}})
	code, _, body := h.do(t, "GET", "/v1/models", "", nil)
	if code != 500 || body != "ext_proc error" {
		t.Errorf("client got %d %q, want 500 even with failure_mode_allow", code, body)
	}
	if n := h.openai.hits.Load(); n != 0 {
		t.Errorf("upstream called %d times", n)
	}
	if got := len(h.stream(t).messages()); got != 1 {
		t.Errorf("processor got %d messages, want only request_headers", got)
	}
}

func TestBodyReplacement(t *testing.T) {
	const newReq = `{"model":"gpt-4o","stream":false}`
	const newResp = `{"replaced":"by the processor"}`
	h := newHarness(t, harnessOpts{script: func(req *extprocv3.ProcessingRequest) step {
		switch kind(req) {
		case "request_body":
			return step{resp: reply(req, &extprocv3.CommonResponse{BodyMutation: bodyMutation(newReq)})}
		case "response_body":
			return step{resp: reply(req, &extprocv3.CommonResponse{
				BodyMutation:   bodyMutation(newResp),
				HeaderMutation: mutation([]*corev3.HeaderValueOption{setHdr("x-redacted", "1")}),
			})}
		}
		return continueAll(req)
	}})
	code, hdr, body := h.do(t, "POST", "/v1/chat/completions", `{"model":"gpt-4o-mini"}`, nil)
	if code != 200 || body != newResp || hdr.Get("X-Redacted") != "1" {
		t.Errorf("client got %d %q %v", code, body, hdr)
	}
	if hdr.Get("Content-Length") != "31" {
		t.Errorf("client content-length = %q, want 31", hdr.Get("Content-Length"))
	}
	up := h.openai.next(t)
	if up.body != newReq || up.header.Get("Content-Length") != "33" {
		t.Errorf("upstream got body %q content-length %q", up.body, up.header.Get("Content-Length"))
	}
	h.stream(t)
}

func TestContentLengthMismatch(t *testing.T) {
	t.Run("set without body change fails", func(t *testing.T) {
		h := newHarness(t, harnessOpts{script: func(req *extprocv3.ProcessingRequest) step {
			if kind(req) == "request_body" {
				return step{resp: reply(req, &extprocv3.CommonResponse{
					HeaderMutation: mutation([]*corev3.HeaderValueOption{setHdr("content-length", "999")}),
				})}
			}
			return continueAll(req)
		}})
		code, _, body := h.do(t, "POST", "/v1/chat/completions", `{"a":1}`, nil)
		if code != 500 || body != "ext_proc error" {
			t.Errorf("client got %d %q", code, body)
		}
		if n := h.openai.hits.Load(); n != 0 {
			t.Errorf("upstream called %d times", n)
		}
		h.stream(t)
	})
	t.Run("set in request_headers then body replaced is fine", func(t *testing.T) {
		// Envoy drops content-length when the buffered body is mutated.
		h := newHarness(t, harnessOpts{script: func(req *extprocv3.ProcessingRequest) step {
			switch kind(req) {
			case "request_headers":
				return step{resp: reply(req, &extprocv3.CommonResponse{
					HeaderMutation: mutation([]*corev3.HeaderValueOption{setHdr("content-length", "999")}),
				})}
			case "request_body":
				return step{resp: reply(req, &extprocv3.CommonResponse{BodyMutation: bodyMutation("short")})}
			}
			return continueAll(req)
		}})
		code, _, _ := h.do(t, "POST", "/v1/chat/completions", `{"a":1}`, nil)
		if code != 200 {
			t.Errorf("client got %d", code)
		}
		if up := h.openai.next(t); up.body != "short" || up.header.Get("Content-Length") != "5" {
			t.Errorf("upstream got %q content-length %q", up.body, up.header.Get("Content-Length"))
		}
		h.stream(t)
	})
}

func TestImmediateResponse(t *testing.T) {
	h := newHarness(t, harnessOpts{script: func(req *extprocv3.ProcessingRequest) step {
		return step{resp: &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{
			ImmediateResponse: &extprocv3.ImmediateResponse{
				Status:  &typev3.HttpStatus{Code: typev3.StatusCode_TooManyRequests},
				Headers: mutation([]*corev3.HeaderValueOption{setHdr("retry-after", "7"), setHdr("content-type", "application/json")}),
				Body:    []byte(`{"error":"budget exceeded"}`),
				Details: "budget",
			},
		}}}
	}})
	code, hdr, body := h.do(t, "POST", "/v1/chat/completions", `{"a":1}`, nil)
	if code != 429 || body != `{"error":"budget exceeded"}` || hdr.Get("Retry-After") != "7" || hdr.Get("Content-Type") != "application/json" {
		t.Errorf("client got %d %q %v", code, body, hdr)
	}
	if n := h.openai.hits.Load(); n != 0 {
		t.Errorf("upstream called %d times", n)
	}
	rec := h.stream(t)
	if got := len(rec.messages()); got != 1 {
		t.Errorf("processor got %d messages after its immediate response, want 1", got)
	}
}

func TestContinueAndReplaceInRequestHeaders(t *testing.T) {
	h := newHarness(t, harnessOpts{script: func(req *extprocv3.ProcessingRequest) step {
		if kind(req) == "request_headers" {
			return step{resp: reply(req, &extprocv3.CommonResponse{
				Status:         extprocv3.CommonResponse_CONTINUE_AND_REPLACE,
				HeaderMutation: mutation([]*corev3.HeaderValueOption{setHdr(":method", "POST"), setHdr("content-type", "application/json")}),
				BodyMutation:   bodyMutation(`{"made":"up"}`),
			})}
		}
		return continueAll(req)
	}})
	code, _, _ := h.do(t, "GET", "/v1/models", "", nil)
	if code != 200 {
		t.Fatalf("client got %d", code)
	}
	up := h.openai.next(t)
	if up.method != "POST" || up.body != `{"made":"up"}` || up.header.Get("Content-Length") != "13" {
		t.Errorf("upstream got %+v", up)
	}
	rec := h.stream(t)
	for _, m := range rec.messages() {
		if kind(m) == "request_body" {
			t.Error("request_body sent after CONTINUE_AND_REPLACE")
		}
	}
}

func TestModeOverrideNone(t *testing.T) {
	h := newHarness(t, harnessOpts{script: func(req *extprocv3.ProcessingRequest) step {
		resp := continueAll(req).resp
		if kind(req) == "request_headers" {
			resp.ModeOverride = &filterv3.ProcessingMode{
				RequestBodyMode:  filterv3.ProcessingMode_NONE,
				ResponseBodyMode: filterv3.ProcessingMode_NONE,
			}
		}
		return step{resp: resp}
	}})
	code, _, body := h.do(t, "POST", "/v1/chat/completions", `{"a":1}`, nil)
	if code != 200 || body != `{"ok":true}` {
		t.Fatalf("client got %d %q", code, body)
	}
	if up := h.openai.next(t); up.body != `{"a":1}` {
		t.Errorf("upstream body %q", up.body)
	}
	var kinds []string
	for _, m := range h.stream(t).messages() {
		kinds = append(kinds, kind(m))
	}
	if strings.Join(kinds, ",") != "request_headers,response_headers" {
		t.Errorf("messages = %v", kinds)
	}
}

func TestModeOverrideSkipResponseHeaders(t *testing.T) {
	// An override naming only response_header_mode SKIP also turns both
	// bodies to NONE: body modes are always taken from the override.
	h := newHarness(t, harnessOpts{script: func(req *extprocv3.ProcessingRequest) step {
		resp := continueAll(req).resp
		resp.ModeOverride = &filterv3.ProcessingMode{ResponseHeaderMode: filterv3.ProcessingMode_SKIP}
		return step{resp: resp}
	}})
	if code, _, _ := h.do(t, "POST", "/v1/chat/completions", `{"a":1}`, nil); code != 200 {
		t.Fatalf("client got %d", code)
	}
	if got := len(h.stream(t).messages()); got != 1 {
		t.Errorf("processor got %d messages, want only request_headers", got)
	}
}

func TestRequestBodyTooLarge(t *testing.T) {
	h := newHarness(t, harnessOpts{config: func(c *Config) { c.MaxRequestBody = 16 }})
	code, _, body := h.do(t, "POST", "/v1/chat/completions", strings.Repeat("x", 32), nil)
	if code != 413 || body != "request body exceeds 16 bytes" {
		t.Errorf("client got %d %q", code, body)
	}
	if n := h.openai.hits.Load(); n != 0 {
		t.Errorf("upstream called %d times", n)
	}
	rec := h.stream(t)
	msgs := rec.messages()
	diffMsgs(t, []*extprocMsg{
		wantRespHeaders(hmap(":status", "413", "content-length", "29", "content-type", "text/plain"), false),
		wantRespBody("request body exceeds 16 bytes", true),
	}, msgs[1:])
}

func TestUpstreamHeaderRouting(t *testing.T) {
	other := newUpstream(t, jsonReply(`{"from":"other"}`))
	setUpstream := func(value string, clear bool) func(*extprocv3.ProcessingRequest) step {
		return func(req *extprocv3.ProcessingRequest) step {
			if kind(req) == "request_headers" {
				return step{resp: reply(req, &extprocv3.CommonResponse{
					HeaderMutation:  mutation([]*corev3.HeaderValueOption{setHdr(UpstreamHeader, value)}),
					ClearRouteCache: clear,
				})}
			}
			return continueAll(req)
		}
	}
	t.Run("with clear_route_cache", func(t *testing.T) {
		h := newHarness(t, harnessOpts{script: setUpstream(other.URL+"/prefix", true)})
		code, _, body := h.do(t, "POST", "/v1/chat/completions", `{}`, nil)
		if code != 200 || body != `{"from":"other"}` {
			t.Fatalf("client got %d %q", code, body)
		}
		up := other.next(t)
		if up.path != "/prefix/v1/chat/completions" || up.host != other.Listener.Addr().String() || up.header.Get(UpstreamHeader) != "" {
			t.Errorf("other upstream got %+v", up)
		}
		h.stream(t)
	})
	t.Run("without clear_route_cache the cached route stays", func(t *testing.T) {
		h := newHarness(t, harnessOpts{script: setUpstream(other.URL, false)})
		if code, _, _ := h.do(t, "POST", "/v1/chat/completions", `{}`, nil); code != 200 {
			t.Fatalf("client got %d", code)
		}
		if up := h.openai.next(t); up.header.Get(UpstreamHeader) != "" {
			t.Errorf("header reached the upstream: %v", up.header)
		}
		h.stream(t)
	})
	t.Run("unparsable value is a 400 through the response phases", func(t *testing.T) {
		h := newHarness(t, harnessOpts{script: setUpstream("ftp://nope", true)})
		before := other.hits.Load()
		code, _, _ := h.do(t, "POST", "/v1/chat/completions", `{}`, nil)
		if code != 400 {
			t.Errorf("client got %d", code)
		}
		if n := h.openai.hits.Load() + other.hits.Load() - before; n != 0 {
			t.Errorf("upstream called %d times", n)
		}
		if msgs := h.stream(t).messages(); kind(msgs[len(msgs)-2]) != "response_headers" {
			t.Errorf("400 did not go through the response phases: %v", msgs)
		}
	})
}

func TestAnthropicRoute(t *testing.T) {
	h := newHarness(t, harnessOpts{anthropic: jsonReply(`{"type":"message"}`), config: func(c *Config) {
		c.AnthropicUpstream += "/anthropic/"
	}})
	code, _, body := h.do(t, "POST", "/v1/messages?beta=true", `{}`, nil)
	if code != 200 || body != `{"type":"message"}` {
		t.Fatalf("client got %d %q", code, body)
	}
	if up := h.anthropic.next(t); up.path != "/anthropic/v1/messages?beta=true" {
		t.Errorf("anthropic upstream path %q", up.path)
	}
	if n := h.openai.hits.Load(); n != 0 {
		t.Errorf("openai upstream called %d times", n)
	}
	h.stream(t)
}

func TestNoProcessorIsAPlainProxy(t *testing.T) {
	h := newHarness(t, harnessOpts{noProc: true})
	code, _, body := h.do(t, "POST", "/v1/chat/completions", `{"a":1}`, nil)
	if code != 200 || body != `{"ok":true}` {
		t.Fatalf("client got %d %q", code, body)
	}
	if up := h.openai.next(t); up.body != `{"a":1}` {
		t.Errorf("upstream body %q", up.body)
	}
}
