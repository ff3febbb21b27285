package api

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tollgate-dev/tollgate/record"
	"github.com/tollgate-dev/tollgate/storage/chquery"
	"github.com/tollgate-dev/tollgate/storage/chstore"
	"github.com/tollgate-dev/tollgate/storage/chstore/chtest"
)

// chEnv is a private database on the shared ClickHouse, dropped at the end.
type chEnv struct {
	w          *chstore.Writer
	q          *chquery.Requests
	alertStore *chquery.Alerts
}

func newCH(t *testing.T) *chEnv {
	t.Helper()
	dsn, conn, db := chtest.FreshDatabase(t, "tollgate_test")
	alertStore, err := chquery.NewAlerts(conn, db)
	if err != nil {
		t.Fatal(err)
	}
	return &chEnv{w: chtest.Writer(t, dsn), q: chquery.NewRequests(conn, db, nil), alertStore: alertStore}
}

// seed writes known rows and returns them (normalized as stored).
func seed(t *testing.T, env *chEnv) []*record.Record {
	t.Helper()
	var recs []*record.Record
	for i := range 30 {
		r := &record.Record{
			RequestID: fmt.Sprintf("0193a5c4-%04x-7000-8000-%012x", i*7919%65536, i),
			// three rows per minute: ties on the second exercise the cursor
			CreatedAt: t0.Add(time.Duration(i/3) * time.Minute),
			Tenant:    "acme",
			UserID:    fmt.Sprintf("u%d", i%3),
			Status:    200,
			Method:    "POST", Path: "/v1/chat/completions",
			PromptTokens: int64(100 + i), CompletionTokens: int64(10 + i), CachedTokens: int64(i % 4),
			LatencyMs:   int64(i+1) * 10,
			RequestBody: fmt.Sprintf(`{"n":%d}`, i), ResponseBody: fmt.Sprintf(`{"answer":%d}`, i),
		}
		if i%2 == 0 {
			r.Provider, r.Model, r.TTFTMs = "openai", "gpt-4o-mini", int64(i+1)*5
		} else {
			r.Provider, r.Model = "anthropic", "claude-sonnet-4-5"
		}
		if i < 10 {
			r.SessionID = "s1"
		}
		env := "dev"
		if i%5 == 0 {
			env = "prod"
		}
		r.Properties = []record.Property{{Key: "env", Value: env}}
		if i%4 == 0 {
			r.Properties = append(r.Properties, record.Property{Key: "team", Value: "a"})
		}
		if i%7 == 3 {
			r.Status = 500
		}
		if i == 29 {
			r.Status = record.StatusClientCancelled
		}
		if i == 4 {
			r.ModelOverride, r.Warnings = "gpt-4o", "Helicone-Cache-Enabled: yes"
		}
		if i%6 == 5 {
			r.CacheHit = true
			if i%12 == 11 { // 11 and 23: semantic hits (a paraphrase's entry)
				r.CacheSimilarity = 0.9 + float32(i)/1000
				r.CacheReferenceID = fmt.Sprintf("0193a5c4-0000-7000-8000-%012x", i-1)
			}
		} else {
			r.CostUSD = float64(i) * 0.001
			r.Attempts = int32(1 + i%3)
		}
		if i%2 == 0 {
			r.RetryPolicy = "num=3 factor=2 min_timeout_ms=1000 max_timeout_ms=10000"
		}
		r.WorkloadNamespace, r.WorkloadServiceAccount = "team-a", "default"
		if i%3 == 2 {
			r.WorkloadNamespace, r.WorkloadServiceAccount = "team-b", "batch"
		}
		r.WorkloadName = fmt.Sprintf("app-%d", i%4)
		r.PolicyDecision = "allow"
		if i%5 == 4 {
			r.PolicyRule, r.PolicyDecision = "no-anthropic", "deny: provider anthropic not allowed"
		}
		recs = append(recs, r)
	}
	// another tenant, inside the same window
	for i := range 3 {
		recs = append(recs, &record.Record{RequestID: uuid.NewString(), CreatedAt: t0.Add(time.Duration(i) * time.Second),
			Tenant: "other", UserID: "x", Provider: "openai", Model: "gpt-4o", Status: 200, CostUSD: 1})
	}
	for _, r := range recs {
		c := *r
		env.w.Write(&c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := env.w.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	return recs
}

// newestFirst is the API's order: second of created_at, then id, descending.
func newestFirst(recs []*record.Record) []string {
	s := slices.Clone(recs)
	sort.Slice(s, func(i, j int) bool {
		a, b := s[i].CreatedAt.Unix(), s[j].CreatedAt.Unix()
		if a != b {
			return a > b
		}
		return s[i].RequestID > s[j].RequestID
	})
	ids := make([]string, len(s))
	for i, r := range s {
		ids[i] = r.RequestID
	}
	return ids
}

func filterRecs(recs []*record.Record, keep func(*record.Record) bool) []*record.Record {
	var out []*record.Record
	for _, r := range recs {
		if keep(r) {
			out = append(out, r)
		}
	}
	return out
}

func prop(r *record.Record, k string) (string, bool) {
	for _, p := range r.Properties {
		if p.Key == k {
			return p.Value, true
		}
	}
	return "", false
}

// listAllH walks every page of /v1/requests?query and returns the ids.
func listAllH(t *testing.T, h http.Handler, query string, limit int) []string {
	t.Helper()
	var ids []string
	seen := map[string]bool{}
	cursor := ""
	for page := 0; ; page++ {
		if page > 200 {
			t.Fatal("too many pages")
		}
		v, _ := url.ParseQuery(query)
		v.Set("limit", fmt.Sprint(limit))
		if cursor != "" {
			v.Set("cursor", cursor)
		}
		var out struct {
			Requests []map[string]any `json:"requests"`
			Next     string           `json:"next_cursor"`
		}
		rr := do(t, h, "GET", "/v1/requests?"+v.Encode(), local, nil, "", &out)
		if rr.Code != 200 {
			t.Fatalf("GET %s: %d %s", v.Encode(), rr.Code, rr.Body)
		}
		if len(out.Requests) > limit {
			t.Fatalf("page of %d rows, limit %d", len(out.Requests), limit)
		}
		for _, r := range out.Requests {
			if _, ok := r["request_body"]; ok {
				t.Fatalf("list includes bodies: %v", r)
			}
			id := r["request_id"].(string)
			if seen[id] {
				t.Fatalf("%s listed twice", id)
			}
			seen[id] = true
			ids = append(ids, id)
		}
		if out.Next == "" {
			return ids
		}
		cursor = out.Next
	}
}
