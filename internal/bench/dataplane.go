package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate-dev/tollgate/dataplane"
	"github.com/tollgate-dev/tollgate/helicone"
	"github.com/tollgate-dev/tollgate/mockprovider"
	"github.com/tollgate-dev/tollgate/processor"
)

// dpRun is one interleaved run: the same rate on both paths.
type dpRun struct {
	Rep    int
	Direct stats // client → mock
	Plane  stats // client → data plane (→ processor over gRPC) → mock

	CPUPerPair time.Duration // this process's CPU per direct + data plane pair
	OtherCPU   float64       // cores used by other programs meanwhile
	// StreamsPerCall is the ext_proc streams opened to the processor per
	// call through the data plane (router level plus upstream level).
	StreamsPerCall float64
}

type dpResult struct {
	Rate int // calls/s on each path
	Runs []dpRun
	Logs []string // the data plane's warnings and errors, counted
}

// medianDiff is the median over the runs of plane − direct at p50 or p99.
func (r *dpResult) medianDiff(p99 bool) time.Duration {
	return medianGap(r.Runs, p99, func(run dpRun) (stats, stats) { return run.Direct, run.Plane })
}

// dpStack is the mock provider, Tollgate's processor and the local data
// plane, all on loopback, plus one client per path.
type dpStack struct {
	directURL, planeURL string
	direct, plane       *http.Client
	streams             *atomic.Uint64 // ext_proc streams opened to the processor
	stop                func() error
}

// serveHTTP serves h on 127.0.0.1:0.
func serveHTTP(h http.Handler) (*http.Server, string, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(lis) }()
	return srv, "http://" + lis.Addr().String(), nil
}

// benchClient is one path's client: keep-alive connections enough for the
// calls in flight, no proxy from the environment, no compression.
func benchClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}}
}

// newDataPlane builds the local data plane in front of the mock (both
// providers' upstream), driving the processor behind proc over proc's gRPC
// connection. Its warnings and errors are counted by logs.
func newDataPlane(mockURL string, proc *extprocTarget, logs *logCounter, upstreamFilter bool) (http.Handler, error) {
	cfg := dataplane.Config{
		OpenAIUpstream:           mockURL,
		AnthropicUpstream:        mockURL,
		AllowEnvoyHeaderMutation: true,
		Logger:                   slog.New(logs),
	}
	if upstreamFilter {
		cfg.ReceivingNamespaces = []string{processor.LinkNamespace}
		cfg.UpstreamFilter = &dataplane.UpstreamFilterConfig{
			Metadata:             map[string]string{processor.FilterLevelMetadata: processor.FilterLevelUpstream},
			ForwardingNamespaces: []string{processor.LinkNamespace},
		}
	}
	return dataplane.New(cfg, proc.conn)
}

// logCounter is a slog.Handler for the data plane under load: it counts
// warnings and errors by message and prints only the first of each, since
// writing a line per request would be measured as data plane latency.
type logCounter struct {
	who    string // who logged, in the printed line; "" means the data plane
	w      io.Writer
	mu     sync.Mutex
	counts map[string]int
	order  []string
}

func newLogCounter(w io.Writer) *logCounter { return &logCounter{w: w, counts: map[string]int{}} }

func (l *logCounter) Enabled(_ context.Context, level slog.Level) bool {
	return level >= slog.LevelWarn
}
func (l *logCounter) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logCounter) WithGroup(string) slog.Handler      { return l }

func (l *logCounter) Handle(_ context.Context, r slog.Record) error {
	key := r.Level.String() + " " + r.Message
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.counts[key] == 0 {
		l.order = append(l.order, key)
		var attrs strings.Builder
		r.Attrs(func(a slog.Attr) bool {
			fmt.Fprintf(&attrs, " %s", a)
			return true
		})
		who := l.who
		if who == "" {
			who = "data plane"
		}
		fmt.Fprintf(l.w, "%s logged (first of its kind, the rest are counted): %s%s\n", who, key, attrs.String())
	}
	l.counts[key]++
	return nil
}

// summary lists "count × message", in order of first appearance.
func (l *logCounter) summary() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, k := range l.order {
		out = append(out, fmt.Sprintf("%d × %s", l.counts[k], k))
	}
	return out
}

func startDataPlaneStack(be *backends, logs *logCounter, upstreamFilter bool) (*dpStack, error) {
	mock, mockURL, err := serveHTTP(mockprovider.New(mockprovider.Options{}))
	if err != nil {
		return nil, err
	}
	proc, err := startTarget(targetTollgate, be)
	if err != nil {
		mock.Close()
		return nil, err
	}
	handler, err := newDataPlane(mockURL, proc, logs, upstreamFilter)
	if err != nil {
		mock.Close()
		return nil, errors.Join(err, proc.stop())
	}
	plane, planeURL, err := serveHTTP(handler)
	if err != nil {
		mock.Close()
		return nil, errors.Join(err, proc.stop())
	}
	s := &dpStack{
		directURL: mockURL + chatPath,
		planeURL:  planeURL + chatPath,
		direct:    benchClient(),
		plane:     benchClient(),
		streams:   proc.streams,
	}
	s.stop = func() error {
		s.direct.CloseIdleConnections()
		s.plane.CloseIdleConnections()
		perr := plane.Close()
		merr := mock.Close()
		return errors.Join(perr, merr, proc.stop())
	}
	return s, nil
}

const chatPath = "/v1/chat/completions"

// appHeaders are the headers the application itself sends (those of
// requestHeaderPairs that neither are pseudo-headers nor come from Envoy or
// the HTTP client).
func appHeaders() http.Header {
	h := http.Header{}
	kv := requestHeaderPairs(0, policyHigh)
	for i := 0; i+1 < len(kv); i += 2 {
		switch k := kv[i]; {
		case strings.HasPrefix(k, ":"), k == "content-length", k == "x-forwarded-proto", k == "x-request-id":
		default:
			h.Set(k, kv[i+1])
		}
	}
	return h
}

// post sends one chat completion and reads the whole answer. Through the
// data plane the answer must carry Helicone-Id, proof that the processor
// was on the path.
func post(ctx context.Context, client *http.Client, url string, header http.Header, body []byte, viaPlane bool) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header = header.Clone()
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	d := time.Since(start)
	switch {
	case err != nil:
		return 0, fmt.Errorf("reading the body: %w", err)
	case resp.StatusCode != http.StatusOK:
		return 0, fmt.Errorf("status %d", resp.StatusCode)
	case n == 0:
		return 0, errors.New("empty body")
	case viaPlane && resp.Header.Get(helicone.ResponseID) == "":
		return 0, errors.New("no Helicone-Id on the answer: the processor was not on the path")
	}
	return d, nil
}

// runDataPlaneScenario does reps interleaved runs at one rate, each on a
// fresh stack. Even calls go to the mock directly, odd ones through the data
// plane, so both paths see the same machine at the same moments.
func runDataPlaneScenario(ctx context.Context, cfg *config, be *backends, pr *progress, rate int) (*dpResult, error) {
	res := &dpResult{Rate: rate}
	logs := newLogCounter(pr.w)
	defer func() { res.Logs = logs.summary() }()
	// A new body for every call, on both paths: each call through the data
	// plane is a cache MISS (filled after the response), as in extproc.
	var seq atomic.Uint64
	header := appHeaders()
	for rep := range cfg.Reps {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		s, err := startDataPlaneStack(be, logs, cfg.UpstreamFilter)
		if err != nil {
			return nil, fmt.Errorf("data plane %d/s: starting: %w", rate, err)
		}
		do := func(ctx context.Context, i int) (time.Duration, error) {
			body := chatRequestBodyN(false, seq.Add(1))
			if i%2 == 0 {
				return post(ctx, s.direct, s.directURL, header, body, false)
			}
			return post(ctx, s.plane, s.planeURL, header, body, true)
		}
		openLoop(ctx, float64(2*rate), warmupFor(cfg.Duration), do)
		runtime.GC()
		c0, s0 := takeCPU(), s.streams.Load()
		samples := openLoop(ctx, float64(2*rate), cfg.Duration, do)
		c1, s1 := takeCPU(), s.streams.Load()
		if err := s.stop(); err != nil {
			return nil, fmt.Errorf("data plane %d/s: stopping: %w", rate, err)
		}
		run := dpRun{
			Rep:    rep + 1,
			Direct: summarize(samples, func(i int) bool { return i%2 == 0 }),
			Plane:  summarize(samples, func(i int) bool { return i%2 == 1 }),
		}
		// CPU is per pair of calls (one direct, one through the data plane).
		run.CPUPerPair = cpuPerCall(c0, c1, len(samples)/2)
		run.OtherCPU = otherCPU(c0, c1)
		if n := run.Plane.Calls; n > 0 {
			run.StreamsPerCall = float64(s1-s0) / float64(n)
		}
		res.Runs = append(res.Runs, run)
		pr.printf("dataplane %d/s rep %d  direct %d calls p50 %s p99 %s  plane %d calls p50 %s p99 %s  errors %d/%d%s%s%s",
			rate, rep+1, run.Direct.Calls, ms(run.Direct.P50), ms(run.Direct.P99),
			run.Plane.Calls, ms(run.Plane.P50), ms(run.Plane.P99), run.Direct.Errors, run.Plane.Errors,
			busyNote(stats{OtherCPU: run.OtherCPU}), errSuffix(run.Direct), errSuffix(run.Plane))
	}
	return res, nil
}
