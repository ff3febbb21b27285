package dataplane

import (
	"net/http"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// selectAttempts answers the router-level request_headers by setting
// AttemptsHeader, as Tollgate's processor does for a call with retries or
// fallbacks, with or without clear_route_cache.
func selectAttempts(clear bool) func(req *extprocv3.ProcessingRequest) step {
	return func(req *extprocv3.ProcessingRequest) step {
		if req.GetRequestHeaders() != nil {
			return step{resp: reply(req, &extprocv3.CommonResponse{
				HeaderMutation:  mutation([]*corev3.HeaderValueOption{setHdr(AttemptsHeader, "1")}),
				ClearRouteCache: clear,
			})}
		}
		return continueAll(req)
	}
}

// Two clusters per upstream, as envoy/*.yaml: the upstream filter runs only
// on the *_attempts route, which the route table picks when AttemptsHeader
// is there at routing time: on arrival, or after a reply that clears the
// route cache. Neither header nor a first attempt's count leaves the plain
// route; a retry's count does, as Envoy's router sets it again after the
// route's removals.
func TestUpstreamFilterOnlyOnTheAttemptsRoute(t *testing.T) {
	tests := []struct {
		name         string
		script       func(req *extprocv3.ProcessingRequest) step
		early        bool // Tollgate's early header mutation
		noFilter     bool // no upstream filter configured at all
		headers      map[string]string
		wantStreams  int      // upstream-level streams
		wantCounts   []string // x-envoy-attempt-count at the upstream, per attempt
		wantAttempts int
	}{
		{name: "plain route", script: continueAll, wantCounts: []string{""}},
		{name: "selected with clear_route_cache", script: selectAttempts(true), wantStreams: 1, wantCounts: []string{"1"}},
		{name: "selected without clear_route_cache: the cached route stays", script: selectAttempts(false), wantCounts: []string{""}},
		{name: "a client's header, removed before routing", script: continueAll, early: true,
			headers: map[string]string{AttemptsHeader: "1"}, wantCounts: []string{""}},
		// Without the early header mutation a client picks the route, as in
		// Envoy; Tollgate's processor then removes the header and clears the
		// route cache (processor/request.go).
		{name: "a client's header without the early removal", script: continueAll,
			headers: map[string]string{AttemptsHeader: "1"}, wantStreams: 1, wantCounts: []string{"1"}},
		{name: "retries on the plain route", script: continueAll, headers: retry5xx(1), wantCounts: []string{"", "2"}},
		{name: "retries on the attempts route", script: selectAttempts(true), headers: retry5xx(1),
			wantStreams: 2, wantCounts: []string{"1", "2"}},
		// The router overwrites a client's count before the plain route
		// removes it, and before the upstream filter sees it.
		{name: "a client's count on the plain route", script: continueAll,
			headers: map[string]string{retryAttemptCount: "7"}, wantCounts: []string{""}},
		{name: "a client's count on the attempts route", script: selectAttempts(true),
			headers: map[string]string{retryAttemptCount: "7"}, wantStreams: 1, wantCounts: []string{"1"}},
		// The plain routes drop the count whether or not any cluster has
		// the upstream filter.
		{name: "no upstream filter", script: continueAll, noFilter: true, wantCounts: []string{""}},
		{name: "retries without an upstream filter", script: continueAll, noFilter: true,
			headers: retry5xx(1), wantCounts: []string{"", "2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{
				script:         tt.script,
				upstreamScript: continueAll,
				upstream:       textReply(503, "down"),
				config: func(c *Config) {
					fastRetries(c)
					c.UpstreamFilter.EveryCluster = false
					if tt.noFilter {
						c.UpstreamFilter = nil
					}
					if tt.early {
						c.EarlyRemoveHeaders = EarlyRemovedHeaders
					}
				},
			})
			if code, _, _ := h.do(t, "POST", "/v1/chat/completions", `{"a":1}`, tt.headers); code != http.StatusServiceUnavailable {
				t.Fatalf("client got %d", code)
			}
			if got := len(h.ext.upStarted); got != tt.wantStreams {
				t.Errorf("%d upstream-level streams, want %d", got, tt.wantStreams)
			}
			for n, rec := range attemptsOf(t, h.openai, len(tt.wantCounts)) {
				if got := rec.header.Get(retryAttemptCount); got != tt.wantCounts[n] {
					t.Errorf("attempt %d: x-envoy-attempt-count %q, want %q", n+1, got, tt.wantCounts[n])
				}
				if got := rec.header.Get(AttemptsHeader); got != "" {
					t.Errorf("attempt %d: %s %q reached the upstream", n+1, AttemptsHeader, got)
				}
			}
		})
	}
}

const retryAttemptCount = "X-Envoy-Attempt-Count"
