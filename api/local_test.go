package api

import (
	"net/http"
	"strings"
	"testing"
)

// Without an API key the API serves local clients only, and a web page in
// the developer's browser is not one: DNS rebinding brings a foreign Host,
// a cross-site form post brings text/plain, a fetch brings Origin and
// Sec-Fetch-Site.
func TestKeylessAPIRefusesBrowserAttacks(t *testing.T) {
	h := New(Options{})
	tests := []struct {
		name    string
		method  string
		headers map[string]string
		want    string // "" = allowed past the access check
	}{
		{"local curl", "GET", nil, ""},
		{"127.0.0.1 host", "GET", map[string]string{"Host": "127.0.0.1:8080"}, ""},
		{"ipv6 host", "GET", map[string]string{"Host": "[::1]:8080"}, ""},
		{"same-origin dashboard", "POST", map[string]string{"Origin": "http://localhost:8080", "Sec-Fetch-Site": "same-origin"}, ""},
		{"dns rebinding", "GET", map[string]string{"Host": "rebind.attacker.example"}, "Host header"},
		{"cross-site fetch", "GET", map[string]string{"Sec-Fetch-Site": "cross-site"}, "cross-site"},
		{"foreign origin", "POST", map[string]string{"Origin": "https://attacker.example"}, "another origin"},
		{"sandboxed origin", "POST", map[string]string{"Origin": "null"}, "another origin"},
		{"form post", "POST", map[string]string{"Content-Type": "text/plain"}, "application/json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := ""
			if tt.method == "POST" {
				body = `{"rating": true}`
			}
			rr := do(t, h, tt.method, "/v1/request/0192f0c4-5a1e-7cc0-8f00-1234567890ab/feedback", local, tt.headers, body, nil)
			if tt.method == "GET" {
				rr = do(t, h, tt.method, "/v1/requests", local, tt.headers, "", nil)
			}
			if tt.want == "" {
				if rr.Code == http.StatusForbidden {
					t.Errorf("refused: %s", rr.Body)
				}
				return
			}
			if rr.Code != http.StatusForbidden || !strings.Contains(errorMessage(t, rr), tt.want) {
				t.Errorf("%d %s, want 403 naming %q", rr.Code, rr.Body, tt.want)
			}
		})
	}
}
