package mockprovider_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/mockprovider"
)

// x-mock-end-after ends a stream cleanly after N events, without its
// terminal event: the body reads to a normal EOF, shorter than a whole
// stream, and a stream shorter than N is whole.
func TestEndAfter(t *testing.T) {
	_, url := start(t, mockprovider.Options{})
	for _, tc := range []struct{ path, body, terminal string }{
		{"/v1/chat/completions", `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}`, "[DONE]"},
		{"/v1/messages", `{"model":"claude-sonnet-4-5","stream":true,"max_tokens":64,"messages":[{"role":"user","content":"hi"}]}`, `"message_stop"`},
	} {
		_, whole := do(t, "POST", url+tc.path, tc.body)
		resp, cut := do(t, "POST", url+tc.path, tc.body, mockprovider.HeaderEndAfter, "2")
		if resp.StatusCode != 200 || len(parseSSE(t, cut)) != 2 || strings.Contains(string(cut), tc.terminal) {
			t.Errorf("%s: end-after 2 gave %d %q", tc.path, resp.StatusCode, cut)
		}
		if !strings.Contains(string(whole), tc.terminal) {
			t.Errorf("%s: whole stream %q lacks %s", tc.path, whole, tc.terminal)
		}
		if _, long := do(t, "POST", url+tc.path, tc.body, mockprovider.HeaderEndAfter, "1000"); !strings.Contains(string(long), tc.terminal) {
			t.Errorf("%s: a long end-after cut the stream: %q", tc.path, long)
		}
	}
	if resp, b := do(t, "POST", url+"/v1/chat/completions", `{"model":"m","messages":[]}`, mockprovider.HeaderEndAfter, "x"); resp.StatusCode != 400 {
		t.Errorf("bad end-after: %d %s", resp.StatusCode, b)
	}
}

// x-mock-trailer ends the response with a trailer, which an HTTP/2 client
// reads after the body.
func TestTrailer(t *testing.T) {
	srv := httptest.NewUnstartedServer(mockprovider.New(mockprovider.Options{}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	req, _ := http.NewRequest("POST", srv.URL+"/v1/messages", strings.NewReader(`{"model":"claude-sonnet-4-5","stream":true,"max_tokens":64,"messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set(mockprovider.HeaderTrailer, "X-Upstream-Status=ok")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.ProtoMajor != 2 || !strings.Contains(string(body), "message_stop") || resp.Trailer.Get("X-Upstream-Status") != "ok" {
		t.Errorf("HTTP/%d, body %q (%v), trailers %v", resp.ProtoMajor, body, err, resp.Trailer)
	}
	_, url := start(t, mockprovider.Options{})
	if resp, b := do(t, "POST", url+"/v1/messages", "{}", mockprovider.HeaderTrailer, "novalue"); resp.StatusCode != 400 {
		t.Errorf("bad trailer: %d %s", resp.StatusCode, b)
	}
}
