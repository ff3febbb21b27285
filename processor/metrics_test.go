package processor

import (
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// Under --allowed-target-origins '*' a client names the origin of every
// call; the record keeps its host as the provider, but the metrics must not
// grow a series per host: 1000 hosts make one "other" series per metric
// and status class.
func TestProviderLabelsBounded(t *testing.T) {
	s, sink := newTestServer(t, func(o *Options) { o.AllowedTargetOrigins = []string{"*"} })
	const hosts = 1000
	for i := range hosts {
		run(s, nil,
			reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions", "content-type", "application/json",
				"helicone-target-url", fmt.Sprintf("https://h%d.example.com", i)),
			reqBody(chatBody),
			respHeaders(false, ":status", "200", "content-type", "application/json"), respBody(chatResponse, true))
	}
	// And one call to the provider's own origin, which keeps its name.
	run(s, nil, reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions", "content-type", "application/json"),
		reqBody(chatBody), respHeaders(false, ":status", "200", "content-type", "application/json"), respBody(chatResponse, true))
	recs := sink.Records()
	if len(recs) != hosts+1 || recs[7].Provider != "h7.example.com" {
		t.Fatalf("%d records, provider %q; want %d, the host kept in the record", len(recs), recs[7].Provider, hosts+1)
	}
	for name, n := range map[string]int{
		"calls":  testutil.CollectAndCount(s.metrics.calls),
		"tokens": testutil.CollectAndCount(s.metrics.tokens),
		"cost":   testutil.CollectAndCount(s.metrics.costUSD),
	} {
		want := 2 // other, openai
		if name == "tokens" {
			want = 4 // prompt and completion of each
		}
		if n != want {
			t.Errorf("%s: %d series, want %d", name, n, want)
		}
	}
	if n := testutil.ToFloat64(s.metrics.calls.WithLabelValues("other", "2xx")); n != hosts {
		t.Errorf("calls{provider=other} = %v, want %d", n, hosts)
	}
}
