package processor

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/dataplane"
	"github.com/tollgate-dev/tollgate/policies/attempts"
)

// retryingDataPlane puts the local data plane, with the upstream-level
// filter and the routes' retry back-off, between a client and up, and
// records the router's waits instead of waiting. Jitter is the lowest, so
// each wait is the lower bound of Envoy's interval.
func retryingDataPlane(t *testing.T, up http.Handler) (front string, waits func() []time.Duration) {
	t.Helper()
	s, _ := newTestServer(t)
	provider := httptest.NewServer(up)
	t.Cleanup(provider.Close)
	var mu sync.Mutex
	var got []time.Duration
	proxy := dataPlaneFor(t, s, dataplane.Config{
		OpenAIUpstream: provider.URL, AnthropicUpstream: provider.URL,
		MessageTimeout: 5 * time.Second, AllowEnvoyHeaderMutation: true,
		ReceivingNamespaces: []string{LinkNamespace},
		UpstreamFilter: &dataplane.UpstreamFilterConfig{Metadata: map[string]string{
			dataplane.UpstreamFilterMetadataKey: dataplane.UpstreamFilterMetadataValue},
			ForwardingNamespaces: []string{LinkNamespace}},
		RetryJitter: func(int64) int64 { return 0 },
		RetrySleep: func(ctx context.Context, d time.Duration) error {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, d)
			return ctx.Err()
		},
	})
	fs := httptest.NewServer(proxy)
	t.Cleanup(fs.Close)
	return fs.URL, func() []time.Duration {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
}

// Per-request Helicone-Retry-Factor, -Min-Timeout and -Max-Timeout shape
// the waits Envoy takes, through the data plane as through Envoy. Helicone's
// waits (worker/src/lib/clients/ProviderClient.ts, callProviderWithRetry,
// with async-retry's node-retry timeouts) are round(rand[1,2) × min ×
// factor^k) capped at max, sorted; Envoy's are random in [interval, 1.5 ×
// interval) for the interval the upstream filter sets, in whole seconds,
// never below Helicone's lower bound. Retry-Num counts attempts, and only
// 429, 500 and 522 are retried.
func TestHeliconeBackOffThroughDataPlane(t *testing.T) {
	s := time.Second
	tests := []struct {
		name         string
		headers      []string
		status       int
		retryAfter   string
		wantAttempts int32
		wantWaits    []time.Duration
		wantWarning  string
	}{
		{name: "Helicone's defaults", status: 500, wantAttempts: 5, wantWaits: []time.Duration{s, 2 * s, 4 * s, 8 * s}},
		{name: "factor, min and max", status: 429,
			headers:      []string{"helicone-retry-num", "4", "helicone-retry-factor", "3", "helicone-retry-min-timeout", "2000", "helicone-retry-max-timeout", "15000"},
			wantAttempts: 4, wantWaits: []time.Duration{2 * s, 6 * s, 15 * s}},
		{name: "factor below 1", status: 522,
			headers:      []string{"helicone-retry-num", "4", "helicone-retry-factor", "0.5", "helicone-retry-min-timeout", "4000"},
			wantAttempts: 4, wantWaits: []time.Duration{s, 2 * s, 4 * s}},
		{name: "sub-second waits are 1 s", status: 500,
			headers:      []string{"helicone-retry-num", "3", "helicone-retry-min-timeout", "100", "helicone-retry-max-timeout", "300"},
			wantAttempts: 3, wantWaits: []time.Duration{s, s}},
		{name: "a longer Retry-After", status: 429, retryAfter: "30",
			headers:      []string{"helicone-retry-num", "2"},
			wantAttempts: 2, wantWaits: []time.Duration{30 * s}},
		{name: "over the cap", status: 500,
			headers:      []string{"helicone-retry-num", "50", "helicone-retry-max-timeout", "1000"},
			wantAttempts: attempts.MaxAttempts, wantWaits: slices.Repeat([]time.Duration{s}, attempts.MaxAttempts-1),
			wantWarning: `Helicone-Retry-Num "50" is capped at 10 attempts`},
		// Helicone turns retries on for "true" only
		// (worker/src/lib/models/HeliconeHeaders.ts, getRetryHeaders).
		{name: "yes is off", status: 500, headers: []string{"helicone-retry-enabled", "yes"},
			wantAttempts: 1, wantWaits: nil, wantWarning: `Helicone-Retry-Enabled "yes" is not true or false; retries are off`},
		{name: "503 is not retried", status: 503, wantAttempts: 1, wantWaits: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hits atomic.Int32
			front, waits := retryingDataPlane(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				if tt.retryAfter != "" {
					w.Header().Set("Retry-After", tt.retryAfter)
				}
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(`{"error":{"message":"down"}}`))
			}))
			req, _ := http.NewRequest("POST", front+"/v1/chat/completions", strings.NewReader(chatBody))
			req.Header.Set("Helicone-Retry-Enabled", "true")
			for i := 0; i+1 < len(tt.headers); i += 2 {
				req.Header.Set(tt.headers[i], tt.headers[i+1])
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Errorf("client got %d, want the last attempt's %d", resp.StatusCode, tt.status)
			}
			if v := resp.Header.Get(attempts.BackOffHeader); v != "" {
				t.Errorf("%s %q reached the client", attempts.BackOffHeader, v)
			}
			if got := hits.Load(); got != tt.wantAttempts {
				t.Errorf("the provider saw %d attempts, want %d", got, tt.wantAttempts)
			}
			if got := resp.Header.Get("Helicone-Warning"); got != tt.wantWarning {
				t.Errorf("Helicone-Warning %q, want %q", got, tt.wantWarning)
			}
			if got := waits(); !slices.Equal(got, tt.wantWaits) {
				t.Errorf("waits %v, want %v", got, tt.wantWaits)
			}
		})
	}
}
