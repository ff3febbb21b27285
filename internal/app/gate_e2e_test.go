package app

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/tidwall/gjson"
	"github.com/tollgate-dev/tollgate/internal/devtest"
)

// The cache and rate limits through `tollgate dev` on the in-process store;
// the same gate on real Redis is covered in policies/ and stack_e2e_test.go.

func TestDevCacheServesRepeatsWithoutTheProvider(t *testing.T) {
	d := startDev(t)
	fills := 0.0
	for _, stream := range []bool{false, true} {
		body := fmt.Sprintf(`{"model":"gpt-4o-mini","stream":%v,"messages":[{"role":"user","content":"cache me %v"}]}`, stream, stream)
		first, second := uuid.NewString(), uuid.NewString()
		before := len(d.mock.Received())
		r1, b1 := call{path: "/v1/chat/completions", body: body, headers: map[string]string{
			"Helicone-Cache-Enabled": "true", "Helicone-Request-Id": first}}.do(t, d)
		// The entry is written after the last reply to the client: wait
		// for it, as a client's next call usually would.
		devtest.WaitForCounter(t, d.addrs["http"], "tollgate_cache_fills_total", fills+1)
		fills++
		r2, b2 := call{path: "/v1/chat/completions", body: body, headers: map[string]string{
			"Helicone-Cache-Enabled": "true", "Helicone-Request-Id": second}}.do(t, d)
		if r1.Header.Get("Helicone-Cache") != "MISS" || r2.Header.Get("Helicone-Cache") != "HIT" {
			t.Fatalf("stream=%v: cache headers %q then %q", stream, r1.Header.Get("Helicone-Cache"), r2.Header.Get("Helicone-Cache"))
		}
		if b1 != b2 || r2.Header.Get("Helicone-Id") != second {
			t.Fatalf("stream=%v: the hit differs from the original:\n%s\n---\n%s", stream, b1, b2)
		}
		if stream && !strings.HasPrefix(r2.Header.Get("content-type"), "text/event-stream") {
			t.Fatalf("a cached stream is replayed as %q", r2.Header.Get("content-type"))
		}
		if n := len(d.mock.Received()) - before; n != 1 {
			t.Fatalf("stream=%v: the provider was called %d times for two identical requests", stream, n)
		}
		// Another tenant's identical request misses.
		r3, _ := call{path: "/v1/chat/completions", body: body, headers: map[string]string{
			"Helicone-Cache-Enabled": "true", "Helicone-Auth": "Bearer other-tenant"}}.do(t, d)
		if r3.Header.Get("Helicone-Cache") != "MISS" {
			t.Fatalf("another tenant got %q", r3.Header.Get("Helicone-Cache"))
		}
	}
	records := d.records(t)
	var hits int
	for _, r := range records {
		if !r.CacheHit {
			continue
		}
		hits++
		orig := records[r.CacheReferenceID]
		if orig == nil || orig.CacheHit || r.CostUSD != 0 || orig.CostUSD <= 0 ||
			r.PromptTokens != orig.PromptTokens || r.CompletionTokens != orig.CompletionTokens || r.PromptTokens == 0 {
			t.Fatalf("hit record %+v, original %+v", r, orig)
		}
	}
	if hits != 2 {
		t.Fatalf("%d hit records, want 2", hits)
	}
}

func TestDevRateLimitRejectsOverQuota(t *testing.T) {
	d := startDev(t)
	policy := "2;w=60;s=user"
	statuses := []int{}
	var last *http.Response
	var lastBody string
	for i := 0; i < 3; i++ {
		last, lastBody = call{path: "/v1/chat/completions", body: `{"model":"gpt-4o-mini","messages":[]}`,
			headers: map[string]string{"Helicone-RateLimit-Policy": policy, "Helicone-User-Id": "bob"}}.do(t, d)
		statuses = append(statuses, last.StatusCode)
	}
	if fmt.Sprint(statuses) != "[200 200 429]" {
		t.Fatalf("statuses %v", statuses)
	}
	if last.Header.Get("X-Helicone-Error") != "rate_limited" || last.Header.Get("Helicone-RateLimit-Remaining") != "0" ||
		!strings.Contains(gjson.Get(lastBody, "error.message").String()+lastBody, "2;w=60") {
		t.Fatalf("429 headers %v body %s", last.Header, lastBody)
	}
	// Another user has their own bucket.
	other, _ := call{path: "/v1/chat/completions", body: `{"model":"gpt-4o-mini","messages":[]}`,
		headers: map[string]string{"Helicone-RateLimit-Policy": policy, "Helicone-User-Id": "carol"}}.do(t, d)
	if other.StatusCode != 200 || other.Header.Get("Helicone-RateLimit-Limit") != "2" {
		t.Fatalf("other user: %d %v", other.StatusCode, other.Header)
	}
	// A policy that does not parse is ignored, as Helicone ignores it, and
	// reported in Helicone-Warning.
	bad, body := call{path: "/v1/chat/completions", body: `{}`, headers: map[string]string{"Helicone-RateLimit-Policy": "lots"}}.do(t, d)
	if bad.StatusCode != 200 || !strings.HasPrefix(bad.Header.Get("Helicone-Warning"), "Helicone-RateLimit-Policy ") ||
		bad.Header.Get("Helicone-RateLimit-Limit") != "" {
		t.Fatalf("bad policy: %d %v %s", bad.StatusCode, bad.Header, body)
	}
	var limited int
	for _, r := range d.records(t) {
		if r.RateLimited {
			limited++
			if r.Status != 429 || r.UserID != "bob" {
				t.Fatalf("limited record %+v", r)
			}
		}
	}
	if limited != 1 {
		t.Fatalf("%d rate-limited records, want 1", limited)
	}
}
