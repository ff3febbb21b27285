package gate_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/tollgate-dev/tollgate/helicone"
	"github.com/tollgate-dev/tollgate/internal/testenv"
	"github.com/tollgate-dev/tollgate/policies/gate"
	"github.com/tollgate-dev/tollgate/provider"
	"github.com/tollgate-dev/tollgate/storage/memstore"
	"github.com/tollgate-dev/tollgate/storage/redisstore"
)

// backend opens fresh, isolated stores of one kind: every open gets its
// own key space (a new memstore, or a new key prefix on a shared client),
// so subtests run in parallel without seeing each other.
type backend struct {
	name string
	open func(t testing.TB) gate.Store
}

func memBackend() backend {
	return backend{name: "memstore", open: func(testing.TB) gate.Store { return memstore.New(memstore.Options{}) }}
}

// redisBackend shares one client to the Redis at url between all stores it
// opens, as one Tollgate replica would.
func redisBackend(t testing.TB, name, url string) backend {
	t.Helper()
	c, err := redisstore.NewClient(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return backend{name: name, open: func(t testing.TB) gate.Store { return newRedisStore(t, c) }}
}

func newRedisStore(t testing.TB, c redis.UniversalClient) *redisstore.Store {
	t.Helper()
	s, err := redisstore.New(c, redisstore.Options{Prefix: "test-" + randomID() + ":"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// forEachBackend runs f against the in-process store and the shared Redis
// of the test environment (skipped, or failed under `make test`, when
// there is none).
func forEachBackend(t *testing.T, f func(t *testing.T, b backend)) {
	t.Run("memstore", func(t *testing.T) {
		t.Parallel()
		f(t, memBackend())
	})
	t.Run("redis", func(t *testing.T) {
		t.Parallel()
		f(t, redisBackend(t, "redis", testenv.RedisURL(t)))
	})
}

func randomID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// gateRig is a Gate with its own metrics registry and a scripted random
// source.
type gateRig struct {
	*gate.Gate
	reg  *prometheus.Registry
	mu   sync.Mutex
	pick int // what Rand returns (mod n)
}

func newRig(t testing.TB, s gate.Store, tweak ...func(*gate.Options)) *gateRig {
	t.Helper()
	r := &gateRig{reg: prometheus.NewRegistry()}
	o := gate.Options{
		Store:   s,
		Metrics: gate.NewMetrics(r.reg),
		// Generous: the race detector on a shared 2-core machine; tests of
		// the timeout itself set their own.
		Timeout:         5 * time.Second,
		CompleteTimeout: 5 * time.Second,
		Rand: func(n int) int {
			r.mu.Lock()
			defer r.mu.Unlock()
			return r.pick % n
		},
	}
	for _, f := range tweak {
		f(&o)
	}
	r.Gate = gate.New(o)
	return r
}

func (r *gateRig) setPick(n int) {
	r.mu.Lock()
	r.pick = n
	r.mu.Unlock()
}

// metric returns the value of a counter series (0 when absent).
func (r *gateRig) metric(t testing.TB, name, label, value string) float64 {
	t.Helper()
	mfs, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// call describes one request in a test.
type call struct {
	tenant  string
	url     string
	origin  string
	user    string
	headers map[string]string // any case; looked up lowercase
	body    string
}

func (c call) info() gate.RequestInfo {
	h := make(map[string]string, len(c.headers))
	for k, v := range c.headers {
		h[strings.ToLower(k)] = v
	}
	url := c.url
	if url == "" {
		url = "/v1/chat/completions"
	}
	body := c.body
	if body == "" {
		body = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello"}]}`
	}
	var hh helicone.Headers
	for k, v := range h {
		_ = hh.Add(k, v)
	}
	return gate.RequestInfo{Tenant: c.tenant, Method: "POST", URL: url, TargetOrigin: c.origin, Helicone: &hh,
		Header: func(n string) string { return h[n] }, Body: []byte(body), UserID: c.user}
}

func (c call) with(kv ...string) call {
	h := make(map[string]string, len(c.headers)+len(kv)/2)
	for k, v := range c.headers {
		h[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		h[kv[i]] = kv[i+1]
	}
	c.headers = h
	return c
}

func (r *gateRig) check(t testing.TB, c call) *gate.Decision {
	t.Helper()
	d, err := r.Check(context.Background(), c.info())
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	return d
}

// respond completes a decision with a provider answer.
func (r *gateRig) respond(d *gate.Decision, status int, body string, cost float64) {
	r.Complete(context.Background(), d, gate.ResponseInfo{
		RequestID: "req-" + body, Status: status, ContentType: "application/json", Body: []byte(body),
		Model: "gpt-4o-mini", Usage: provider.Usage{PromptTokens: 11, CompletionTokens: 7}, LatencyMs: 123, CostUSD: cost,
	})
}

// header returns the value of a header in a list ("" if absent).
func header(h [][2]string, name string) string {
	for _, kv := range h {
		if kv[0] == name {
			return kv[1]
		}
	}
	return ""
}

// cacheState summarises a decision for table comparisons: "MISS",
// "HIT:<slot>:<body>", "429", "503", "-" (cache not involved).
func cacheState(d *gate.Decision) string {
	switch {
	case d.Hit != nil:
		return "HIT:" + header(d.Answer.Headers, "helicone-cache-bucket-idx") + ":" + string(d.Answer.Body)
	case d.RateLimited:
		return "429"
	case d.FailedClosed:
		return "503"
	case header(d.ResponseHeaders, "helicone-cache") == "MISS":
		return "MISS"
	}
	return "-"
}

func TestMain(m *testing.M) {
	// go-redis logs every failed dial; the outage tests cause hundreds.
	redisstore.RouteLogs(slog.New(slog.NewTextHandler(os.Stderr, nil)))
	os.Exit(m.Run())
}
