// Package webhook sends each finished call to the configured webhook
// destinations, as Helicone's webhooks do: a JSON POST signed with
// Helicone-Signature (hex HMAC-SHA256 of the body under the destination's
// secret), so a receiver written for Helicone verifies Tollgate's
// deliveries unchanged (docs/webhooks.md).
//
// Nothing here runs on the request path but Submit, which picks the
// destinations of a record (tenant, property filters, sample rate) and
// hands it to each one's bounded queue without waiting: a full queue drops
// the delivery and counts it. Each destination has its own queue and
// workers, so a slow or dead receiver delays and drops only its own
// deliveries. A worker retries a delivery on a connection error, a
// timeout, a 5xx or a 429, with exponential back-off and jitter, up to a
// bounded number of attempts.
package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate-dev/tollgate/record"
)

// Options configures a Dispatcher; zero values take the defaults.
type Options struct {
	Destinations []Destination
	// Getenv reads secret-env secrets (default os.Getenv).
	Getenv func(string) string
	// QueueSize is each destination's queue, in deliveries (default 1000).
	QueueSize int
	// Workers is each destination's concurrent deliveries (default 2).
	Workers int
	// Timeout bounds one attempt, response headers included (default 10 s).
	Timeout time.Duration
	// MaxAttempts bounds the attempts of one delivery (default 5).
	MaxAttempts int
	// RetryBase is the back-off before the second attempt, doubled for
	// each later one up to RetryMax (defaults 1 s and 30 s); each wait is
	// drawn between half and all of it.
	RetryBase, RetryMax time.Duration
	// MaxBody is the largest body a payload carries (default DefaultMaxBody).
	MaxBody int

	Client     *http.Client // default: no redirects followed
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// Rand returns a number in [0, 1): sampling and jitter (default math/rand/v2).
	Rand func() float64
	// Sleep waits d or until ctx ends (back-off; tests replace it).
	Sleep func(ctx context.Context, d time.Duration) error
}

// Dispatcher delivers submitted records to their destinations.
type Dispatcher struct {
	o       Options
	global  []*target            // destinations of every tenant
	tenants map[string][]*target // a tenant's own destinations plus the global ones
	m       *metrics

	mu     sync.RWMutex // Submit holds it for reading; Close for writing
	closed bool

	ctx     context.Context // ends when Close gives up draining
	cancel  context.CancelFunc
	workers sync.WaitGroup
}

// target is one destination, ready to deliver.
type target struct {
	d            Destination
	secret       []byte
	filters      []PropertyFilter // keys lowercased, as record properties are
	rate         float64
	data, bodies bool
	queue        chan *call
	logs         logThrottle
	delivered    prometheus.Counter
	failed       prometheus.Counter
	abandoned    prometheus.Counter
	dropped      prometheus.Counter
	retries      prometheus.Counter
	depth        prometheus.Gauge
}

// New validates the destinations, reads their secrets and starts their
// workers. With no destinations it returns nil, and a nil *Dispatcher
// takes no records.
func New(o Options) (*Dispatcher, error) {
	if len(o.Destinations) == 0 {
		return nil, nil
	}
	if err := Validate(o.Destinations); err != nil {
		return nil, err
	}
	o = withDefaults(o)
	d := &Dispatcher{o: o, tenants: map[string][]*target{}, m: newMetrics(o.Registerer)}
	var own []*target
	for _, dest := range o.Destinations {
		secret, err := dest.secret(o.Getenv)
		if err != nil {
			return nil, err
		}
		t := &target{
			d: dest, secret: secret, rate: dest.sampleRate(),
			data: orTrue(dest.IncludeData), bodies: orTrue(dest.IncludeBodies),
			queue: make(chan *call, o.QueueSize),
		}
		for _, f := range dest.PropertyFilters {
			t.filters = append(t.filters, PropertyFilter{Key: strings.ToLower(f.Key), Value: f.Value})
		}
		d.m.bind(t)
		if dest.Tenant == AllTenants {
			d.global = append(d.global, t)
		} else {
			own = append(own, t)
		}
	}
	for _, t := range own {
		if d.tenants[t.d.Tenant] == nil {
			d.tenants[t.d.Tenant] = append([]*target(nil), d.global...)
		}
		d.tenants[t.d.Tenant] = append(d.tenants[t.d.Tenant], t)
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	for _, t := range append(append([]*target(nil), d.global...), own...) {
		for range o.Workers {
			d.workers.Go(func() { d.work(t) })
		}
	}
	return d, nil
}

func withDefaults(o Options) Options {
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 1000
	}
	if o.Workers <= 0 {
		o.Workers = 2
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 5
	}
	if o.RetryBase <= 0 {
		o.RetryBase = time.Second
	}
	if o.RetryMax < o.RetryBase {
		o.RetryMax = max(30*time.Second, o.RetryBase)
	}
	if o.MaxBody <= 0 {
		o.MaxBody = DefaultMaxBody
	}
	if o.Client == nil {
		o.Client = &http.Client{
			Transport: http.DefaultTransport.(*http.Transport).Clone(),
			// A redirect would send the body and its signature to an
			// address the operator did not configure.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Rand == nil {
		o.Rand = rand.Float64
	}
	if o.Sleep == nil {
		o.Sleep = sleep
	}
	return o
}

// Submit hands r to the queues of the destinations it goes to. It never
// waits: a full queue drops the delivery and counts it. It reads r and
// keeps none of it (the caller passes r on to the next sink).
func (d *Dispatcher) Submit(r *record.Record) {
	if d == nil {
		return
	}
	targets, ok := d.tenants[r.Tenant]
	if !ok {
		targets = d.global
	}
	if len(targets) == 0 {
		return
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return
	}
	var c *call
	for _, t := range targets {
		if !t.matches(r) || d.o.Rand()*100 >= t.rate {
			continue
		}
		if c == nil {
			c = newCall(r, d.o.MaxBody)
		}
		select {
		case t.queue <- c:
			t.depth.Inc()
		default:
			t.dropped.Inc()
			t.logs.warn(d.o.Logger, "webhook queue full; delivery dropped", "webhook", t.d.Name)
		}
	}
}

// matches applies the property filters: every one must equal the call's
// property of that key (Helicone's propertyFilters.every).
func (t *target) matches(r *record.Record) bool {
	for _, f := range t.filters {
		if v, ok := property(r, f.Key); !ok || v != f.Value {
			return false
		}
	}
	return true
}

// property is the call's property key (lowercase) as Helicone's filters
// see properties: the Helicone-Property-* headers, and the session and
// prompt ids and names Helicone adds to them
// (worker/src/lib/HeliconeHeaders.ts, getHeliconeProperties).
func property(r *record.Record, key string) (string, bool) {
	for _, p := range r.Properties {
		if p.Key == key {
			return p.Value, true
		}
	}
	var v string
	switch key {
	case "helicone-session-id":
		v = r.SessionID
	case "helicone-session-name":
		v = r.SessionName
	case "helicone-session-path":
		v = r.SessionPath
	case "helicone-prompt-id":
		v = r.PromptID
	}
	return v, v != ""
}

// Close stops taking records and delivers what is queued, within ctx: when
// ctx ends first, attempts in flight are cancelled and what is left is
// counted as abandoned. It returns once every worker has stopped.
func (d *Dispatcher) Close(ctx context.Context) error {
	if d == nil {
		return nil
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	for _, t := range d.all() {
		close(t.queue)
	}
	d.mu.Unlock()

	done := make(chan struct{})
	go func() { d.workers.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("webhooks: queue not drained at shutdown: %w", ctx.Err())
	}
	d.cancel() // the remaining deliveries end at once, abandoned
	<-done
	return err
}

func (d *Dispatcher) all() []*target {
	seen := map[*target]bool{}
	var out []*target
	for _, t := range d.global {
		seen[t], out = true, append(out, t)
	}
	for _, ts := range d.tenants {
		for _, t := range ts {
			if !seen[t] {
				seen[t], out = true, append(out, t)
			}
		}
	}
	return out
}

// work delivers t's queue until it is closed and empty.
func (d *Dispatcher) work(t *target) {
	for c := range t.queue {
		t.depth.Dec()
		d.deliver(t, c)
	}
}

// deliver makes up to MaxAttempts attempts to post c to t.
func (d *Dispatcher) deliver(t *target, c *call) {
	body := c.payload(t.data, t.bodies)
	signature := sign(t.secret, body)
	wait := d.o.RetryBase
	for attempt := 1; ; attempt++ {
		if d.ctx.Err() != nil {
			t.abandoned.Inc()
			return
		}
		retry, after, err := d.attempt(t, body, signature)
		switch {
		case err == nil:
			t.delivered.Inc()
			return
		case d.ctx.Err() != nil: // shutdown cut the attempt short
			t.abandoned.Inc()
			return
		}
		if !retry || attempt >= d.o.MaxAttempts {
			t.failed.Inc()
			t.logs.warn(d.o.Logger, "webhook delivery failed", "webhook", t.d.Name, "attempts", attempt, "err", err)
			return
		}
		t.retries.Inc()
		// Half of the back-off, plus up to as much again at random: replicas
		// retrying the same receiver spread out.
		pause := wait/2 + time.Duration(d.o.Rand()*float64(wait/2))
		pause = max(pause, min(after, d.o.RetryMax))
		if d.o.Sleep(d.ctx, pause) != nil {
			t.abandoned.Inc()
			return
		}
		wait = min(2*wait, d.o.RetryMax)
	}
}

// attempt posts body once. retry says whether a later attempt may succeed;
// after is the wait a Retry-After asked for. Errors never name the URL.
func (d *Dispatcher) attempt(t *target, body []byte, signature string) (retry bool, after time.Duration, err error) {
	ctx, cancel := context.WithTimeout(d.ctx, d.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.d.URL, bytes.NewReader(body))
	if err != nil {
		return false, 0, errors.New("the webhook URL cannot be requested")
	}
	req.ContentLength = int64(len(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Helicone-Signature", signature)
	req.Header.Set("User-Agent", "tollgate-webhooks")
	resp, err := d.o.Client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return true, 0, fmt.Errorf("no answer within %s", d.o.Timeout)
		}
		return true, 0, errors.New("connection failed")
	}
	drain(resp)
	switch s := resp.StatusCode; {
	case s >= 200 && s < 300:
		return false, 0, nil
	case s == http.StatusTooManyRequests || s >= 500:
		return true, retryAfter(resp.Header.Get("Retry-After")), fmt.Errorf("webhook answered HTTP %d", s)
	default:
		return false, 0, fmt.Errorf("webhook answered HTTP %d", s)
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// drain reads a little of the answer so that the connection can be reused.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// retryAfter reads a Retry-After in seconds; a date or nothing is 0.
func retryAfter(v string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n <= 0 {
		return 0
	}
	return time.Duration(n) * time.Second
}
