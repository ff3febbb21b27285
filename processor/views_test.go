package processor

import (
	"testing"
	"unsafe"
)

// A logged body within the cap is the received message's bytes (no copy);
// one over it is a copy of its first bytes, so the record waiting in the
// sink does not hold the whole body in memory.
func TestLoggedBodiesShareOnlyWhatIsKept(t *testing.T) {
	for _, tc := range []struct {
		name  string
		max   int
		share bool
	}{{"within the cap", 1 << 20, true}, {"over the cap", 16, false}} {
		s, sink := newTestServer(t, func(o *Options) { o.MaxLoggedBody = tc.max })
		req, resp := reqBody(chatBody), respBody(chatResponse, true)
		run(s, nil,
			reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions"),
			req,
			respHeaders(false, ":status", "200", "content-type", "application/json"),
			resp)
		r := sink.Records()[0]
		if got := unsafe.StringData(r.RequestBody) == &req.GetRequestBody().GetBody()[0]; got != tc.share {
			t.Errorf("%s: request body shared with the message = %v, want %v", tc.name, got, tc.share)
		}
		if got := unsafe.StringData(r.ResponseBody) == &resp.GetResponseBody().GetBody()[0]; got != tc.share {
			t.Errorf("%s: response body shared with the message = %v, want %v", tc.name, got, tc.share)
		}
		if want := min(tc.max, len(chatResponse)); len(r.ResponseBody) != want || r.ResponseBody != chatResponse[:want] {
			t.Errorf("%s: response body %q", tc.name, r.ResponseBody)
		}
	}
}
