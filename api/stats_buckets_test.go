package api

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tollgate-dev/tollgate/record"
	"github.com/tollgate-dev/tollgate/storage/chquery"
)

// TestStatsBucketFigures checks each bucket's figures against values worked
// out by hand from a few rows (quantileExact: the value at rank
// floor(level × n) of the sorted values, ranks from 0).
func TestStatsBucketFigures(t *testing.T) {
	env := newCH(t)
	row := func(at time.Duration, tenant string, status int32, lat, ttft, prompt, completion int64, cost float64, hit bool) *record.Record {
		return &record.Record{RequestID: uuid.NewString(), CreatedAt: t0.Add(at), Tenant: tenant, Provider: "openai",
			Model: "gpt-4o-mini", Status: status, LatencyMs: lat, TTFTMs: ttft, PromptTokens: prompt,
			CompletionTokens: completion, CostUSD: cost, CacheHit: hit}
	}
	rows := []*record.Record{
		// bucket t0: latencies 100 200 300 400, first-chunk times 20 40 60 (0 = none)
		row(0, "hand", 200, 100, 40, 10, 5, 0.01, false),
		row(time.Minute, "hand", 500, 300, 0, 20, 7, 0.02, false),
		row(2*time.Minute, "hand", 200, 200, 60, 30, 0, 0, true),
		row(10*time.Minute-time.Second, "hand", record.StatusClientCancelled, 400, 20, 40, 8, 0.04, false),
		row(3*time.Minute, "noise", 200, 9999, 9999, 1000, 1000, 9, false), // another tenant
		// bucket t0+10m: one rate-limited call, no first chunk
		row(15*time.Minute, "hand", 429, 50, 0, 5, 1, 0.5, false),
		// t0+20m: nothing; bucket t0+30m: two calls
		row(30*time.Minute, "hand", 200, 10, 5, 1, 1, 0.001, false),
		row(40*time.Minute-time.Second, "hand", 200, 20, 7, 2, 2, 0.002, false),
		row(40*time.Minute, "hand", 200, 7777, 7777, 1, 1, 1, false), // at "to": excluded
	}
	for _, r := range rows {
		env.w.Write(r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := env.w.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	h := New(Options{Query: env.q})
	q := "/v1/stats?tenant=hand&bucket=600&from=" + t0.Format(time.RFC3339) + "&to=" + t0.Add(40*time.Minute).Format(time.RFC3339)
	rr := do(t, h, "GET", q, local, nil, "", nil)
	if rr.Code != 200 {
		t.Fatalf("%d %s", rr.Code, rr.Body)
	}
	var st chquery.Stats
	if err := json.Unmarshal(rr.Body.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	want := []chquery.Bucket{
		{Start: t0, Requests: 4, Errors: 2, CostUSD: 0.07, PromptTokens: 100, CompletionTokens: 20, CacheHits: 1,
			Latency: chquery.Percentiles{P50: 300, P95: 400, P99: 400}, TTFT: chquery.Percentiles{P50: 40, P95: 60, P99: 60}},
		{Start: t0.Add(10 * time.Minute), Requests: 1, Errors: 1, CostUSD: 0.5, PromptTokens: 5, CompletionTokens: 1,
			Latency: chquery.Percentiles{P50: 50, P95: 50, P99: 50}, TTFT: chquery.Percentiles{P50: 0, P95: 0, P99: 0}},
		{Start: t0.Add(30 * time.Minute), Requests: 2, CostUSD: 0.003, PromptTokens: 3, CompletionTokens: 3,
			Latency: chquery.Percentiles{P50: 20, P95: 20, P99: 20}, TTFT: chquery.Percentiles{P50: 7, P95: 7, P99: 7}},
	}
	if len(st.Volume) != len(want) {
		t.Fatalf("volume %+v, want %+v", st.Volume, want)
	}
	for i, w := range want {
		g := st.Volume[i]
		if !near(g.CostUSD, w.CostUSD) {
			t.Errorf("bucket %d cost %v, want %v", i, g.CostUSD, w.CostUSD)
		}
		g.CostUSD = w.CostUSD
		if !g.Start.Equal(w.Start) {
			t.Errorf("bucket %d start %v, want %v", i, g.Start, w.Start)
		}
		g.Start = w.Start
		if g != w {
			t.Errorf("bucket %d\n got %+v\nwant %+v", i, g, w)
		}
	}
	// Totals are unchanged by the bucket figures: 7 calls, 3 errors.
	if st.Requests != 7 || st.Errors != 3 || st.PromptTokens != 108 || st.CacheHits != 1 {
		t.Errorf("totals %+v", st)
	}

	// The wire names the dashboard reads.
	var raw struct {
		Volume []map[string]json.RawMessage `json:"volume"`
	}
	if err := json.Unmarshal(rr.Body.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"start", "requests", "errors", "cost_usd", "prompt_tokens", "completion_tokens", "cache_hits", "latency_ms", "ttft_ms"} {
		if _, ok := raw.Volume[0][k]; !ok {
			t.Errorf("bucket JSON lacks %q: %v", k, raw.Volume[0])
		}
	}
	var p map[string]float64
	if err := json.Unmarshal(raw.Volume[0]["latency_ms"], &p); err != nil || p["p50"] != 300 || p["p95"] != 400 || p["p99"] != 400 {
		t.Errorf("latency_ms JSON %s (%v)", raw.Volume[0]["latency_ms"], err)
	}
}
