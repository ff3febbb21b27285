package dataplane

import (
	"strconv"
	"sync/atomic"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc/codes"
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
