// What the Gate does when the store fails: degraded decisions, rate-limited
// error logging, and the stand-in for a missing Store.

package gate

import (
	"context"
	"errors"
	"time"

	"github.com/tollgate-dev/tollgate/helicone"
	"github.com/tollgate-dev/tollgate/policies/ratelimit"
)

// storeUse is what a store round trip on the request path was for.
type storeUse struct {
	cacheRead bool // a cache lookup
	limited   bool // rate-limit buckets
}

// degraded is the decision when the store failed on the request path.
func (g *Gate) degraded(d *Decision, use storeUse) *Decision {
	if use.cacheRead {
		g.m.cacheError.Inc()
	}
	if use.limited {
		if g.failClosed {
			g.m.limitFailClosed.Inc()
			return &Decision{Answer: unavailableAnswer(), FailedClosed: true}
		}
		g.m.limitFailOpen.Inc()
	}
	if d.miss {
		d.ResponseHeaders = append(d.ResponseHeaders, [2]string{helicone.CacheStatus, "MISS"})
	}
	return d
}

func unavailableAnswer() *ratelimit.Answer {
	const msg = "Rate limits cannot be checked right now (the rate-limit store is unreachable) and this gateway is configured to fail closed; retry shortly."
	return &ratelimit.Answer{Status: 503, Body: helicone.TollgateErrorBody("rate_limit_unavailable", msg), Headers: [][2]string{
		{"content-type", "application/json"},
		{helicone.XHeliconeError, "rate_limit_unavailable"},
		{"retry-after", "1"},
	}}
}

// intn is the injected random source, kept in range whatever it returns.
func (g *Gate) intn(n int) int {
	if n <= 1 {
		return 0
	}
	r := g.rand(n) % n
	if r < 0 {
		r += n
	}
	return r
}

// storeFailed counts admit errors and logs at most one store error a
// second: a Redis outage must not flood the log at the request rate.
func (g *Gate) storeFailed(op string, err error) {
	if op == "admit" {
		g.m.errAdmit.Inc()
	}
	if !g.errLog.Allow() {
		return
	}
	g.log.Warn("cache / rate-limit store call failed", "op", op, "err", err, "fail_closed", g.failClosed)
}

// noStore stands in for a missing Store: always unreachable.
type noStore struct{}

var errNoStore = errors.New("no cache / rate-limit store configured")

func (noStore) Admit(context.Context, StoreAdmit) (StoreAdmitResult, error) {
	return StoreAdmitResult{}, errNoStore
}
func (noStore) Fill(context.Context, string, int, []byte, time.Duration) (int, error) {
	return -1, errNoStore
}
func (noStore) Put(context.Context, string, int, []byte, time.Duration) error { return errNoStore }
func (noStore) Charge(context.Context, ratelimit.BucketRef, float64) error    { return errNoStore }
