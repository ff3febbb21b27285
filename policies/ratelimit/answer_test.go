package ratelimit_test

import (
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/policies/ratelimit"
)

// TestLimitedAnswerGolden pins the exact bytes of the 429: clients and
// dashboards match on them, and the body is built by hand on the hot path.
// Helicone: worker/src/lib/ResponseBuilder.ts (buildRateLimitedResponse) —
// a JSON object with a single "message".
func TestLimitedAnswerGolden(t *testing.T) {
	for _, c := range []struct{ policy, body string }{
		{"10;w=60", `{"message":"Rate limit reached: Helicone-RateLimit-Policy 10;w=60 allows 10 requests per 60 s; retry in 2 s."}`},
		// A property name may hold '&', which is written as is.
		{"500;w=3600;u=cents;s=a&b", `{"message":"Rate limit reached: Helicone-RateLimit-Policy 500;w=3600;u=cents;s=a&b allows 500 cents per 3600 s for each value of Helicone-Property-a&b; retry in 2 s."}`},
	} {
		p, err := ratelimit.Parse(c.policy)
		if err != nil {
			t.Fatal(err)
		}
		a := p.LimitedAnswer(ratelimit.BucketOutcome{Remaining: 0.5, Wait: 1500 * time.Millisecond})
		if string(a.Body) != c.body {
			t.Errorf("%s: body\n got %s\nwant %s", c.policy, a.Body, c.body)
		}
		if a.Status != 429 {
			t.Errorf("%s: status %d", c.policy, a.Status)
		}
	}
}
