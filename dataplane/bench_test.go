package dataplane

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// BenchmarkProxyOverhead compares a call straight to an httptest upstream with
// the same call through the proxy and a do-nothing ext_proc server (four
// processor round trips per request), and through the proxy without a
// processor. It is a check for gross overhead, not a load test: requests are
// sequential, so ns/op is latency; p50 and p99 are reported too.
func BenchmarkProxyOverhead(b *testing.B) {
	const body = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello"}]}`
	withProc := newHarness(b, harnessOpts{})
	noProc := newHarness(b, harnessOpts{noProc: true})
	client := &http.Client{Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 16}}
	b.Cleanup(client.CloseIdleConnections)

	run := func(b *testing.B, url string) {
		lat := make([]time.Duration, 0, 1024)
		for b.Loop() {
			start := time.Now()
			resp, err := client.Post(url, "application/json", strings.NewReader(body))
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatalf("status %d", resp.StatusCode)
			}
			lat = append(lat, time.Since(start))
		}
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	}
	b.Run("direct", func(b *testing.B) { run(b, withProc.openai.URL+"/v1/chat/completions") })
	b.Run("proxy", func(b *testing.B) { run(b, withProc.front.URL+"/v1/chat/completions") })
	b.Run("proxy-no-processor", func(b *testing.B) { run(b, noProc.front.URL+"/v1/chat/completions") })
}
