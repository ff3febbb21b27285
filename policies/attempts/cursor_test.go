package attempts

import (
	"slices"
	"testing"
)

// TestCursor: with Helicone-Retry-* and a fallback list, Helicone retries
// each entry in place (429 and 5xx) before reading the entry's last
// response against its onCodes (worker/src/routers/gatewayRouter.ts,
// fallBack, calls the forwarder per entry;
// worker/src/lib/HeliconeProxyRequest/ProxyRequestHandler.ts,
// getProviderResponse, retries with callProviderWithRetry in
// worker/src/lib/clients/ProviderClient.ts). The entry an attempt uses
// follows from the responses before it; a missing response (a reset)
// retries while the entry has retries left, else moves on.
func TestCursor(t *testing.T) {
	plan := func(onCodes ...[]CodeRange) *FallbackPlan {
		p := &FallbackPlan{}
		for _, c := range onCodes {
			p.Entries = append(p.Entries, FallbackEntry{OnCodes: c})
		}
		return p
	}
	on500 := []CodeRange{{500, 500}}
	on429 := []CodeRange{{429, 429}}
	retry3 := &RetryPolicy{Num: 3, Factor: 2, MinTimeoutMs: 1000, MaxTimeoutMs: 10000}
	const reset = -1 // no response
	for _, tc := range []struct {
		name      string
		plan      *FallbackPlan
		retry     *RetryPolicy
		responses []int
		entries   []int // of each attempt
		steps     []Step
		waits     []int
	}{
		{"429 retried in place, not in onCodes", plan(on500, on500), retry3, []int{429, 200},
			[]int{0, 0}, []Step{RetryEntry, Answer}, []int{1, 0}},
		{"retries first, then onCodes", plan(on429, on500), retry3, []int{429, 429, 429, 200},
			[]int{0, 0, 0, 1}, []Step{RetryEntry, RetryEntry, NextEntry, Answer}, []int{1, 2, 0, 0}},
		{"each entry's waits start afresh", plan(on429, nil), retry3, []int{429, 429, 429, 500, 500, 500},
			[]int{0, 0, 0, 1, 1, 1}, []Step{RetryEntry, RetryEntry, NextEntry, RetryEntry, RetryEntry, Answer}, []int{1, 2, 0, 1, 2, 0}},
		{"a status not retried moves on at once", plan([]CodeRange{{503, 503}}, nil), retry3, []int{503, 200},
			[]int{0, 1}, []Step{NextEntry, Answer}, []int{0, 0}},
		{"without retries every failure moves on", plan(on429, on429), nil, []int{429, 429},
			[]int{0, 1}, []Step{NextEntry, Answer}, []int{0, 0}},
		{"a reset retries in place", plan(on500, on500), retry3, []int{reset, 200},
			[]int{0, 0}, []Step{Answer, Answer}, []int{0, 0}},
		{"a reset without retries moves on", plan(on500, on500), nil, []int{reset, 200},
			[]int{0, 1}, []Step{Answer, Answer}, []int{0, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCursor(tc.plan, tc.retry)
			var entries, waits []int
			var steps []Step
			for i, code := range tc.responses {
				entries = append(entries, c.Attempt(i+1))
				step, secs := Answer, 0
				if code != reset {
					step, secs = c.Response(i+1, code)
				}
				steps, waits = append(steps, step), append(waits, secs)
			}
			if !slices.Equal(entries, tc.entries) || !slices.Equal(steps, tc.steps) || !slices.Equal(waits, tc.waits) {
				t.Errorf("entries %v steps %v waits %v, want %v %v %v", entries, steps, waits, tc.entries, tc.steps, tc.waits)
			}
		})
	}
	// An attempt seen first (the ones before it went out unseen, or
	// without their responses) follows from the attempts before it.
	if got := NewCursor(plan(nil, nil, nil), nil).Attempt(3); got != 2 {
		t.Errorf("attempt 3 seen first: entry %d, want 2", got)
	}
	if got := NewCursor(plan(nil, nil, nil), retry3).Attempt(2); got != 0 {
		t.Errorf("attempt 2 seen first with retries: entry %d, want 0", got)
	}
	if got := NewCursor(plan(nil, nil, nil), retry3).MaxAttempts(); got != 9 {
		t.Errorf("MaxAttempts = %d, want 3 entries × 3 attempts", got)
	}
}
