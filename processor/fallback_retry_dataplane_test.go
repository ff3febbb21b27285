package processor

import (
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Helicone-Retry-* with Helicone-Fallbacks on one origin, through the data
// plane as through Envoy. Helicone's gateway sends each entry through its
// forwarder (worker/src/routers/gatewayRouter.ts, fallBack), which retries
// the entry under Helicone-Retry-* — 429 and 5xx — before the loop reads the
// entry's last response against its onCodes
// (worker/src/lib/HeliconeProxyRequest/ProxyRequestHandler.ts,
// getProviderResponse; worker/src/lib/clients/ProviderClient.ts,
// callProviderWithRetry). So a retry stays on its entry; only a response in
// onCodes, once the entry's retries are spent, moves to the next one.
func TestFallbackEntriesRetriedInPlaceThroughDataPlane(t *testing.T) {
	s := time.Second
	const fallbacks = `[{"target-url": "https://api.openai.com", "headers": {"authorization": "Bearer key-0"}, "onCodes": %s}, ` +
		`{"target-url": "https://api.openai.com", "headers": {"authorization": "Bearer key-1"}, "onCodes": [500]}]`
	tests := []struct {
		name      string
		onCodes   string
		retryNum  string
		answers   map[string][]int // by key: the status of each of its attempts, the last one repeated
		wantSeen  []string
		wantCode  int
		wantIndex string
		// A retry waits Helicone's back-off; moving on waits the route's
		// own, jittered, which the harness makes its lowest, 0.
		wantWaits []time.Duration
	}{
		{name: "a 429 not in onCodes is retried on entry 0", onCodes: "[500]", retryNum: "3",
			answers:  map[string][]int{"key-0": {429, 200}, "key-1": {200}},
			wantSeen: []string{"key-0", "key-0"}, wantCode: 200, wantIndex: "0", wantWaits: []time.Duration{s}},
		{name: "entry 0's retries spent, its onCodes move on", onCodes: "[429]", retryNum: "2",
			answers:  map[string][]int{"key-0": {429}, "key-1": {200}},
			wantSeen: []string{"key-0", "key-0", "key-1"}, wantCode: 200, wantIndex: "1", wantWaits: []time.Duration{s, 0}},
		{name: "a status not retried moves on at once", onCodes: "[503]", retryNum: "3",
			answers:  map[string][]int{"key-0": {503}, "key-1": {200}},
			wantSeen: []string{"key-0", "key-1"}, wantCode: 200, wantIndex: "1", wantWaits: []time.Duration{0}},
		{name: "the last entry is retried too", onCodes: "[503]", retryNum: "2",
			answers:  map[string][]int{"key-0": {503}, "key-1": {500}},
			wantSeen: []string{"key-0", "key-1", "key-1"}, wantCode: 500, wantIndex: "1", wantWaits: []time.Duration{0, s}},
		{name: "neither retried nor in onCodes: answered", onCodes: "[500]", retryNum: "3",
			answers:  map[string][]int{"key-0": {404}, "key-1": {200}},
			wantSeen: []string{"key-0"}, wantCode: 404, wantIndex: "0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var seen []string
			front, waits := retryingDataPlane(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				key := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
				mu.Lock()
				n := 0
				for _, k := range seen {
					if k == key {
						n++
					}
				}
				seen = append(seen, key)
				mu.Unlock()
				codes := tt.answers[key]
				code := codes[min(n, len(codes)-1)]
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(code)
				if code == 200 {
					_, _ = w.Write([]byte(chatResponse))
					return
				}
				_, _ = w.Write([]byte(`{"error":{"message":"down"}}`))
			}))
			req, _ := http.NewRequest("POST", front+"/v1/chat/completions", strings.NewReader(chatBody))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer key-request")
			req.Header.Set("Helicone-Retry-Enabled", "true")
			req.Header.Set("Helicone-Retry-Num", tt.retryNum)
			req.Header.Set("Helicone-Fallbacks", strings.Replace(fallbacks, "%s", tt.onCodes, 1))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			mu.Lock()
			got := slices.Clone(seen)
			mu.Unlock()
			if !slices.Equal(got, tt.wantSeen) {
				t.Errorf("the provider saw %v, want %v", got, tt.wantSeen)
			}
			if resp.StatusCode != tt.wantCode || resp.Header.Get("Helicone-Fallback-Index") != tt.wantIndex {
				t.Errorf("client got %d, Helicone-Fallback-Index %q; want %d, %q",
					resp.StatusCode, resp.Header.Get("Helicone-Fallback-Index"), tt.wantCode, tt.wantIndex)
			}
			if g := waits(); !slices.Equal(g, tt.wantWaits) {
				t.Errorf("waits %v, want %v", g, tt.wantWaits)
			}
		})
	}
}

// The Envoy retry headers for entries retried in place: Envoy retries only
// when the upstream filter marks a response (retriable-headers), never on a
// status by itself, and may make every entry's Helicone-Retry-Num attempts.
func TestFallbackRetryInPlaceEnvoyHeaders(t *testing.T) {
	s, _ := newTestServer(t)
	step, done := startRouterStream(t, s)
	defer done()
	reply := step(reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions",
		"helicone-retry-enabled", "true", "helicone-retry-num", "3",
		"helicone-fallback", `[{"model": "gpt-4o-mini"}]`))
	set := setHeaders(reply.GetRequestHeaders().GetResponse())
	for k, want := range map[string]string{
		"x-envoy-max-retries": "5", "x-envoy-retry-on": "retriable-headers,reset,connect-failure",
		"x-envoy-retriable-header-names": fallbackNextHeader, "x-envoy-retriable-status-codes": "",
	} {
		if set[k] != want {
			t.Errorf("%s = %q, want %q", k, set[k], want)
		}
	}
}
