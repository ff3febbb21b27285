package api

import (
	"net/http/httptest"
	"testing"
)

// TestWriteErrorGolden pins the exact bytes of the API's error replies,
// escaping and the trailing newline included.
func TestWriteErrorGolden(t *testing.T) {
	for _, c := range []struct{ code, msg, body string }{
		{"not_found", "no request 0190", `{"error":{"code":"not_found","message":"no request 0190"}}` + "\n"},
		{"invalid_body", "<b>&\"\\\n\t\x01é\u2028\xff", `{"error":{"code":"invalid_body","message":"\u003cb\u003e\u0026\"\\\n\t\u0001é\u2028\ufffd"}}` + "\n"},
	} {
		w := httptest.NewRecorder()
		writeError(w, 400, c.code, c.msg)
		if got := w.Body.String(); got != c.body {
			t.Errorf("body\n got %s\nwant %s", got, c.body)
		}
		if w.Code != 400 || w.Header().Get("Content-Type") != "application/json" {
			t.Errorf("status %d, content-type %q", w.Code, w.Header().Get("Content-Type"))
		}
	}
}
