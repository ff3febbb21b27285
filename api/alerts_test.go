package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tollgate-dev/tollgate/alerts"
	"github.com/tollgate-dev/tollgate/record"
)

func TestAlertRoutesWithoutClickHouse(t *testing.T) {
	h := New(Options{})
	valid := `{"id":"a","metric":"cost_usd","threshold":1,"window":"15m","webhook_url":"https://x.example"}`
	for _, c := range []struct {
		method, target, body string
		want                 int
	}{
		{"GET", "/v1/alerts", "", 503},
		{"POST", "/v1/alerts", valid, 503},
		{"POST", "/v1/alerts", `{"metric":"nope"}`, 400}, // checked before the store is needed
		{"DELETE", "/v1/alerts/a", "", 503},
		{"GET", "/v1/alerts/events", "", 503},
		{"GET", "/v1/alerts/events?limit=0", "", 400},
	} {
		if rr := do(t, h, c.method, c.target, local, nil, c.body, nil); rr.Code != c.want {
			t.Errorf("%s %s: %d %s, want %d", c.method, c.target, rr.Code, rr.Body, c.want)
		}
	}
	if rr := do(t, h, "GET", "/v1/alerts", "192.0.2.1:5000", nil, "", nil); rr.Code != 403 {
		t.Errorf("remote client: %d", rr.Code)
	}
	hk := New(Options{APIKey: "k"})
	if rr := do(t, hk, "POST", "/v1/alerts", local, nil, valid, nil); rr.Code != 401 {
		t.Errorf("no key: %d", rr.Code)
	}
}

func TestAlertRoutes(t *testing.T) {
	env := newCH(t)
	var hits atomic.Int32
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer hook.Close()
	file, err := alerts.ParseRules("alerts.yaml", []byte(fmt.Sprintf(`rules:
  - id: file-rule
    metric: latency_p95_ms
    threshold: 1000
    window: 1h
    webhook_url: %s
`, hook.URL)))
	if err != nil {
		t.Fatal(err)
	}
	now := t0
	mgr, err := alerts.New(alerts.Options{Store: env.alertStore, Metrics: env.q, FileRules: file,
		Now: func() time.Time { return now }, AllowPrivateWebhooks: true})
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Close()
	h := New(Options{Query: env.q, Alerts: mgr})

	// create: the answer shows the webhook URL's origin, never its token
	body := fmt.Sprintf(`{"id":"spend","name":"Spend","metric":"cost_usd","threshold":2.5,"window":"15m",
		"scope":{"model":"gpt-4o","property":{"name":"Env","value":"prod"}},"webhook_url":%q}`, hook.URL+"/T0/SECRET-PATH?token=SECRET-QUERY")
	rr := do(t, h, "POST", "/v1/alerts", local, nil, body, nil)
	if rr.Code != 201 {
		t.Fatalf("create: %d %s", rr.Code, rr.Body)
	}
	if strings.Contains(rr.Body.String(), "SECRET") {
		t.Errorf("create answered the webhook URL: %s", rr.Body)
	}
	var created map[string]any
	if err := json.Unmarshal(rr.Body.Bytes(), &created); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprint(map[string]any{"id": "spend", "name": "Spend", "metric": "cost_usd", "threshold": 2.5, "window": "15m",
		"scope":       map[string]any{"model": "gpt-4o", "property": map[string]any{"name": "env", "value": "prod"}},
		"webhook_url": hook.URL + "/…", "webhook_url_set": true, "cooldown": "1h", "enabled": true, "read_only": false})
	if fmt.Sprint(created) != want {
		t.Errorf("created\n got %v\nwant %s", created, want)
	}
	rr = do(t, h, "POST", "/v1/alerts", local, nil,
		fmt.Sprintf(`{"metric":"error_rate","threshold":0.1,"window":"1h","webhook_url":%q}`, hook.URL), nil)
	var noID struct{ ID, Name string }
	if rr.Code != 201 || json.Unmarshal(rr.Body.Bytes(), &noID) != nil || uuid.Validate(noID.ID) != nil || noID.Name != noID.ID {
		t.Errorf("create without id: %d %s", rr.Code, rr.Body)
	}

	// validation and conflicts
	for _, c := range []struct {
		body, field string
		status      int
	}{
		{`not json`, "body", 400},
		{`{"metric":"cost_usd","threshold":1,"window":"15m"}`, "webhook_url", 400},
		{`{"metric":"cost_usd","threshold":1,"window":"15m","webhook_url":"file:///etc/passwd"}`, "webhook_url", 400},
		{`{"metric":"cost_usd","threshold":1,"window":"8d","webhook_url":"https://x.example"}`, "window", 400},
		{`{"metric":"cost_usd","threshold":1,"window":"1h","cooldown":"forever","webhook_url":"https://x.example"}`, "cooldown", 400},
		{`{"metric":"cost","threshold":1,"window":"1h","webhook_url":"https://x.example"}`, "metric", 400},
		{`{"metric":"cost_usd","window":"1h","webhook_url":"https://x.example"}`, "threshold", 400},
		{`{"metric":"cost_usd","threshold":1,"window":"1h","webhook_url":"https://x.example","scope":{"tenant":"a"}}`, "scope.tenant", 400},
		{`{"id":"spend","metric":"cost_usd","threshold":1,"window":"1h","webhook_url":"https://x.example"}`, "", 409},
		{`{"id":"file-rule","metric":"cost_usd","threshold":1,"window":"1h","webhook_url":"https://x.example"}`, "", 409},
	} {
		rr := do(t, h, "POST", "/v1/alerts", local, nil, c.body, nil)
		if rr.Code != c.status || (c.field != "" && !strings.HasPrefix(errorMessage(t, rr), c.field+": ")) {
			t.Errorf("%s: %d %s, want %d naming %q", c.body, rr.Code, rr.Body, c.status, c.field)
		}
	}

	// list
	var list struct {
		Rules []map[string]any `json:"rules"`
	}
	if rr := do(t, h, "GET", "/v1/alerts", local, nil, "", &list); rr.Code != 200 {
		t.Fatalf("list: %d %s", rr.Code, rr.Body)
	} else if strings.Contains(rr.Body.String(), "SECRET") {
		t.Errorf("the list shows a webhook URL's token: %s", rr.Body)
	}
	var ids []string
	for _, r := range list.Rules {
		ids = append(ids, r["id"].(string))
		if ro := r["read_only"].(bool); ro != (r["id"] == "file-rule") {
			t.Errorf("%v: read_only %v", r["id"], ro)
		}
		if r["webhook_url"] != hook.URL && r["webhook_url"] != hook.URL+"/…" || r["webhook_url_set"] != true {
			t.Errorf("%v: webhook_url %v, webhook_url_set %v", r["id"], r["webhook_url"], r["webhook_url_set"])
		}
	}
	if len(ids) != 3 || ids[0] != "file-rule" || !slices.Contains(ids, "spend") {
		t.Errorf("listed %v", ids)
	}

	// delete
	for _, c := range []struct {
		id     string
		status int
	}{{"file-rule", 409}, {"nope", 404}, {noID.ID, 200}, {noID.ID, 404}} {
		if rr := do(t, h, "DELETE", "/v1/alerts/"+c.id, local, nil, "", nil); rr.Code != c.status {
			t.Errorf("delete %s: %d %s, want %d", c.id, rr.Code, rr.Body, c.status)
		}
	}
	list.Rules = nil
	do(t, h, "GET", "/v1/alerts", local, nil, "", &list)
	if len(list.Rules) != 2 {
		t.Errorf("after delete: %v", list.Rules)
	}

	// events: the spend rule fires on 3 USD of prod gpt-4o calls
	prod := []record.Property{{Key: "env", Value: "prod"}}
	for i := range 3 {
		env.w.Write(&record.Record{RequestID: uuid.NewString(), CreatedAt: t0.Add(-time.Duration(i) * time.Minute), Tenant: "acme",
			Model: "gpt-4o", Properties: prod, Status: 200, CostUSD: 1, LatencyMs: 10})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := env.w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := mgr.EvaluateOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("%d webhook calls", n)
	}
	for _, q := range []string{"limit=0", "limit=501", "limit=ten"} {
		if rr := do(t, h, "GET", "/v1/alerts/events?"+q, local, nil, "", nil); rr.Code != 400 || !strings.HasPrefix(errorMessage(t, rr), "limit: ") {
			t.Errorf("%s: %d %s", q, rr.Code, rr.Body)
		}
	}
	var evs struct {
		Events []map[string]any `json:"events"`
	}
	if rr := do(t, h, "GET", "/v1/alerts/events?limit=5", local, nil, "", &evs); rr.Code != 200 {
		t.Fatalf("events: %d %s", rr.Code, rr.Body)
	}
	wantEvents := fmt.Sprint([]map[string]any{{"rule_id": "spend", "rule_name": "Spend", "metric": "cost_usd", "value": 3.0,
		"threshold": 2.5, "window": "15m", "fired_at": "2026-03-01T10:00:00Z", "delivered": true, "delivery_attempts": 1.0,
		"delivery_error": ""}})
	if fmt.Sprint(evs.Events) != wantEvents {
		t.Errorf("events\n got %v\nwant %s", evs.Events, wantEvents)
	}
}

// TestAlertCreateRace: concurrent creates of one id: one 201, the others
// 409.
func TestAlertCreateRace(t *testing.T) {
	env := newCH(t)
	mgr, err := alerts.New(alerts.Options{Store: env.alertStore, Metrics: env.q})
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Close()
	h := New(Options{Query: env.q, Alerts: mgr})
	body := `{"id":"same","metric":"cost_usd","threshold":1,"window":"15m","webhook_url":"https://hooks.example.com/x"}`
	codes := make([]int, 6)
	var wg sync.WaitGroup
	for i := range codes {
		wg.Go(func() { codes[i] = do(t, h, "POST", "/v1/alerts", local, nil, body, nil).Code })
	}
	wg.Wait()
	slices.Sort(codes)
	if fmt.Sprint(codes) != "[201 409 409 409 409 409]" {
		t.Errorf("statuses %v, want one 201 and 409s", codes)
	}
}
