package processor

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tollgate-dev/tollgate/dataplane"
	"github.com/tollgate-dev/tollgate/record"
)

// streamCount counts the processor's ext_proc streams by filter level.
type streamCount struct{ router, upstream atomic.Int32 }

func (n *streamCount) intercept(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if isUpstreamFilter(ss.Context()) {
		n.upstream.Add(1)
	} else {
		n.router.Add(1)
	}
	return h(srv, ss)
}

// countingDataPlane is the data plane as tollgate dev configures it (the
// link namespace, the upstream filter on the *_attempts clusters only, the
// early removals), in front of provider, with the processor's streams
// counted. The router never waits between attempts.
func countingDataPlane(t testing.TB, s *Server, provider http.Handler, early []string, everyCluster bool) (front string, n *streamCount) {
	t.Helper()
	n = &streamCount{}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.StreamInterceptor(n.intercept))
	extprocv3.RegisterExternalProcessorServer(srv, s)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(),
		append(dataplane.DialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	up := httptest.NewServer(provider)
	t.Cleanup(up.Close)
	proxy, err := dataplane.New(dataplane.Config{
		OpenAIUpstream: up.URL, AnthropicUpstream: up.URL,
		MessageTimeout: 5 * time.Second, AllowEnvoyHeaderMutation: true,
		EarlyRemoveHeaders:  early,
		ReceivingNamespaces: []string{LinkNamespace},
		UpstreamFilter: &dataplane.UpstreamFilterConfig{
			Metadata:             map[string]string{FilterLevelMetadata: FilterLevelUpstream},
			ForwardingNamespaces: []string{LinkNamespace},
			EveryCluster:         everyCluster,
		},
		RetrySleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() },
	}, conn)
	if err != nil {
		t.Fatal(err)
	}
	fs := httptest.NewServer(proxy)
	t.Cleanup(fs.Close)
	return fs.URL, n
}

// A call without retries or fallbacks opens one ext_proc stream, the
// router-level one; one with them opens an upstream-level stream per
// attempt, as before. Neither the selector nor Envoy's attempt count
// reaches the provider: the upstream filter removes the count on the
// *_attempts route, the plain route on its own.
func TestUpstreamStreamOnlyForCallsThatNeedIt(t *testing.T) {
	tests := []struct {
		name         string
		headers      map[string]string
		early        []string // the early header mutation's removals
		firstStatus  int      // the provider's first answer; later ones are 200
		wantUpstream int32
		wantAttempts int
	}{
		{name: "plain call", firstStatus: 200, early: dataplane.EarlyRemovedHeaders, wantAttempts: 1},
		{name: "plain call that failed", firstStatus: 500, early: dataplane.EarlyRemovedHeaders, wantAttempts: 1},
		{name: "a client's selector, removed before routing", early: dataplane.EarlyRemovedHeaders,
			headers: map[string]string{attemptsHeader: "1"}, firstStatus: 200, wantAttempts: 1},
		{name: "a client's selector, removed by the processor",
			headers: map[string]string{attemptsHeader: "1"}, firstStatus: 200, wantAttempts: 1},
		{name: "retries", early: dataplane.EarlyRemovedHeaders,
			headers:     map[string]string{"Helicone-Retry-Enabled": "true", "Helicone-Retry-Num": "3"},
			firstStatus: 500, wantUpstream: 2, wantAttempts: 2},
		{name: "retries not needed", early: dataplane.EarlyRemovedHeaders,
			headers:     map[string]string{"Helicone-Retry-Enabled": "true"},
			firstStatus: 200, wantUpstream: 1, wantAttempts: 1},
		{name: "fallback", early: dataplane.EarlyRemovedHeaders,
			headers:     map[string]string{"Helicone-Fallback": `[{"model": "gpt-4o"}]`},
			firstStatus: 500, wantUpstream: 2, wantAttempts: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var leaked []string
			var attempts atomic.Int32
			s, _ := newTestServer(t)
			front, n := countingDataPlane(t, s, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for _, h := range []string{attemptsHeader, attemptCountHeader, "x-tollgate-upstream"} {
					if v := r.Header.Get(h); v != "" {
						mu.Lock()
						leaked = append(leaked, h+": "+v)
						mu.Unlock()
					}
				}
				w.Header().Set("Content-Type", "application/json")
				if attempts.Add(1) == 1 && tt.firstStatus != 200 {
					w.WriteHeader(tt.firstStatus)
					_, _ = w.Write([]byte(`{"error":{"message":"down"}}`))
					return
				}
				_, _ = w.Write([]byte(chatResponse))
			}), tt.early, false)
			req, _ := http.NewRequest("POST", front+"/v1/chat/completions", strings.NewReader(chatBody))
			req.Header.Set("Content-Type", "application/json")
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if got := int(attempts.Load()); got != tt.wantAttempts {
				t.Errorf("the provider got %d attempts, want %d", got, tt.wantAttempts)
			}
			if r, u := n.router.Load(), n.upstream.Load(); r != 1 || u != tt.wantUpstream {
				t.Errorf("ext_proc streams: %d router-level, %d upstream-level; want 1 and %d", r, u, tt.wantUpstream)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(leaked) > 0 {
				t.Errorf("internal headers reached the provider: %v", leaked)
			}
		})
	}
}

// BenchmarkPlainCallStreams is a plain chat completion through the data
// plane and this processor (in-process stores, a memory sink), with the
// upstream-level filter on every cluster as envoy/ had it, and on the
// *_attempts clusters only as now: ext_proc streams per call and latency.
func BenchmarkPlainCallStreams(b *testing.B) {
	for _, every := range []bool{true, false} {
		name := "two-clusters"
		if every {
			name = "every-cluster"
		}
		b.Run(name, func(b *testing.B) {
			s := New(Options{Sink: record.NewMemory()})
			front, n := countingDataPlane(b, s, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(chatResponse))
			}), dataplane.EarlyRemovedHeaders, every)
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
			b.Cleanup(client.CloseIdleConnections)
			lat := make([]time.Duration, 0, 1024)
			for b.Loop() {
				start := time.Now()
				resp, err := client.Post(front+"/v1/chat/completions", "application/json", strings.NewReader(chatBody))
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("status %d", resp.StatusCode)
				}
				lat = append(lat, time.Since(start))
			}
			slices.Sort(lat)
			calls := float64(len(lat))
			b.ReportMetric(float64(n.router.Load()+n.upstream.Load())/calls, "streams/op")
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}
