package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tollgate-dev/tollgate/internal/testenv"
	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/record"
	"github.com/tollgate-dev/tollgate/storage/chstore"
)

// The Helicone keys of the tests: each names a tenant of seed().
var (
	acmeKey  = map[string]string{"Helicone-Auth": "Bearer sk-helicone-acme"}
	otherKey = map[string]string{"Helicone-Auth": "Bearer sk-helicone-other"}
)

func tenantKeys(t *testing.T) *policies.Auth {
	t.Helper()
	a, err := policies.NewAuth([]policies.APIKey{
		{SHA256: policies.HashKey("sk-helicone-acme"), Tenant: "acme"},
		{SHA256: policies.HashKey("sk-helicone-other"), Tenant: "other"},
	}, false)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// heliconeAPI is the API over env's ClickHouse with the two tenant keys and
// a short wait for requests not yet logged.
func heliconeAPI(t *testing.T, env *chEnv, wait time.Duration, now func() time.Time) http.Handler {
	return heliconeAPIOn(t, env, env.q, wait, now)
}

// heliconeAPIOn is heliconeAPI with q (env's ClickHouse, perhaps wrapped)
// as its query backend.
func heliconeAPIOn(t *testing.T, env *chEnv, q Queries, wait time.Duration, now func() time.Time) http.Handler {
	if now == nil {
		now = time.Now
	}
	return New(Options{Query: q, Auth: tenantKeys(t), RequestWait: wait, Now: now,
		Feedback: func(ctx context.Context, fb chstore.Feedback) error { return env.w.InsertFeedback(ctx, fb) }})
}

// signalLookups passes lookups to the backend and says when one has
// returned (the wait, if any, begins after it).
type signalLookups struct {
	Queries
	looked chan struct{}
}

func (s signalLookups) Exists(ctx context.Context, id, tenant string) (bool, error) {
	ok, err := s.Queries.Exists(ctx, id, tenant)
	select {
	case s.looked <- struct{}{}:
	default:
	}
	return ok, err
}

// heliconeBody decodes Helicone's {data, error} answer.
func heliconeBody(t *testing.T, b []byte) (data json.RawMessage, errMsg *string) {
	t.Helper()
	var out struct {
		Data  json.RawMessage `json:"data"`
		Error *string         `json:"error"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("not Helicone's {data, error}: %q: %v", b, err)
	}
	return out.Data, out.Error
}

// Helicone: valhalla/jawn/src/controllers/public/requestController.ts
// (feedbackRequest: {rating: boolean} → Result {data, error}) and
// valhalla/jawn/src/managers/request/RequestManager.ts (the rating is the
// organization's of the caller's key; waitForRequestAndResponse looks the
// request up within that organization only, then "Request not found").
func TestHeliconeFeedbackIsTheKeysTenants(t *testing.T) {
	env := newCH(t)
	recs := seed(t, env)
	h := heliconeAPI(t, env, 200*time.Millisecond, nil)
	acme := recs[4]
	path := "/v1/request/" + acme.RequestID + "/feedback"

	rr := do(t, h, "POST", path, local, acmeKey, `{"rating": true}`, nil)
	if data, e := heliconeBody(t, rr.Body.Bytes()); rr.Code != 200 || string(data) != "null" || e != nil {
		t.Fatalf("acme rates its request: %d %s", rr.Code, rr.Body)
	}
	d, err := env.q.Get(context.Background(), acme.RequestID, "acme")
	if err != nil || d == nil || d.Rating == nil || !*d.Rating {
		t.Fatalf("stored rating: %+v %v", d, err)
	}

	// Helicone's REST API takes the key in Authorization.
	bearer := map[string]string{"Authorization": "Bearer sk-helicone-acme"}
	if rr := do(t, h, "POST", path, "192.0.2.7:1", bearer, `{"rating": false}`, nil); rr.Code != 200 {
		t.Fatalf("key in Authorization, from afar: %d %s", rr.Code, rr.Body)
	}

	// Another tenant can neither rate it nor learn that it exists.
	rr = do(t, h, "POST", path, "192.0.2.7:1", otherKey, `{"rating": false}`, nil)
	if _, e := heliconeBody(t, rr.Body.Bytes()); rr.Code != 404 || e == nil || *e != "Request not found" {
		t.Fatalf("other tenant: %d %s", rr.Code, rr.Body)
	}
	if d, _ := env.q.Get(context.Background(), acme.RequestID, "acme"); d.Rating == nil || *d.Rating {
		t.Fatalf("rating after the other tenant tried: %v", d.Rating)
	}

	for _, c := range []struct {
		name    string
		addr    string
		headers map[string]string
		code    int
	}{
		{"unknown key", local, map[string]string{"Helicone-Auth": "Bearer sk-nope"}, 401},
		{"no key from afar", "192.0.2.7:1", nil, 403},
	} {
		rr := do(t, h, "POST", path, c.addr, c.headers, `{"rating": true}`, nil)
		if _, e := heliconeBody(t, rr.Body.Bytes()); rr.Code != c.code || e == nil {
			t.Errorf("%s: %d %s, want %d", c.name, rr.Code, rr.Body, c.code)
		}
	}
}

// Helicone: valhalla/jawn/src/managers/request/RequestManager.ts
// (waitForRequestAndResponse polls for the request before rating it and
// answers "Request not found" when it never comes; Helicone waits minutes,
// Tollgate a bounded RequestWait). The waits that must not run out (a
// record to flush, a cancelled lookup to return) are long, so that a
// loaded machine does not end them first; the one that must run out is
// short.
func TestHeliconeFeedbackWaitsForTheRequest(t *testing.T) {
	env := newCH(t)
	h := heliconeAPI(t, env, 3*time.Second, nil)
	looked := make(chan struct{}, 1)
	long := heliconeAPIOn(t, env, signalLookups{Queries: env.q, looked: looked}, 30*time.Second, nil)

	late := &record.Record{RequestID: uuid.NewString(), CreatedAt: time.Now().UTC().Truncate(time.Second), Tenant: "acme",
		Provider: "openai", Model: "gpt-4o-mini", Status: 200}
	go func() {
		time.Sleep(400 * time.Millisecond)
		c := *late
		env.w.Write(&c)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = env.w.Flush(ctx)
	}()
	start := time.Now()
	rr := do(t, long, "POST", "/v1/request/"+late.RequestID+"/feedback", local, acmeKey, `{"rating": true}`, nil)
	if rr.Code != 200 {
		t.Fatalf("a request logged 0.4 s after its rating: %d %s", rr.Code, rr.Body)
	}
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Errorf("answered after %v, before the request was logged", took)
	}

	start = time.Now()
	rr = do(t, h, "POST", "/v1/request/"+uuid.NewString()+"/feedback", local, acmeKey, `{"rating": true}`, nil)
	took := time.Since(start)
	if _, e := heliconeBody(t, rr.Body.Bytes()); rr.Code != 404 || e == nil || *e != "Request not found" {
		t.Fatalf("never logged: %d %s", rr.Code, rr.Body)
	}
	if took < 3*time.Second {
		t.Errorf("gave up after %v, before the 3 s wait", took)
	}

	// A client that goes away stops the wait: it is cancelled once its
	// first lookup has found nothing, and answered long before its 30 s.
	for len(looked) > 0 {
		<-looked
	}
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", "/v1/request/"+uuid.NewString()+"/feedback", strings.NewReader(`{"rating": true}`))
	req.RemoteAddr, req.Host = local, "localhost"
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Helicone-Auth", acmeKey["Helicone-Auth"])
	done := make(chan struct{})
	go func() {
		defer close(done)
		long.ServeHTTP(httptest.NewRecorder(), req)
	}()
	select {
	case <-looked:
	case <-time.After(10 * time.Second):
		t.Fatal("no lookup")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the wait outlived its client")
	}
}

// Helicone: worker/src/feedback.ts (handleFeedback: POST /v1/feedback with
// {"helicone-id", "rating"}; "Invalid helicone-id format." and "Invalid
// rating format. Expected a boolean." as 400 text; `Error: Request not
// found for heliconeId "…".` (500 there, 404 here); success
// {"message": "Feedback added successfully.", "helicone_id"}).
func TestHeliconeLegacyFeedback(t *testing.T) {
	env := newCH(t)
	recs := seed(t, env)
	h := heliconeAPI(t, env, 100*time.Millisecond, nil)
	id := recs[2].RequestID
	unknown := uuid.NewString()
	for _, c := range []struct {
		body, want string
		code       int
	}{
		{fmt.Sprintf(`{"helicone-id": %q, "rating": false}`, id), fmt.Sprintf(`{"helicone_id":%q,"message":"Feedback added successfully."}`, id), 200},
		{`{"helicone-id": "nope", "rating": true}`, "Invalid helicone-id format.", 400},
		{`{"rating": true}`, "Invalid helicone-id format.", 400},
		{fmt.Sprintf(`{"helicone-id": %q, "rating": "yes"}`, id), "Invalid rating format. Expected a boolean.", 400},
		{fmt.Sprintf(`{"helicone-id": %q, "rating": true}`, unknown), fmt.Sprintf("Error: Request not found for heliconeId %q.", unknown), 404},
	} {
		rr := do(t, h, "POST", "/v1/feedback", local, acmeKey, c.body, nil)
		if got := strings.TrimSpace(rr.Body.String()); rr.Code != c.code || got != c.want {
			t.Errorf("%s: %d %q, want %d %q", c.body, rr.Code, got, c.code, c.want)
		}
	}
	if d, _ := env.q.Get(context.Background(), id, "acme"); d == nil || d.Rating == nil || *d.Rating {
		t.Errorf("rating not stored: %+v", d)
	}
}

// Helicone: valhalla/jawn/src/controllers/public/requestController.ts
// (addScores: POST /v1/request/{id}/score, body ScoreRequest, 201 and
// Result {data: null, error: null}) and
// valhalla/jawn/src/managers/score/ScoreManager.ts (scores are
// Record<string, number | boolean>, a boolean stored as 1/0 under
// "<name>-hcone-bool"; a newer score replaces an older one).
func TestHeliconeScores(t *testing.T) {
	env := newCH(t)
	recs := seed(t, env)
	id := recs[6].RequestID
	at := t0
	h := heliconeAPI(t, env, 100*time.Millisecond, func() time.Time { return at })
	path := "/v1/request/" + id + "/score"

	rr := do(t, h, "POST", path, local, acmeKey, `{"scores": {"accuracy": 0.9, "helpful": true, "tokens": 3}}`, nil)
	if data, e := heliconeBody(t, rr.Body.Bytes()); rr.Code != 201 || string(data) != "null" || e != nil {
		t.Fatalf("score: %d %s", rr.Code, rr.Body)
	}
	at = t0.Add(time.Hour)
	if rr := do(t, h, "POST", path, local, acmeKey, `{"scores": {"accuracy": 0.5}}`, nil); rr.Code != 201 {
		t.Fatalf("rescore: %d %s", rr.Code, rr.Body)
	}
	rows := queryRows(t, h, acmeKey, fmt.Sprintf(`{"filter": {"request_response_rmt": {"request_id": {"equals": %q}}}}`, id))
	if len(rows) != 1 {
		t.Fatalf("rows %v", rows)
	}
	want := map[string]any{"accuracy": 0.5, "helpful-hcone-bool": 1.0, "tokens": 3.0}
	if got := rows[0]["scores"]; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("scores %v, want %v", got, want)
	}

	// Tollgate's own detail lists them too.
	var d struct {
		Scores []map[string]any `json:"scores"`
	}
	if rr := do(t, h, "GET", "/v1/requests/"+id, local, nil, "", &d); rr.Code != 200 ||
		fmt.Sprint(d.Scores) != "[map[name:accuracy value:0.5] map[boolean:true name:helpful value:1] map[name:tokens value:3]]" {
		t.Errorf("detail: %d scores %v", rr.Code, d.Scores)
	}

	// Another tenant's request is not found; bad scores name the field.
	if rr := do(t, h, "POST", path, local, otherKey, `{"scores": {"x": 1}}`, nil); rr.Code != 404 {
		t.Errorf("other tenant: %d %s", rr.Code, rr.Body)
	}
	for _, c := range []struct{ body, field string }{
		{`{"scores": {"x": "high"}}`, "scores.x"},
		{`{"scores": {"x": null}}`, "scores.x"},
		{`{"scores": {"x": [1]}}`, "scores.x"},
		{`{"scores": {"x": 1e999}}`, "scores.x"},
		{`{"scores": {"": 1}}`, "scores."},
		{`{"scores": {}}`, "scores"},
		{`{"score": {"x": 1}}`, "scores"},
		{`[1]`, "scores"},
	} {
		rr := do(t, h, "POST", path, local, acmeKey, c.body, nil)
		if _, e := heliconeBody(t, rr.Body.Bytes()); rr.Code != 400 || e == nil || !strings.HasPrefix(*e, c.field+":") {
			t.Errorf("%s: %d %s, want 400 naming %s", c.body, rr.Code, rr.Body, c.field)
		}
	}
}

// missingRequests is a query backend in which no request ever arrives. A
// waiter looks an id up once before it takes a slot and again after its
// first poll; for the ids of heldPath that second lookup is held until
// release, so every waiter that made it stays in its slot however slowly
// the machine runs.
type missingRequests struct {
	Queries
	mu      sync.Mutex
	lookups map[string]int  // per request id
	held    map[string]bool // the ids whose second lookup is held
	hold    chan struct{}
	once    sync.Once
}

func newMissingRequests(t *testing.T) *missingRequests {
	m := &missingRequests{lookups: map[string]int{}, held: map[string]bool{}, hold: make(chan struct{})}
	t.Cleanup(m.release)
	return m
}

func (m *missingRequests) Exists(ctx context.Context, id, _ string) (bool, error) {
	m.mu.Lock()
	m.lookups[id]++
	hold := m.held[id] && m.lookups[id] == 2
	m.mu.Unlock()
	if hold {
		select {
		case <-m.hold:
		case <-ctx.Done():
		}
	}
	return false, nil
}

// heldPath is the feedback route of a new request id whose waiter is held
// in its slot.
func (m *missingRequests) heldPath() string {
	id := uuid.NewString()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.held[id] = true
	return "/v1/request/" + id + "/feedback"
}

// holding is the number of waiters held in their slots.
func (m *missingRequests) holding() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for id := range m.held {
		if m.lookups[id] >= 2 {
			n++
		}
	}
	return n
}

// release lets the held lookups return; the waits go on to their end.
func (m *missingRequests) release() { m.once.Do(func() { close(m.hold) }) }

// feedbackPath is the feedback route of a new request id.
func feedbackPath() string { return "/v1/request/" + uuid.NewString() + "/feedback" }

// The wait for a request not yet logged holds a goroutine and a connection:
// at most maxWaiters wait at once, and the next is answered at once (503,
// retry) instead of queueing. Helicone
// (valhalla/jawn/src/managers/request/RequestManager.ts,
// waitForRequestAndResponse) waits minutes with no such bound.
func TestHeliconeWaitIsBounded(t *testing.T) {
	q := newMissingRequests(t)
	h := New(Options{Query: q, RequestWait: 3 * time.Second,
		Feedback: func(context.Context, chstore.Feedback) error { return nil }})
	// One tenant per waiter (the default tenant holds at most
	// maxTenantWaiters): the bound under test is the global one. Each
	// waiter rates its own id, so its lookups can be told apart.
	done := make(chan int, maxWaiters)
	for i := range maxWaiters {
		auth := map[string]string{"Helicone-Auth": "Bearer waiter-" + strconv.Itoa(i)}
		path := q.heldPath()
		go func() { done <- do(t, h, "POST", path, local, auth, `{"rating": true}`, nil).Code }()
	}
	testenv.WaitFor(t, 10*time.Second, "every waiter holding a slot", func() bool { return q.holding() == maxWaiters })
	rr := do(t, h, "POST", feedbackPath(), local, map[string]string{"Helicone-Auth": "Bearer one-more"}, `{"rating": true}`, nil)
	if _, e := heliconeBody(t, rr.Body.Bytes()); rr.Code != 503 || e == nil || !strings.Contains(*e, "retry") {
		t.Errorf("one more: %d %s", rr.Code, rr.Body)
	}
	q.release()
	for range maxWaiters {
		if code := <-done; code != 404 {
			t.Errorf("a waiter: %d", code)
		}
	}
	// The waits are over: the next one waits again.
	if rr := do(t, h, "POST", feedbackPath(), local, nil, `{"rating": true}`, nil); rr.Code != 404 {
		t.Errorf("after: %d %s", rr.Code, rr.Body)
	}
}

// Request ids are the client's (Helicone-Request-Id), so two tenants may
// log the same one; each rates its own, and sees its own rating.
// Helicone: valhalla/jawn/src/managers/request/RequestManager.ts (a
// request is looked up by id within the caller's organization).
func TestHeliconeFeedbackSharedID(t *testing.T) {
	env := newCH(t)
	id := uuid.NewString()
	for _, tenant := range []string{"acme", "other"} {
		env.w.Write(&record.Record{RequestID: id, CreatedAt: t0, Tenant: tenant, Provider: "openai", Model: "gpt-4o", Status: 200})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := env.w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	at := t0
	h := heliconeAPI(t, env, 100*time.Millisecond, func() time.Time { return at })
	path := "/v1/request/" + id + "/feedback"
	if rr := do(t, h, "POST", path, local, acmeKey, `{"rating": true}`, nil); rr.Code != 200 {
		t.Fatalf("acme: %d %s", rr.Code, rr.Body)
	}
	at = t0.Add(time.Minute)
	if rr := do(t, h, "POST", path, local, otherKey, `{"rating": false}`, nil); rr.Code != 200 {
		t.Fatalf("other: %d %s", rr.Code, rr.Body)
	}
	// The feedback table (migration 2) is keyed by request_id alone, so the
	// newest rating may replace acme's: acme then sees none, never other's.
	d, err := env.q.Get(ctx, id, "other")
	if err != nil || d == nil || d.Rating == nil || *d.Rating {
		t.Errorf("other's detail: %+v %v, want its rating false", d, err)
	}
	if d, err := env.q.Get(ctx, id, "acme"); err != nil || d == nil || (d.Rating != nil && !*d.Rating) {
		t.Errorf("acme's detail: %+v %v, want its rating true or none", d, err)
	}
	rows := queryRows(t, h, acmeKey, `{"filter": "all"}`)
	if len(rows) != 1 || rows[0]["feedback_rating"] == false {
		t.Errorf("acme's query: %v", rows)
	}
}

// One tenant rating ids that never arrive holds at most maxTenantWaiters
// of the waits; the next of that tenant is answered 503 at once, while
// another tenant still waits (and finds its request).
func TestHeliconeWaitIsBoundedPerTenant(t *testing.T) {
	q := newMissingRequests(t)
	h := New(Options{Query: q, RequestWait: 3 * time.Second,
		Feedback: func(context.Context, chstore.Feedback) error { return nil }})
	busy := map[string]string{"Helicone-Auth": "Bearer busy-tenant"}
	done := make(chan int, maxTenantWaiters)
	for range maxTenantWaiters {
		path := q.heldPath()
		go func() { done <- do(t, h, "POST", path, local, busy, `{"rating": true}`, nil).Code }()
	}
	testenv.WaitFor(t, 10*time.Second, "every waiter holding a slot", func() bool { return q.holding() == maxTenantWaiters })
	if rr := do(t, h, "POST", feedbackPath(), local, busy, `{"rating": true}`, nil); rr.Code != 503 {
		t.Errorf("the same tenant once more: %d %s, want 503", rr.Code, rr.Body)
	}
	// Another tenant takes a slot while the busy one's are all held.
	other := make(chan int, 1)
	otherPath := q.heldPath()
	go func() {
		other <- do(t, h, "POST", otherPath, local, map[string]string{"Helicone-Auth": "Bearer other-tenant"}, `{"rating": true}`, nil).Code
	}()
	testenv.WaitFor(t, 10*time.Second, "another tenant waiting", func() bool {
		return q.holding() == maxTenantWaiters+1 || len(other) > 0
	})
	q.release()
	if code := <-other; code != 404 {
		t.Errorf("another tenant: %d, want it to wait (404 once the wait is over)", code)
	}
	for range maxTenantWaiters {
		<-done
	}
}
