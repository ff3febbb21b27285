package helicone_test

import (
	"testing"

	"github.com/tollgate-dev/tollgate/helicone"
)

// TestPolicyHeadersFirstWins: the raw values the policies parse keep the
// first of repeated headers, as the lookups they replaced did; an empty
// first value counts.
func TestPolicyHeadersFirstWins(t *testing.T) {
	var h helicone.Headers
	for _, kv := range [][2]string{
		{helicone.CacheEnabled, "true"}, {helicone.CacheEnabled, "false"},
		{helicone.CacheSeed, ""}, {helicone.CacheSeed, "s2"},
		{helicone.RateLimitPolicy, "10;w=60"}, {helicone.RateLimitPolicy, "1;w=60"},
		{helicone.RetryEnabled, "1"}, {helicone.RetryNum, "3"}, {helicone.RetryNum, "4"},
		{"helicone-retry-unknown", "x"},
	} {
		if err := h.Add(kv[0], kv[1]); err != nil {
			t.Fatal(err)
		}
	}
	if h.Cache != (helicone.CacheHeaders{Enabled: "true"}) || h.RateLimitPolicy != "10;w=60" ||
		h.Retry != (helicone.RetryHeaders{Enabled: "1", Num: "3"}) || len(h.Names) != 10 {
		t.Fatalf("got %+v", h)
	}
}

func TestCanonical(t *testing.T) {
	for in, want := range map[string]string{
		helicone.RateLimitPolicy:    "Helicone-RateLimit-Policy",
		helicone.TargetURL:          "Helicone-Target-URL",
		helicone.OpenAIAPIBase:      "Helicone-OpenAI-Api-Base", // Helicone's spelling, worker/src/lib/HeliconeHeaders.ts
		helicone.CacheBucketMaxSize: "Helicone-Cache-Bucket-Max-Size",
		helicone.OmitRequest:        "Helicone-Omit-Request",
		helicone.RetryMinTimeout:    "Helicone-Retry-Min-Timeout",
	} {
		if got := helicone.Canonical(in); got != want {
			t.Errorf("Canonical(%q) = %q, want %q", in, got, want)
		}
	}
}
