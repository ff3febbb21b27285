package api

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tollgate-dev/tollgate/provider"
	"github.com/tollgate-dev/tollgate/record"
	"github.com/tollgate-dev/tollgate/storage/chquery"
	"github.com/tollgate-dev/tollgate/storage/chstore"
)

func TestQueryAPI(t *testing.T) {
	env := newCH(t)
	recs := seed(t, env)
	h := New(Options{Query: env.q, Feedback: func(ctx context.Context, fb chstore.Feedback) error { return env.w.InsertFeedback(ctx, fb) }})
	list := func(query string, limit int) []string {
		return listAllH(t, h, query, limit)
	}
	acme := filterRecs(recs, func(r *record.Record) bool { return r.Tenant == "acme" })

	t.Run("pagination", func(t *testing.T) {
		for _, limit := range []int{1, 4, 7, 50} {
			got := list("tenant=acme", limit)
			if want := newestFirst(acme); !slices.Equal(got, want) {
				t.Fatalf("limit %d:\n got %v\nwant %v", limit, got, want)
			}
		}
		if got := list("", 500); len(got) != len(recs) {
			t.Fatalf("all tenants: %d rows, want %d", len(got), len(recs))
		}
	})

	t.Run("filters", func(t *testing.T) {
		from, to := t0.Add(2*time.Minute), t0.Add(5*time.Minute)
		for _, c := range []struct {
			query string
			keep  func(*record.Record) bool
		}{
			{"user=u1", func(r *record.Record) bool { return r.UserID == "u1" }},
			{"session=s1", func(r *record.Record) bool { return r.SessionID == "s1" }},
			{"property=env%3Dprod", func(r *record.Record) bool { v, _ := prop(r, "env"); return v == "prod" }},
			{"property=Env%3Ddev&property=team%3Da", func(r *record.Record) bool {
				v, _ := prop(r, "env")
				w, _ := prop(r, "team")
				return v == "dev" && w == "a"
			}},
			{"property=team%3D", func(r *record.Record) bool { return false }},
			{"model=claude-sonnet-4-5", func(r *record.Record) bool { return r.Model == "claude-sonnet-4-5" }},
			{"provider=openai&tenant=acme", func(r *record.Record) bool { return r.Provider == "openai" && r.Tenant == "acme" }},
			{"status=500", func(r *record.Record) bool { return r.Status == 500 }},
			{"status=-3", func(r *record.Record) bool { return r.Status == -3 }},
			{"cache_hit=true", func(r *record.Record) bool { return r.CacheHit }},
			{"cache_hit=false&tenant=acme", func(r *record.Record) bool { return !r.CacheHit && r.Tenant == "acme" }},
			{"tenant=other", func(r *record.Record) bool { return r.Tenant == "other" }},
			{"workload_namespace=team-b", func(r *record.Record) bool { return r.WorkloadNamespace == "team-b" }},
			{"workload_name=app-1", func(r *record.Record) bool { return r.WorkloadName == "app-1" }},
			{"workload_namespace=team-a&workload_name=app-2", func(r *record.Record) bool {
				return r.WorkloadNamespace == "team-a" && r.WorkloadName == "app-2"
			}},
			{"workload_name=app", func(r *record.Record) bool { return false }}, // exact match, no prefix
			{"from=" + from.Format(time.RFC3339) + "&to=" + to.Format(time.RFC3339), func(r *record.Record) bool {
				return !r.CreatedAt.Before(from) && r.CreatedAt.Before(to)
			}},
		} {
			want := newestFirst(filterRecs(recs, c.keep))
			if got := list(c.query, 5); !slices.Equal(got, want) {
				t.Errorf("%s:\n got %v\nwant %v", c.query, got, want)
			}
		}
	})

	t.Run("bad parameters", func(t *testing.T) {
		for _, c := range []struct{ query, param string }{
			{"limit=0", "limit"}, {"limit=501", "limit"}, {"limit=x", "limit"},
			{"cursor=zzz", "cursor"}, {"status=abc", "status"}, {"cache_hit=maybe", "cache_hit"},
			{"from=yesterday", "from"}, {"to=2026-01-01", "to"}, {"property=novalue", "property"},
			{"from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z", "to"},
		} {
			rr := do(t, h, "GET", "/v1/requests?"+c.query, local, nil, "", nil)
			if rr.Code != 400 || !strings.HasPrefix(errorMessage(t, rr), c.param+":") {
				t.Errorf("%s: %d %s, want 400 naming %s", c.query, rr.Code, rr.Body, c.param)
			}
		}
		for _, q := range []string{"bucket=0", "bucket=1&from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z", "from=nope"} {
			rr := do(t, h, "GET", "/v1/stats?"+q, local, nil, "", nil)
			if rr.Code != 400 {
				t.Errorf("stats %s: %d", q, rr.Code)
			}
		}
		if rr := do(t, h, "GET", "/v1/requests/nope", local, nil, "", nil); rr.Code != 400 {
			t.Errorf("bad id: %d", rr.Code)
		}
	})

	t.Run("get and feedback", func(t *testing.T) {
		r := recs[4]
		var d map[string]any
		if rr := do(t, h, "GET", "/v1/requests/"+r.RequestID, local, nil, "", &d); rr.Code != 200 {
			t.Fatalf("%d %s", rr.Code, rr.Body)
		}
		if d["request_body"] != r.RequestBody || d["response_body"] != r.ResponseBody || d["user_id"] != r.UserID ||
			d["rating"] != nil || d["prompt_tokens"] != float64(r.PromptTokens) || d["created_at"] != r.CreatedAt.Format(time.RFC3339) {
			t.Errorf("detail %v", d)
		}
		props, _ := d["properties"].([]any)
		if len(props) != len(r.Properties) {
			t.Errorf("properties %v", d["properties"])
		}
		checkNewFields(t, d, r)
		if d["model_override"] != r.ModelOverride || d["warnings"] != r.Warnings || r.ModelOverride == "" {
			t.Errorf("model_override %v, warnings %v", d["model_override"], d["warnings"])
		}
		if rr := do(t, h, "GET", "/v1/requests/"+uuid.NewString(), local, nil, "", nil); rr.Code != 404 {
			t.Errorf("unknown id: %d", rr.Code)
		}
		if rr := do(t, h, "GET", "/v1/requests/"+r.RequestID+"?tenant=other", local, nil, "", nil); rr.Code != 404 {
			t.Errorf("other tenant: %d", rr.Code)
		}

		for i, rating := range []bool{false, true} {
			// The newest rating wins (created_at is the version, in seconds).
			// The rating is the tenant's of the Helicone key (acme's here).
			hh := New(Options{Query: env.q, Now: fixedClock(t0.Add(time.Duration(i) * time.Hour)), Auth: tenantKeys(t),
				Feedback: func(ctx context.Context, fb chstore.Feedback) error { return env.w.InsertFeedback(ctx, fb) }})
			var ok map[string]any
			if rr := do(t, hh, "POST", "/v1/request/"+r.RequestID+"/feedback", local, acmeKey, fmt.Sprintf(`{"rating":%v}`, rating), &ok); rr.Code != 200 || len(ok) != 2 || ok["data"] != nil || ok["error"] != nil {
				t.Fatalf("feedback: %d %s", rr.Code, rr.Body)
			}
			d = nil
			do(t, h, "GET", "/v1/requests/"+r.RequestID, local, nil, "", &d)
			if d["rating"] != rating {
				t.Fatalf("after rating %v: rating %v", rating, d["rating"])
			}
		}
	})

	t.Run("semantic hit detail and provider filter", func(t *testing.T) {
		r := recs[11]
		var d map[string]any
		if rr := do(t, h, "GET", "/v1/requests/"+r.RequestID, local, nil, "", &d); rr.Code != 200 {
			t.Fatalf("%d %s", rr.Code, rr.Body)
		}
		if r.CacheSimilarity == 0 || d["cache_hit"] != true || d["cache_reference_id"] != r.CacheReferenceID {
			t.Errorf("semantic hit detail %v", d)
		}
		checkNewFields(t, d, r)

		var out struct {
			Requests []map[string]any `json:"requests"`
		}
		if rr := do(t, h, "GET", "/v1/requests?tenant=acme&provider=anthropic&limit=500", local, nil, "", &out); rr.Code != 200 {
			t.Fatalf("%d %s", rr.Code, rr.Body)
		}
		if len(out.Requests) != 15 {
			t.Errorf("provider=anthropic: %d rows, want 15", len(out.Requests))
		}
		for _, row := range out.Requests {
			if row["provider"] != "anthropic" {
				t.Errorf("provider=anthropic returned %v", row["provider"])
			}
		}
	})

	t.Run("list has retry, workload and policy fields", func(t *testing.T) {
		var out struct {
			Requests []map[string]any `json:"requests"`
		}
		if rr := do(t, h, "GET", "/v1/requests?limit=500", local, nil, "", &out); rr.Code != 200 {
			t.Fatalf("%d %s", rr.Code, rr.Body)
		}
		byID := map[string]*record.Record{}
		for _, r := range recs {
			byID[r.RequestID] = r
		}
		for _, row := range out.Requests {
			checkNewFields(t, row, byID[row["request_id"].(string)])
		}
	})

	t.Run("stats", func(t *testing.T) {
		from, to := t0, t0.Add(time.Hour)
		var st chquery.Stats
		q := "tenant=acme&bucket=300&group_property=env&from=" + from.Format(time.RFC3339) + "&to=" + to.Format(time.RFC3339)
		if rr := do(t, h, "GET", "/v1/stats?"+q, local, nil, "", &st); rr.Code != 200 {
			t.Fatalf("%d %s", rr.Code, rr.Body)
		}
		checkStats(t, &st, acme)

		// an empty range
		var empty chquery.Stats
		q = "from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z"
		if rr := do(t, h, "GET", "/v1/stats?"+q, local, nil, "", &empty); rr.Code != 200 || empty.Requests != 0 || len(empty.Volume) != 0 || empty.BucketSeconds != 3600 {
			t.Fatalf("empty: %d %+v", rr.Code, empty)
		}
	})
}

// checkNewFields compares the retry, workload and policy fields of an API
// answer with the record written.
func checkNewFields(t *testing.T, got map[string]any, r *record.Record) {
	t.Helper()
	want := map[string]any{
		"attempts": float64(r.Attempts), "retry_policy": r.RetryPolicy,
		"workload_namespace": r.WorkloadNamespace, "workload_service_account": r.WorkloadServiceAccount,
		"workload_name": r.WorkloadName, "policy_rule": r.PolicyRule, "policy_decision": r.PolicyDecision,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s = %#v, want %#v", r.RequestID, k, got[k], v)
		}
	}
	if got["provider"] != r.Provider {
		t.Errorf("%s: provider = %#v, want %q", r.RequestID, got["provider"], r.Provider)
	}
	// cache_similarity: a semantic hit's similarity, absent otherwise
	if sim, ok := got["cache_similarity"].(float64); r.CacheSimilarity > 0 && float32(sim) != r.CacheSimilarity ||
		r.CacheSimilarity == 0 && ok {
		t.Errorf("%s: cache_similarity = %#v, want %v", r.RequestID, got["cache_similarity"], r.CacheSimilarity)
	}
}

// checkStats recomputes the figures from the seed.
func checkStats(t *testing.T, st *chquery.Stats, recs []*record.Record) {
	t.Helper()
	var cost, saved, exactSaved, semSaved float64
	var errs, hits, semHits uint64
	var lat, ttft []float64
	byModel := map[string]chquery.Group{}
	byUser := map[string]chquery.Group{}
	byEnv := map[string]chquery.Group{}
	vol := map[int64]chquery.Bucket{}
	volLat, volTTFT := map[int64][]float64{}, map[int64][]float64{}
	prices := provider.DefaultPrices()
	for _, r := range recs {
		cost += r.CostUSD
		isErr := r.Status >= 400 || r.Status < 0
		if isErr {
			errs++
		}
		if r.CacheHit {
			hits++
			p, ok := prices.Lookup(r.Provider, r.Model)
			if !ok {
				t.Fatalf("no price for %s", r.Model)
			}
			c := p.Cost(provider.Usage{PromptTokens: r.PromptTokens, CompletionTokens: r.CompletionTokens, CachedTokens: r.CachedTokens})
			saved += c
			if r.CacheSimilarity > 0 {
				semHits++
				semSaved += c
			} else {
				exactSaved += c
			}
		}
		lat = append(lat, float64(r.LatencyMs))
		if r.TTFTMs > 0 {
			ttft = append(ttft, float64(r.TTFTMs))
		}
		add := func(m map[string]chquery.Group, k string) {
			g := m[k]
			g.Key = k
			g.Requests++
			g.CostUSD += r.CostUSD
			g.PromptTokens += r.PromptTokens
			g.CompletionTokens += r.CompletionTokens
			m[k] = g
		}
		add(byModel, r.Model)
		add(byUser, r.UserID)
		env, _ := prop(r, "env")
		add(byEnv, env)
		b := r.CreatedAt.Unix() / 300 * 300
		v := vol[b]
		v.Start = time.Unix(b, 0).UTC()
		v.Requests++
		v.CostUSD += r.CostUSD
		v.PromptTokens += r.PromptTokens
		v.CompletionTokens += r.CompletionTokens
		if r.CacheHit {
			v.CacheHits++
		}
		if isErr {
			v.Errors++
		}
		vol[b] = v
		volLat[b] = append(volLat[b], float64(r.LatencyMs))
		if r.TTFTMs > 0 {
			volTTFT[b] = append(volTTFT[b], float64(r.TTFTMs))
		}
	}
	n := uint64(len(recs))
	if st.Requests != n || st.Errors != errs || st.CacheHits != hits || !near(st.CostUSD, cost) ||
		!near(st.ErrorRate, float64(errs)/float64(n)) || !near(st.CacheHitRate, float64(hits)/float64(n)) {
		t.Errorf("totals: got requests %d errors %d (%.4f) hits %d (%.4f) cost %.6f; want %d %d %d %.6f",
			st.Requests, st.Errors, st.ErrorRate, st.CacheHits, st.CacheHitRate, st.CostUSD, n, errs, hits, cost)
	}
	if errs == 0 || hits == 0 || saved == 0 {
		t.Fatal("seed lacks errors or cache hits")
	}
	if !near(st.CostSavedUSD, saved) {
		t.Errorf("cost saved %.9f, want %.9f", st.CostSavedUSD, saved)
	}
	if semHits == 0 || semHits == hits {
		t.Fatal("seed lacks semantic or exact cache hits")
	}
	if st.SemanticCacheHits != semHits || !near(st.ExactCostSavedUSD, exactSaved) || !near(st.SemanticCostSavedUSD, semSaved) {
		t.Errorf("savings split: semantic hits %d exact %.9f semantic %.9f; want %d %.9f %.9f",
			st.SemanticCacheHits, st.ExactCostSavedUSD, st.SemanticCostSavedUSD, semHits, exactSaved, semSaved)
	}
	if want := exactPercentiles(lat); st.Latency != want {
		t.Errorf("latency %+v, want %+v", st.Latency, want)
	}
	if want := exactPercentiles(ttft); st.TTFT != want {
		t.Errorf("ttft %+v, want %+v", st.TTFT, want)
	}
	for _, c := range []struct {
		name string
		got  []chquery.Group
		want map[string]chquery.Group
	}{{"by_model", st.ByModel, byModel}, {"by_user", st.ByUser, byUser}, {"by_property", st.ByProperty, byEnv}} {
		if len(c.got) != len(c.want) {
			t.Errorf("%s: %+v, want %+v", c.name, c.got, c.want)
			continue
		}
		for i, g := range c.got {
			w := c.want[g.Key]
			if g.Requests != w.Requests || !near(g.CostUSD, w.CostUSD) || g.PromptTokens != w.PromptTokens || g.CompletionTokens != w.CompletionTokens {
				t.Errorf("%s[%s]: %+v, want %+v", c.name, g.Key, g, w)
			}
			if i > 0 && c.got[i-1].CostUSD < g.CostUSD {
				t.Errorf("%s not ordered by cost: %+v", c.name, c.got)
			}
		}
	}
	if len(st.Volume) != len(vol) {
		t.Fatalf("volume %+v, want %d buckets", st.Volume, len(vol))
	}
	for i, b := range st.Volume {
		w := vol[b.Start.Unix()]
		w.Latency, w.TTFT = exactPercentiles(volLat[b.Start.Unix()]), exactPercentiles(volTTFT[b.Start.Unix()])
		if !b.Start.Equal(w.Start) || b.Requests != w.Requests || b.Errors != w.Errors || !near(b.CostUSD, w.CostUSD) ||
			b.PromptTokens != w.PromptTokens || b.CompletionTokens != w.CompletionTokens || b.CacheHits != w.CacheHits ||
			b.Latency != w.Latency || b.TTFT != w.TTFT {
			t.Errorf("volume[%d] %+v, want %+v", i, b, w)
		}
		if i > 0 && !st.Volume[i-1].Start.Before(b.Start) {
			t.Errorf("volume not in time order")
		}
	}
}

// exactPercentiles is quantileExact: the value at rank floor(level × n).
func exactPercentiles(v []float64) chquery.Percentiles {
	s := slices.Clone(v)
	slices.Sort(s)
	at := func(level float64) float64 {
		if len(s) == 0 {
			return 0
		}
		return s[min(int(level*float64(len(s))), len(s)-1)]
	}
	return chquery.Percentiles{P50: at(0.5), P95: at(0.95), P99: at(0.99)}
}
