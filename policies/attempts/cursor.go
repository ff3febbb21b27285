package attempts

import "slices"

// Step is what an attempt's response asks for.
type Step int8

const (
	Answer     Step = iota // the response goes to the client
	RetryEntry             // the same entry again, after a back-off
	NextEntry              // the next entry of the list
)

// Cursor follows which entry of a fallback plan each attempt uses when
// entries are retried in place. Helicone's gateway sends each entry through
// its forwarder, which retries the entry under Helicone-Retry-* (429 and
// 5xx) before the fallback loop reads the entry's last response against
// its onCodes (worker/src/routers/gatewayRouter.ts, fallBack;
// worker/src/lib/HeliconeProxyRequest/ProxyRequestHandler.ts,
// getProviderResponse; worker/src/lib/clients/ProviderClient.ts,
// callProviderWithRetry). So the attempt number alone does not say which
// entry an attempt is: the responses before it do.
//
// Envoy's router makes one attempt at a time, the next only once the last
// is over, so a Cursor sees Attempt and Response alternate. It is not safe
// for concurrent use: the caller holds a lock.
type Cursor struct {
	plan  *FallbackPlan
	retry *RetryPolicy // nil: no retries in place

	attempt int // the latest attempt seen (Envoy's count, from 1)
	entry   int // its fallback index
	retries int // retries of that entry before it
	step    Step
	stepFor int // the attempt whose response chose step
}

// NewCursor follows plan; retry (nil: none) retries each entry in place.
func NewCursor(plan *FallbackPlan, retry *RetryPolicy) *Cursor {
	return &Cursor{plan: plan, retry: retry}
}

// MaxAttempts is how many attempts a plan retried in place can make in
// all: every entry as many times as Helicone-Retry-Num says, as at
// Helicone.
func (c *Cursor) MaxAttempts() int {
	per := 1
	if c.retry != nil {
		per = c.retry.Retries() + 1
	}
	return (c.plan.Retries() + 1) * per
}

// Attempt starts attempt n and returns its fallback index. The entry moves
// on only when the last response asked for it; a retry keeps it. An
// attempt after one that got no response (a reset, a connection failure)
// retries the entry while it has retries left, else moves on, as Envoy's
// retry on reset and connect-failure did before entries were retried in
// place.
func (c *Cursor) Attempt(n int) int {
	switch {
	case n <= 1:
		c.entry, c.retries = 0, 0
	case n > c.attempt:
		// Each attempt k before n hands over to k+1 as its response said.
		for k := max(c.attempt, 1); k < n; k++ {
			switch {
			case c.stepFor == k && c.step == RetryEntry:
				c.retries++
			case c.stepFor == k && c.step == NextEntry:
				c.entry, c.retries = c.entry+1, 0
			case c.retryLeft() || c.entry >= c.plan.Retries():
				c.retries++
			default:
				c.entry, c.retries = c.entry+1, 0
			}
		}
	}
	c.attempt = max(n, 1)
	return c.entry
}

// WantsResponse reports whether the latest attempt's response can ask for
// another attempt: an entry follows, or a retry of this one is left.
func (c *Cursor) WantsResponse() bool {
	return c.entry < c.plan.Retries() || c.retryLeft()
}

// Response decides what attempt n's response, of status code, asks for.
// A retry status is retried in place while the entry has retries left;
// then the entry's onCodes decide whether the next entry answers. For
// RetryEntry, secs is the wait before the retry (RetryPolicy.BackOffSeconds,
// counted from the entry's first attempt, as each entry's retries start
// afresh at Helicone).
func (c *Cursor) Response(n, code int) (step Step, secs int) {
	if n != c.attempt {
		return Answer, 0 // not the latest attempt: nothing is decided for it
	}
	switch {
	case c.retryLeft() && slices.Contains(RetryStatusCodes, code):
		secs, _ = c.retry.BackOffSeconds(c.retries + 1)
		step = RetryEntry
	case c.plan.MovesOn(c.entry, code):
		step = NextEntry
	}
	c.step, c.stepFor = step, n
	return step, secs
}

func (c *Cursor) retryLeft() bool {
	return c.retry != nil && c.retries < c.retry.Retries()
}
