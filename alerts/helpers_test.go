package alerts_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate-dev/tollgate/alerts"
	"github.com/tollgate-dev/tollgate/internal/testenv"
	"github.com/tollgate-dev/tollgate/record"
	"github.com/tollgate-dev/tollgate/storage/chquery"
	"github.com/tollgate-dev/tollgate/storage/chstore"
	"github.com/tollgate-dev/tollgate/storage/chstore/chtest"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// env is a private, migrated database on the shared ClickHouse, dropped
// at the end.
type env struct {
	conn driver.Conn
	db   string
	w    *chstore.Writer
	q    *chquery.Requests
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dsn, conn, db := chtest.FreshDatabase(t, "tollgate_alerts")
	return &env{conn: conn, db: db, w: chtest.Writer(t, dsn), q: chquery.NewRequests(conn, db, nil)}
}

// write stores request rows and waits until ClickHouse has them.
func (e *env) write(t *testing.T, recs ...*record.Record) {
	t.Helper()
	for _, r := range recs {
		if r.RequestID == "" {
			r.RequestID = uuid.NewString()
		}
		if r.Tenant == "" {
			r.Tenant = "acme"
		}
		if r.Status == 0 {
			r.Status = 200
		}
		e.w.Write(r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// newManager builds an evaluator on e with fast webhook retries, allowed
// to call webhooks on loopback addresses (the receivers).
func (e *env) newManager(t *testing.T, c *clock, o alerts.Options) (*alerts.Manager, *prometheus.Registry, *testenv.LogBuffer) {
	t.Helper()
	o.AllowPrivateWebhooks = true
	return e.newStrictManager(t, c, o)
}

// newStrictManager is newManager with o.AllowPrivateWebhooks as given.
func (e *env) newStrictManager(t *testing.T, c *clock, o alerts.Options) (*alerts.Manager, *prometheus.Registry, *testenv.LogBuffer) {
	t.Helper()
	reg := prometheus.NewRegistry()
	var logs *testenv.LogBuffer
	o.Logger, logs = testenv.Logger(t, "alerts log")
	store, err := chquery.NewAlerts(e.conn, e.db)
	if err != nil {
		t.Fatal(err)
	}
	o.Store, o.Metrics, o.Now, o.Registerer = store, e.q, c.Now, reg
	if o.WebhookBackoff == 0 {
		o.WebhookBackoff = time.Millisecond
	}
	m, err := alerts.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m, reg, logs
}

// delivery is one request the receiver got.
type delivery struct {
	Path    string
	EventID string
	Body    struct {
		Rule         map[string]any `json:"rule"`
		Value        float64        `json:"value"`
		Threshold    float64        `json:"threshold"`
		Window       string         `json:"window"`
		FiredAt      string         `json:"fired_at"`
		DashboardURL string         `json:"dashboard_url"`
	}
}

// receiver is a webhook endpoint that records what it gets and answers
// status (200 by default).
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	got    []delivery
	status int
	delay  time.Duration
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{status: 200}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		d := delivery{Path: r.URL.Path, EventID: r.Header.Get("X-Tollgate-Alert-Event")}
		if err := json.Unmarshal(raw, &d.Body); err != nil || r.Method != http.MethodPost ||
			r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("webhook got %s %q (%v)", r.Method, raw, err)
		}
		rc.mu.Lock()
		rc.got = append(rc.got, d)
		status, delay := rc.status, rc.delay
		rc.mu.Unlock()
		select {
		case <-time.After(delay):
		case <-r.Context().Done(): // the client gave up
			return
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.Close)
	return rc
}

// count is how many requests arrived so far.
func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.got)
}

// waitFor waits until n requests have arrived.
func (rc *receiver) waitFor(t *testing.T, n int) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, func() error {
		if got := rc.count(); got < n {
			return fmt.Errorf("%d webhook requests, want %d", got, n)
		}
		return nil
	})
}

// take returns and forgets what arrived so far.
func (rc *receiver) take() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	got := rc.got
	rc.got = nil
	return got
}

func (rc *receiver) set(status int, delay time.Duration) {
	rc.mu.Lock()
	rc.status, rc.delay = status, delay
	rc.mu.Unlock()
}

// counter reads a counter of reg, labels given as name=value pairs.
func counter(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no %s%v", name, labels)
	return 0
}

func evaluate(t *testing.T, m *alerts.Manager, c *clock, at time.Time) {
	t.Helper()
	c.set(at)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := m.EvaluateOnce(ctx); err != nil {
		t.Fatalf("EvaluateOnce at %s: %v", at.Format(time.Kitchen), err)
	}
}

func mustRule(t *testing.T, js string) alerts.Rule {
	t.Helper()
	r, err := alerts.DecodeRule([]byte(js))
	if err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	return r
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}
