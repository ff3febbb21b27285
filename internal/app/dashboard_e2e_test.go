package app

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// The dashboard is served at / on the HTTP port; the API keeps its paths.
func TestDevServesTheDashboard(t *testing.T) {
	d := startDev(t)
	get := func(path string) (*http.Response, string) {
		resp, err := http.Get(d.api(path))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	for _, path := range []string{"/", "/requests"} {
		resp, body := get(path)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(body, "/assets/") {
			t.Errorf("GET %s: %d %q", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
	if resp, body := get("/v1/requests"); resp.StatusCode != 503 || !strings.Contains(body, "ClickHouse") {
		t.Errorf("GET /v1/requests without ClickHouse: %d %s", resp.StatusCode, body)
	}
	if resp, _ := get("/healthz"); resp.StatusCode != 200 {
		t.Errorf("healthz: %d", resp.StatusCode)
	}
}
