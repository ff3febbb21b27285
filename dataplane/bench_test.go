package dataplane

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
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

// BenchmarkPlainCallUpstreamStream is a plain call (no retries, no
// fallbacks) through the proxy and a do-nothing processor, with the
// upstream-level filter on every cluster (one cluster per upstream, as
// envoy/ had it) and on the *_attempts clusters only (envoy/ now). It
// reports the processor's streams and round trips (messages answered) per
// call besides the latency.
func BenchmarkPlainCallUpstreamStream(b *testing.B) {
	const body = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello"}]}`
	for _, every := range []bool{true, false} {
		name := "two-clusters"
		if every {
			name = "every-cluster"
		}
		b.Run(name, func(b *testing.B) {
			var streams, trips atomic.Int64
			count := func(req *extprocv3.ProcessingRequest) step {
				trips.Add(1)
				if req.GetRequestHeaders() != nil && req.GetProtocolConfig() != nil {
					streams.Add(1) // each stream's first message names its modes
				}
				return continueAll(req)
			}
			h := newHarness(b, harnessOpts{script: count, upstreamScript: count,
				config: func(c *Config) { c.UpstreamFilter.EveryCluster = every }})
			client := &http.Client{Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 16}}
			b.Cleanup(client.CloseIdleConnections)
			lat := make([]time.Duration, 0, 1024)
			for b.Loop() {
				start := time.Now()
				resp, err := client.Post(h.front.URL+"/v1/chat/completions", "application/json", strings.NewReader(body))
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
			b.ReportMetric(float64(streams.Load())/float64(len(lat)), "streams/op")
			b.ReportMetric(float64(trips.Load())/float64(len(lat)), "round-trips/op")
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}
