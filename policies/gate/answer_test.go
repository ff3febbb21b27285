package gate

import (
	"slices"
	"testing"
)

// TestUnavailableAnswerGolden pins the exact bytes of the fail-closed 503.
func TestUnavailableAnswerGolden(t *testing.T) {
	a := unavailableAnswer()
	const want = `{"error":{"code":"rate_limit_unavailable","message":"Rate limits cannot be checked right now (the rate-limit store is unreachable) and this gateway is configured to fail closed; retry shortly.","type":"tollgate_error"}}`
	if string(a.Body) != want {
		t.Errorf("body\n got %s\nwant %s", a.Body, want)
	}
	wantHeaders := [][2]string{{"content-type", "application/json"}, {"x-helicone-error", "rate_limit_unavailable"}, {"retry-after", "1"}}
	if a.Status != 503 || !slices.Equal(a.Headers, wantHeaders) {
		t.Errorf("answer %d %v", a.Status, a.Headers)
	}
}
