package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tollgate-dev/tollgate/internal/testenv"
	"github.com/tollgate-dev/tollgate/record"
)

const secret = "whsec-test-secret"

// receiver is a webhook endpoint on 127.0.0.1 that checks each delivery as
// Helicone's documented receiver does and answers with answer(n) for the
// nth request (1-based).
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	answer func(n int, r *http.Request) int

	mu     sync.Mutex
	bodies []string
	got    chan string // request_id of each request, as it arrives
}

func newReceiver(t *testing.T, answer func(n int, r *http.Request) int) *receiver {
	rc := &receiver{t: t, answer: answer, got: make(chan string, 100)}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	rc.bodies = append(rc.bodies, string(body))
	n := len(rc.bodies)
	rc.mu.Unlock()
	if !verifyLikeHelicone(body, r.Header.Get("Helicone-Signature"), secret) {
		rc.t.Errorf("signature %q does not verify for %s", r.Header.Get("Helicone-Signature"), body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		rc.t.Errorf("Content-Type %q", ct)
	}
	var p struct {
		RequestID string `json:"request_id"`
	}
	_ = json.Unmarshal(body, &p)
	rc.got <- p.RequestID
	code := http.StatusOK
	if rc.answer != nil {
		code = rc.answer(n, r)
	}
	w.WriteHeader(code)
}

func (rc *receiver) requests() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]string(nil), rc.bodies...)
}

// verifyLikeHelicone checks a delivery the two ways Helicone's receivers
// do. Helicone's sender (valhalla/jawn/src/lib/clients/webhookSender.ts)
// signs the body it sends: hex HMAC-SHA256 under the webhook's key, in
// Helicone-Signature; a receiver hashing the raw body (Helicone's Python
// example) checks exactly that. The documented Node receiver
// (docs/features/webhooks.mdx: createHmac("sha256", secret)
// .update(JSON.stringify(payload)).digest("hex"), compared with
// timingSafeEqual) hashes the parsed body written out again by JavaScript;
// appendJSJSON is that rewrite (its test holds it to Node's output).
func verifyLikeHelicone(body []byte, signature, key string) bool {
	raw := hmac.New(sha256.New, []byte(key))
	raw.Write(body)
	rewritten, err := appendJSJSON(nil, string(body))
	if err != nil {
		return false
	}
	js := hmac.New(sha256.New, []byte(key))
	js.Write(rewritten)
	got, err := hex.DecodeString(signature)
	return err == nil && hmac.Equal(got, raw.Sum(nil)) && hmac.Equal(got, js.Sum(nil))
}

// sleeps records the back-off waits and returns at once, unless the
// dispatcher is shutting down.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

func secretFile(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func dest(t *testing.T, name, url, tenant string) Destination {
	return Destination{Name: name, URL: url, Tenant: tenant, SecretFile: secretFile(t)}
}

func start(t *testing.T, o Options) (*Dispatcher, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	o.Registerer = reg
	if o.Logger == nil {
		o.Logger, _ = testenv.Logger(t, "webhook log")
	}
	if o.Sleep == nil {
		o.Sleep = new(sleeps).sleep
	}
	d, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close(context.Background()) })
	return d, reg
}

func count(t *testing.T, d *Dispatcher, name, result string) float64 {
	t.Helper()
	return testutil.ToFloat64(d.m.deliveries.WithLabelValues(name, result))
}

func rec(id, tenant string) *record.Record {
	return &record.Record{
		RequestID: id, Tenant: tenant, UserID: "user-1", Provider: "openai",
		Model: "gpt-4o-mini", ResponseModel: "gpt-4o-mini-2024-07-18",
		PromptTokens: 13, CompletionTokens: 17, CostUSD: 0.0002025, LatencyMs: 930,
		RequestBody:  `{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "<hi> & bye"}]}`,
		ResponseBody: `{"id":"chatcmpl-1","choices":[{"message":{"content":"hello"}}],"usage":{"prompt_tokens":13}}`,
	}
}

// waitFor waits until cond holds; the bound only turns a hang into a
// failure, nothing is timed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestDeliveryHasHeliconesShapeAndSignature(t *testing.T) {
	rc := newReceiver(t, nil)
	d, _ := start(t, Options{Destinations: []Destination{dest(t, "hook", rc.srv.URL, "acme")}})
	d.Submit(rec("req-1", "acme"))
	if err := d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := rc.requests()
	if len(got) != 1 {
		t.Fatalf("%d deliveries", len(got))
	}
	want := `{"request_id":"req-1",` +
		`"request_body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"<hi> & bye"}]},` +
		`"response_body":{"id":"chatcmpl-1","choices":[{"message":{"content":"hello"}}],"usage":{"prompt_tokens":13}},` +
		`"user_id":"user-1","model":"gpt-4o-mini-2024-07-18","provider":"OPENAI",` +
		`"metadata":{"cost":0.0002025,"promptTokens":13,"completionTokens":17,"totalTokens":30,"latencyMs":930}}`
	if got[0] != want {
		t.Errorf("payload\n got %s\nwant %s", got[0], want)
	}
	if n := count(t, d, "hook", resultDelivered); n != 1 {
		t.Errorf("delivered %v", n)
	}
}

func TestPayloadOptions(t *testing.T) {
	r := rec("req-2", "acme")
	r.UserID, r.ResponseBody = "", "data: {\"x\":1}\n\n"
	r.RequestBody = strings.Repeat("a", 20)
	c := newCall(r, 16)
	if got, want := string(c.payload(false, true)),
		`{"request_id":"req-2","request_body":"`+tooLarge+`","response_body":"data: {\"x\":1}\n\n"}`; got != want {
		t.Errorf("without data\n got %s\nwant %s", got, want)
	}
	if got, want := string(c.payload(false, false)), `{"request_id":"req-2","request_body":"","response_body":""}`; got != want {
		t.Errorf("without bodies\n got %s\nwant %s", got, want)
	}
	if c.requestBody != "" {
		t.Error("a body over the limit is kept in the queue")
	}
}

func TestRetriesOn500Then200(t *testing.T) {
	rc := newReceiver(t, func(n int, _ *http.Request) int {
		switch n {
		case 1:
			return http.StatusInternalServerError
		case 2:
			return http.StatusTooManyRequests
		}
		return http.StatusOK
	})
	sl := new(sleeps)
	d, _ := start(t, Options{
		Destinations: []Destination{dest(t, "hook", rc.srv.URL, "*")},
		Sleep:        sl.sleep, Rand: func() float64 { return 0.5 },
		RetryBase: time.Second, RetryMax: 30 * time.Second,
	})
	d.Submit(rec("req-3", "acme"))
	d.Close(context.Background())
	if got := len(rc.requests()); got != 3 {
		t.Fatalf("%d attempts, want 3", got)
	}
	if count(t, d, "hook", resultDelivered) != 1 || testutil.ToFloat64(d.m.retries.WithLabelValues("hook")) != 2 {
		t.Errorf("delivered %v, retries %v", count(t, d, "hook", resultDelivered), testutil.ToFloat64(d.m.retries.WithLabelValues("hook")))
	}
	// Half the back-off plus half of it at random (0.5): 0.75 s, then 1.5 s.
	if want := []time.Duration{750 * time.Millisecond, 1500 * time.Millisecond}; !slices.Equal(sl.d, want) {
		t.Errorf("waits %v, want %v", sl.d, want)
	}
}

func TestFinalAnswersAndAttemptBound(t *testing.T) {
	for _, c := range []struct {
		code, attempts int
	}{{400, 1}, {401, 1}, {302, 1}, {503, 3}} {
		rc := newReceiver(t, func(int, *http.Request) int { return c.code })
		d, _ := start(t, Options{Destinations: []Destination{dest(t, "hook", rc.srv.URL, "*")}, MaxAttempts: 3})
		d.Submit(rec("req", "acme"))
		d.Close(context.Background())
		if got := len(rc.requests()); got != c.attempts || count(t, d, "hook", resultFailed) != 1 {
			t.Errorf("HTTP %d: %d attempts (want %d), failed %v", c.code, got, c.attempts, count(t, d, "hook", resultFailed))
		}
	}
}

// A receiver that never answers: each attempt ends at the per-attempt
// timeout, the delivery fails after MaxAttempts, and every hung request is
// released (its context ends), so nothing is left behind.
func TestHangingReceiverTimesOut(t *testing.T) {
	var started, finished atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started.Add(1)
		defer finished.Add(1)
		io.ReadAll(r.Body) // then the server watches the connection and sees the client go
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	d, _ := start(t, Options{
		Destinations: []Destination{dest(t, "hook", srv.URL, "*")},
		Timeout:      20 * time.Millisecond, MaxAttempts: 2,
	})
	d.Submit(rec("req-4", "acme"))
	waitFor(t, "the delivery to fail", func() bool { return count(t, d, "hook", resultFailed) == 1 })
	if err := d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Every hung request was cancelled by the client.
	waitFor(t, "the hung requests to end", func() bool { return finished.Load() == started.Load() })
	if testutil.ToFloat64(d.m.retries.WithLabelValues("hook")) != 1 {
		t.Errorf("retries %v, want 1", testutil.ToFloat64(d.m.retries.WithLabelValues("hook")))
	}
}

// With the receiver blocked, the worker holds one delivery and the queue
// two more; further Submits drop and count, and none of them waits.
func TestFullQueueDropsWithoutBlocking(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
	}))
	t.Cleanup(srv.Close)
	d, reg := start(t, Options{
		Destinations: []Destination{dest(t, "hook", srv.URL, "*")},
		QueueSize:    2, Workers: 1, Timeout: time.Minute,
	})
	d.Submit(rec("held", "acme"))
	<-entered // the worker is inside the blocked request
	done := make(chan struct{})
	go func() {
		for i := range 5 {
			d.Submit(rec("r"+string(rune('0'+i)), "acme"))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Submit blocked behind a blocked receiver")
	}
	if got := count(t, d, "hook", resultDropped); got != 3 {
		t.Errorf("dropped %v, want 3", got)
	}
	if got := testutil.ToFloat64(d.m.depth.WithLabelValues("hook")); got != 2 {
		t.Errorf("queue depth %v, want 2", got)
	}
	if n, err := testutil.GatherAndCount(reg, "tollgate_webhook_deliveries_total"); err != nil || n != 4 {
		t.Errorf("%d series of tollgate_webhook_deliveries_total (%v), want 4 results", n, err)
	}
	close(release)
	if err := d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := count(t, d, "hook", resultDelivered); got != 3 {
		t.Errorf("delivered %v, want 3", got)
	}
}

// A destination of one tenant receives that tenant's calls only; a global
// one ("*") receives every tenant's.
func TestTenantIsolation(t *testing.T) {
	acme, globex, platform := newReceiver(t, nil), newReceiver(t, nil), newReceiver(t, nil)
	d, _ := start(t, Options{Destinations: []Destination{
		dest(t, "acme", acme.srv.URL, "acme"),
		dest(t, "globex", globex.srv.URL, "globex"),
		dest(t, "platform", platform.srv.URL, AllTenants),
	}})
	for _, tenant := range []string{"acme", "globex", "initech", "default"} {
		d.Submit(rec("id-"+tenant, tenant))
	}
	d.Close(context.Background())
	for rc, want := range map[*receiver][]string{
		acme: {"id-acme"}, globex: {"id-globex"}, platform: {"id-acme", "id-default", "id-globex", "id-initech"},
	} {
		close(rc.got)
		var got []string
		for id := range rc.got {
			got = append(got, id)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("got %v, want %v", got, want)
		}
	}
}

func TestPropertyFiltersAndSampleRate(t *testing.T) {
	rc := newReceiver(t, nil)
	half, all := 50.0, 51.0
	filtered := dest(t, "filtered", rc.srv.URL, "*")
	filtered.PropertyFilters = []PropertyFilter{{Key: "Environment", Value: "production"}}
	sampledOut := dest(t, "half", rc.srv.URL, "*")
	sampledOut.SampleRate = &half
	sampledIn := dest(t, "most", rc.srv.URL, "*")
	sampledIn.SampleRate = &all
	// Helicone counts the session among a call's properties.
	session := dest(t, "session", rc.srv.URL, "*")
	session.PropertyFilters = []PropertyFilter{{Key: "Helicone-Session-Id", Value: "s-1"}}
	d, _ := start(t, Options{Destinations: []Destination{filtered, sampledOut, sampledIn, session}, Rand: func() float64 { return 0.5 }})
	prod, staging := rec("prod", "acme"), rec("staging", "acme")
	prod.Properties = []record.Property{{Key: "environment", Value: "production"}}
	staging.Properties = []record.Property{{Key: "environment", Value: "staging"}}
	staging.SessionID = "s-1"
	d.Submit(prod)
	d.Submit(staging)
	d.Close(context.Background())
	for name, want := range map[string]float64{"filtered": 1, "half": 0, "most": 2, "session": 1} {
		if got := count(t, d, name, resultDelivered); got != want {
			t.Errorf("%s: delivered %v, want %v", name, got, want)
		}
	}
}

// Close gives up at its context: the delivery in flight is cancelled, the
// queued ones are abandoned and counted, and every worker has stopped when
// Close returns.
func TestCloseIsBounded(t *testing.T) {
	entered := make(chan struct{}, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		entered <- struct{}{}
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	d, _ := start(t, Options{Destinations: []Destination{dest(t, "hook", srv.URL, "*")}, Workers: 1, Timeout: time.Hour})
	for range 3 {
		d.Submit(rec("r", "acme"))
	}
	<-entered
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := d.Close(ctx); err == nil {
		t.Error("Close reported a full drain")
	}
	if got := count(t, d, "hook", resultAbandoned); got != 3 {
		t.Errorf("abandoned %v, want 3", got)
	}
	d.Submit(rec("late", "acme")) // after Close: ignored, no panic
}

func TestValidate(t *testing.T) {
	f := secretFile(t)
	bad := 101.0
	err := Validate([]Destination{
		{Name: "ftp", URL: "ftp://hooks.example/x?token=s3cr3t", Tenant: "*", SecretFile: f},
		{Name: "nohost", URL: "https:///path", Tenant: "*", SecretFile: f},
		{Name: "notenant", URL: "https://hooks.example", SecretFile: f},
		{Name: "twosecrets", URL: "https://hooks.example", Tenant: "*", SecretFile: f, SecretEnv: "X"},
		{Name: "rate", URL: "https://hooks.example", Tenant: "*", SecretEnv: "X", SampleRate: &bad},
		{Name: "rate", URL: "https://hooks.example", Tenant: "*", SecretEnv: "X"},
		{Name: "Bad Name", URL: "http://hooks.example", Tenant: "*", SecretEnv: "X"},
	})
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		`webhooks[0] (ftp): url: want an http:// or https:// URL, got scheme "ftp"`,
		"webhooks[1] (nohost): url: the URL has no host",
		"webhooks[2] (notenant): tenant:",
		"webhooks[3] (twosecrets): want one of secret-file and secret-env",
		"webhooks[4] (rate): sample-rate: want a percentage from 0 to 100, got 101",
		"webhooks[5] (rate): name: used by another destination",
		`webhooks[6] (Bad Name): name:`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("no %q in\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Error("the error quotes the URL")
	}
	if _, err := New(Options{Destinations: []Destination{{Name: "a", URL: "gopher://x", Tenant: "*", SecretEnv: "S"}}}); err == nil {
		t.Error("New accepted a gopher:// URL")
	}
}

func TestSecrets(t *testing.T) {
	env := func(k string) string { return map[string]string{"HOOK_SECRET": " from-env \n"}[k] }
	d := Destination{Name: "a", SecretEnv: "HOOK_SECRET"}
	if s, err := d.secret(env); err != nil || string(s) != "from-env" {
		t.Errorf("env: %q %v", s, err)
	}
	d = Destination{Name: "a", SecretFile: secretFile(t)}
	if s, err := d.secret(env); err != nil || string(s) != secret {
		t.Errorf("file: %q %v", s, err)
	}
	empty := filepath.Join(t.TempDir(), "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	for _, d := range []Destination{{Name: "a", SecretEnv: "UNSET"}, {Name: "a", SecretFile: empty}, {Name: "a", SecretFile: empty + "-missing"}} {
		if _, err := d.secret(env); err == nil {
			t.Errorf("%+v: no error", d)
		}
	}
	if d, err := New(Options{}); d != nil || err != nil {
		t.Errorf("no destinations: %v %v", d, err)
	}
}

func TestTee(t *testing.T) {
	rc := newReceiver(t, nil)
	d, _ := start(t, Options{Destinations: []Destination{dest(t, "hook", rc.srv.URL, "*")}})
	mem := record.NewMemory()
	if Tee(mem, nil) != record.Sink(mem) {
		t.Error("Tee without destinations is not the sink itself")
	}
	s := Tee(mem, d)
	s.Write(rec("tee", "acme"))
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(mem.Records()) != 1 || len(rc.requests()) != 1 {
		t.Errorf("log %d, webhook %d", len(mem.Records()), len(rc.requests()))
	}
}

// The payload is made of the call's id, user, model, provider, usage and
// bodies only: whatever else a record holds (tenant, workload identity,
// policy decisions, errors; never a credential, which no record holds)
// stays out of it.
func TestPayloadCarriesOnlyHeliconesFields(t *testing.T) {
	r := &record.Record{}
	v := reflect.ValueOf(r).Elem()
	for i := range v.NumField() {
		if f := v.Field(i); f.Kind() == reflect.String {
			f.SetString("sentinel(" + v.Type().Field(i).Name + ")")
		}
	}
	r.Properties = []record.Property{{Key: "sentinel(key)", Value: "sentinel(value)"}}
	body := strings.ToLower(string(newCall(r, DefaultMaxBody).payload(true, true))) // provider is upper-cased
	allowed := map[string]bool{"RequestID": true, "UserID": true, "ResponseModel": true, "Provider": true, "RequestBody": true, "ResponseBody": true}
	for i := range v.NumField() {
		name := v.Type().Field(i).Name
		if in := strings.Contains(body, strings.ToLower("sentinel("+name+")")); in != allowed[name] && v.Field(i).Kind() == reflect.String {
			t.Errorf("%s in the payload: %v", name, in)
		}
	}
	if strings.Contains(body, "sentinel(key)") || strings.Contains(body, "sentinel(value)") {
		t.Error("properties in the payload")
	}
}
