package dashboard

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, method, target string, headers map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	rr := httptest.NewRecorder()
	Handler().ServeHTTP(rr, req)
	return rr
}

// assetRefs are the /assets/ paths index.html loads.
func assetRefs(t *testing.T) []string {
	t.Helper()
	rr := get(t, "GET", "/", nil)
	refs := regexp.MustCompile(`(?:src|href)="(/assets/[^"]+)"`).FindAllStringSubmatch(rr.Body.String(), -1)
	if len(refs) < 3 {
		t.Fatalf("index.html loads %d assets, want script, stylesheet and icon:\n%s", len(refs), rr.Body)
	}
	var out []string
	for _, m := range refs {
		out = append(out, m[1])
	}
	return out
}

func TestIndexIsServedForPagePaths(t *testing.T) {
	for _, target := range []string{"/", "/index.html", "/requests", "/sessions/abc/def", "/analytics?range=7d"} {
		rr := get(t, "GET", target, nil)
		if rr.Code != http.StatusOK {
			t.Errorf("GET %s: %d", target, rr.Code)
			continue
		}
		if ct := rr.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("GET %s: Content-Type %q", target, ct)
		}
		if cc := rr.Header().Get("Cache-Control"); cc != "no-cache" {
			t.Errorf("GET %s: Cache-Control %q, want no-cache", target, cc)
		}
		if !strings.Contains(rr.Body.String(), `<script type="module" src="/assets/`) {
			t.Errorf("GET %s: not the page:\n%s", target, rr.Body)
		}
	}
}

func TestAssets(t *testing.T) {
	types := map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
	for _, ref := range assetRefs(t) {
		rr := get(t, "GET", ref, nil)
		if rr.Code != http.StatusOK || rr.Body.Len() == 0 {
			t.Errorf("GET %s: %d, %d bytes", ref, rr.Code, rr.Body.Len())
			continue
		}
		ext := ref[strings.LastIndex(ref, "."):]
		if got := rr.Header().Get("Content-Type"); got != types[ext] {
			t.Errorf("GET %s: Content-Type %q, want %q", ref, got, types[ext])
		}
		if got := rr.Header().Get("Cache-Control"); got != "public, max-age=31536000, immutable" {
			t.Errorf("GET %s: Cache-Control %q: hashed assets are immutable", ref, got)
		}
	}
}

func TestMissingFilesAre404(t *testing.T) {
	// Answering these with the page would make the browser parse HTML as
	// a script or a stylesheet.
	for _, target := range []string{"/assets/app-ZZZZZZZZ.js", "/assets/", "/favicon.ico", "/robots.txt", "/x/y.js"} {
		if rr := get(t, "GET", target, nil); rr.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", target, rr.Code)
		}
	}
}

func TestPathsStayInside(t *testing.T) {
	for _, target := range []string{"/../go.mod", "/assets/../../dashboard.go", "/%2e%2e/SOURCES.sha256", "/SOURCES.sha256"} {
		rr := get(t, "GET", target, nil)
		if rr.Code == http.StatusOK && !strings.Contains(rr.Body.String(), "<!doctype html>") {
			t.Errorf("GET %s served a file outside the site: %.80q", target, rr.Body)
		}
	}
}

func TestSecurityHeaders(t *testing.T) {
	for _, target := range []string{"/", assetRefs(t)[0], "/assets/missing.js"} {
		rr := get(t, "GET", target, nil)
		csp := rr.Header().Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("GET %s: CSP %q lacks %q", target, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe") || strings.Contains(csp, "http") || strings.Contains(csp, "*") {
			t.Errorf("GET %s: CSP %q allows more than the page's own origin", target, csp)
		}
		if got := rr.Header().Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("GET %s: X-Content-Type-Options %q", target, got)
		}
	}
}

func TestMethods(t *testing.T) {
	for _, m := range []string{"POST", "PUT", "DELETE"} {
		rr := get(t, m, "/", nil)
		if rr.Code != http.StatusMethodNotAllowed || rr.Header().Get("Allow") != "GET, HEAD" {
			t.Errorf("%s /: %d, Allow %q", m, rr.Code, rr.Header().Get("Allow"))
		}
	}
	rr := get(t, "HEAD", "/", nil)
	if rr.Code != http.StatusOK || rr.Body.Len() != 0 || rr.Header().Get("Content-Length") == "" {
		t.Errorf("HEAD /: %d, %d body bytes, Content-Length %q", rr.Code, rr.Body.Len(), rr.Header().Get("Content-Length"))
	}
}

func TestGzipAndRevalidation(t *testing.T) {
	var script string
	for _, ref := range assetRefs(t) {
		if strings.HasSuffix(ref, ".js") {
			script = ref
		}
	}
	plain := get(t, "GET", script, nil)
	zipped := get(t, "GET", script, map[string]string{"Accept-Encoding": "br, gzip;q=0.8"})
	if zipped.Header().Get("Content-Encoding") != "gzip" || !strings.Contains(zipped.Header().Get("Vary"), "Accept-Encoding") {
		t.Fatalf("gzip not negotiated: %v", zipped.Header())
	}
	zr, err := gzip.NewReader(zipped.Body)
	if err != nil {
		t.Fatal(err)
	}
	unzipped, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(unzipped, plain.Body.Bytes()) {
		t.Fatalf("gzip body does not decode to the plain one (err %v)", err)
	}
	if refused := get(t, "GET", script, map[string]string{"Accept-Encoding": "gzip;q=0"}); refused.Header().Get("Content-Encoding") != "" {
		t.Errorf("gzip;q=0 still got %q", refused.Header().Get("Content-Encoding"))
	}
	if plain.Header().Get("ETag") == zipped.Header().Get("ETag") {
		t.Errorf("plain and gzip bodies share the ETag %s", plain.Header().Get("ETag"))
	}

	index := get(t, "GET", "/", nil)
	again := get(t, "GET", "/", map[string]string{"If-None-Match": index.Header().Get("ETag")})
	if again.Code != http.StatusNotModified || again.Body.Len() != 0 {
		t.Errorf("revalidating index.html: %d with %d bytes, want 304", again.Code, again.Body.Len())
	}
}
