package dataplane

import (
	"net/http"
	"testing"

	"github.com/google/uuid"
)

func TestPostMessagesInOrder(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	const body = `{"model":"gpt-4o-mini"}`
	code, hdr, got := h.do(t, "POST", "/v1/chat/completions?stream=false", body, map[string]string{
		"Authorization": "Bearer sk-test",
		"Content-Type":  "application/json",
		"Connection":    "keep-alive, X-Hop",
		"X-Hop":         "dropped",
	})
	if code != 200 || got != `{"ok":true}` || hdr.Get("X-Upstream") != "yes" {
		t.Fatalf("client got %d %q %v", code, got, hdr)
	}
	up := h.openai.next(t)
	if up.method != "POST" || up.path != "/v1/chat/completions?stream=false" || up.body != body {
		t.Errorf("upstream got %+v", up)
	}
	if up.host != h.openai.Listener.Addr().String() {
		t.Errorf("upstream Host = %q, want the upstream's own host", up.host)
	}
	if up.header.Get("X-Hop") != "" || up.header.Get("X-Request-Id") != "req-1" {
		t.Errorf("upstream headers %v", up.header)
	}

	rec := h.stream(t)
	diffMsgs(t, []*extprocMsg{
		wantReqHeaders(hmap(
			":method", "POST",
			":path", "/v1/chat/completions?stream=false",
			":authority", h.authority(),
			":scheme", "http",
			"authorization", "Bearer sk-test",
			"content-length", "23",
			"content-type", "application/json",
			"user-agent", "tollgate-test",
			"x-forwarded-proto", "http",
			"x-request-id", "req-1",
		), false),
		wantReqBody(body, true),
		wantRespHeaders(hmap(
			":status", "200",
			"content-length", "11",
			"content-type", "application/json",
			"x-upstream", "yes",
		), false),
		wantRespBody(`{"ok":true}`, true),
	}, rec.messages())

	// Every header value travels in raw_value only.
	for _, m := range rec.messages() {
		hs := append(m.GetRequestHeaders().GetHeaders().GetHeaders(), m.GetResponseHeaders().GetHeaders().GetHeaders()...)
		for _, v := range hs {
			if v.GetValue() != "" || v.GetRawValue() == nil {
				t.Errorf("header %q: value=%q raw_value=%q", v.GetKey(), v.GetValue(), v.GetRawValue())
			}
		}
	}
}

func TestGetWithoutBody(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	code, _, got := h.do(t, "GET", "/v1/models", "", map[string]string{"X-Multi": "a"})
	if code != 200 || got != `{"ok":true}` {
		t.Fatalf("client got %d %q", code, got)
	}
	rec := h.stream(t)
	diffMsgs(t, []*extprocMsg{
		wantReqHeaders(hmap(
			":method", "GET",
			":path", "/v1/models",
			":authority", h.authority(),
			":scheme", "http",
			"user-agent", "tollgate-test",
			"x-forwarded-proto", "http",
			"x-multi", "a",
			"x-request-id", "req-1",
		), true),
		wantRespHeaders(hmap(
			":status", "200",
			"content-length", "11",
			"content-type", "application/json",
			"x-upstream", "yes",
		), false),
		wantRespBody(`{"ok":true}`, true),
	}, rec.messages())
}

func TestRepeatedHeadersAndGeneratedRequestID(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	req, _ := http.NewRequest("GET", h.front.URL+"/v1/models", nil)
	req.Header.Set("User-Agent", "tollgate-test")
	req.Header.Add("X-Multi", "a")
	req.Header.Add("X-Multi", "b")
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	rec := h.stream(t)
	hs := rec.messages()[0].GetRequestHeaders().GetHeaders().GetHeaders()
	var multi []string
	var id string
	for _, v := range hs {
		switch v.GetKey() {
		case "x-multi":
			multi = append(multi, string(v.GetRawValue()))
		case "x-request-id":
			id = string(v.GetRawValue())
		}
	}
	if len(multi) != 2 || multi[0] != "a" || multi[1] != "b" {
		t.Errorf("x-multi = %q, want one HeaderValue per value in order", multi)
	}
	if _, err := uuid.Parse(id); err != nil {
		t.Errorf("generated x-request-id %q is not a UUID", id)
	}
	if up := h.openai.next(t); up.header.Get("X-Request-Id") != id {
		t.Errorf("upstream x-request-id = %q, want %q", up.header.Get("X-Request-Id"), id)
	}
}
