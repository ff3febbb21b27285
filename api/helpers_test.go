package api

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// do sends a request to h from addr (e.g. "127.0.0.1:4000") and decodes
// a JSON answer into out (when non-nil).
func do(t *testing.T, h http.Handler, method, target, addr string, headers map[string]string, body string, out any) *httptest.ResponseRecorder {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = bytes.NewBufferString(body)
	}
	req := httptest.NewRequest(method, target, rd)
	req.RemoteAddr = addr
	req.Host = "localhost:8080" // what a local client sends (see notLocal)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range headers {
		if http.CanonicalHeaderKey(k) == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, req)
	if out != nil && rr.Code == http.StatusOK {
		if err := json.Unmarshal(rr.Body.Bytes(), out); err != nil {
			t.Fatalf("%s %s: decoding %q: %v", method, target, rr.Body.String(), err)
		}
	}
	return rr
}

const local = "127.0.0.1:40000"

// errorBody is the shape writeError writes.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// errorMessage returns the message of an error answer, in either shape:
// Tollgate's {"error": {"code", "message"}} or, on the Helicone routes,
// Helicone's {"data": null, "error": "message"}.
func errorMessage(t *testing.T, rr *httptest.ResponseRecorder) string {
	t.Helper()
	var h struct {
		Data  any     `json:"data"`
		Error *string `json:"error"`
	}
	if err := json.Unmarshal(rr.Body.Bytes(), &h); err == nil && h.Error != nil {
		return *h.Error
	}
	var e errorBody
	if err := json.Unmarshal(rr.Body.Bytes(), &e); err != nil {
		t.Fatalf("error body %q: %v", rr.Body.String(), err)
	}
	return e.Error.Message
}

func fixedClock(t0 time.Time) func() time.Time {
	return func() time.Time { return t0 }
}

func near(a, b float64) bool {
	d := a - b
	if d < 0 {
		d = -d
	}
	return d <= 1e-12+1e-9*max(abs(a), abs(b))
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
