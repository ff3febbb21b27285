package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/record"
	"github.com/tollgate-dev/tollgate/storage/chquery"
)

// queryRows posts a Helicone query and returns its rows (200 expected).
func queryRows(t *testing.T, h http.Handler, headers map[string]string, body string) []map[string]any {
	t.Helper()
	rr := do(t, h, "POST", "/v1/request/query", local, headers, body, nil)
	data, e := heliconeBody(t, rr.Body.Bytes())
	if rr.Code != 200 || e != nil {
		t.Fatalf("query %s: %d %s", body, rr.Code, rr.Body)
	}
	var rows []map[string]any
	if err := json.Unmarshal(data, &rows); err != nil || rows == nil {
		t.Fatalf("data %s: %v", data, err)
	}
	return rows
}

func rowIDs(rows []map[string]any) []string {
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i], _ = r["request_id"].(string)
	}
	return ids
}

// Helicone: valhalla/jawn/src/controllers/public/requestController.ts
// (POST /v1/request/query: RequestQueryParams {filter, offset, limit, sort,
// isCached, …} → Result {data: HeliconeRequest[], error}),
// packages/filters/filterDefs.ts (the filter tree: "all", {left, operator,
// right}, leaves per table; request_response_rmt's fields and operators),
// packages/filters/filters.ts (a leaf's conditions; properties[key]; the
// organization's condition ANDed in front of every filter) and
// valhalla/jawn/src/lib/stores/request/request.ts (the row's field names,
// limit at most 1000).
func TestHeliconeQuery(t *testing.T) {
	env := newCH(t)
	recs := seed(t, env)
	h := heliconeAPI(t, env, 100*time.Millisecond, nil)
	acme := filterRecs(recs, func(r *record.Record) bool { return r.Tenant == "acme" })
	query := func(filter string) []string {
		return rowIDs(queryRows(t, h, acmeKey, `{"filter": `+filter+`, "limit": 1000}`))
	}

	t.Run("filters", func(t *testing.T) {
		from, to := t0.Add(2*time.Minute), t0.Add(5*time.Minute)
		for _, c := range []struct {
			filter string
			keep   func(*record.Record) bool
		}{
			{`"all"`, func(*record.Record) bool { return true }},
			{`{}`, func(*record.Record) bool { return true }},
			{`{"request_response_rmt": {"model": {"equals": "gpt-4o-mini"}}}`, func(r *record.Record) bool { return r.Model == "gpt-4o-mini" }},
			{`{"request": {"model": {"equals": "claude-sonnet-4-5"}}}`, func(r *record.Record) bool { return r.Model == "claude-sonnet-4-5" }},
			{`{"left": {"request_response_rmt": {"model": {"equals": "gpt-4o-mini"}}}, "operator": "or", "right": {"request_response_rmt": {"status": {"gte": 500}}}}`,
				func(r *record.Record) bool { return r.Model == "gpt-4o-mini" || r.Status >= 500 }},
			{`{"left": {"request_response_rmt": {"user_id": {"equals": "u1"}}}, "operator": "and", "right": {"properties": {"env": {"equals": "prod"}}}}`,
				func(r *record.Record) bool { v, _ := prop(r, "env"); return r.UserID == "u1" && v == "prod" }},
			{`{"request_response_rmt": {"properties": {"Env": {"equals": "dev"}}}}`, func(r *record.Record) bool { v, _ := prop(r, "env"); return v == "dev" }},
			// A missing property reads as "" (Helicone's Map column).
			{`{"properties": {"team": {"not-equals": "a"}}}`, func(r *record.Record) bool { v, _ := prop(r, "team"); return v != "a" }},
			{`{"request_response_rmt": {"status": {"equals": -3}}}`, func(r *record.Record) bool { return r.Status == -3 }},
			{`{"request_response_rmt": {"latency": {"gt": 200}, "prompt_tokens": {"lte": 125}}}`, func(r *record.Record) bool { return r.LatencyMs > 200 && r.PromptTokens <= 125 }},
			{`{"request_response_rmt": {"total_tokens": {"gte": 150, "lt": 160}}}`, func(r *record.Record) bool {
				n := r.PromptTokens + r.CompletionTokens
				return n >= 150 && n < 160
			}},
			{`{"request_response_rmt": {"cost": {"gt": 0.02}}}`, func(r *record.Record) bool { return r.CostUSD > 0.02 }},
			{fmt.Sprintf(`{"left": {"request_response_rmt": {"request_created_at": {"gte": %q}}}, "operator": "and", "right": {"request": {"created_at": {"lt": %q}}}}`,
				from.Format(time.RFC3339Nano), to.Format("2006-01-02 15:04:05")),
				func(r *record.Record) bool { return !r.CreatedAt.Before(from) && r.CreatedAt.Before(to) }},
			{`{"request_response_rmt": {"provider": {"equals": "OPENAI"}}}`, func(r *record.Record) bool { return r.Provider == "openai" }},
			{`{"request_response_rmt": {"cached": {"equals": true}}}`, func(r *record.Record) bool { return r.CacheHit }},
			{`{"request_response_rmt": {"model": {"like": "gpt-%"}}}`, func(r *record.Record) bool { return strings.HasPrefix(r.Model, "gpt-") }},
			{`{"request_response_rmt": {"model": {"ilike": "GPT-%"}}}`, func(r *record.Record) bool { return strings.HasPrefix(r.Model, "gpt-") }},
			{`{"request_response_rmt": {"model": {"contains": "SONNET"}}}`, func(r *record.Record) bool { return strings.Contains(r.Model, "sonnet") }},
			{`{"request_response_rmt": {"model": {"not-contains": "mini"}}}`, func(r *record.Record) bool { return !strings.Contains(r.Model, "mini") }},
			{`{"properties": {"Helicone-Session-Id": {"equals": "s1"}}}`, func(r *record.Record) bool { return r.SessionID == "s1" }},
			{`{"request_response_rmt": {"request_body": {"contains": "\"n\":7}"}}}`, func(r *record.Record) bool { return r.RequestBody == `{"n":7}` }},
			{`{"response": {"status": {"not-equals": 200}}}`, func(r *record.Record) bool { return r.Status != 200 }},
		} {
			want := newestFirst(filterRecs(acme, c.keep))
			if got := query(c.filter); !slices.Equal(got, want) {
				t.Errorf("%s:\n got %v\nwant %v", c.filter, got, want)
			}
		}
	})

	t.Run("the tenant is the key's", func(t *testing.T) {
		other := filterRecs(recs, func(r *record.Record) bool { return r.Tenant == "other" })
		got := rowIDs(queryRows(t, h, otherKey, `{"filter": "all"}`))
		if want := newestFirst(other); !slices.Equal(got, want) {
			t.Errorf("other's rows %v, want %v", got, want)
		}
		// Naming another tenant's request, or its organization, finds nothing.
		f := fmt.Sprintf(`{"request_response_rmt": {"request_id": {"equals": %q}}}`, other[0].RequestID)
		if got := query(f); len(got) != 0 {
			t.Errorf("acme sees other's request: %v", got)
		}
		rr := do(t, h, "POST", "/v1/request/query", local, acmeKey, `{"filter": {"request_response_rmt": {"organization_id": {"equals": "other"}}}}`, nil)
		if rr.Code != 400 {
			t.Errorf("organization_id filter: %d %s", rr.Code, rr.Body)
		}
	})

	t.Run("sort, limit and offset", func(t *testing.T) {
		byLatency := slices.Clone(acme)
		sort.Slice(byLatency, func(i, j int) bool { return byLatency[i].LatencyMs < byLatency[j].LatencyMs })
		var want, got []string
		for _, r := range byLatency {
			want = append(want, r.RequestID)
		}
		for offset := 0; offset < len(acme); offset += 7 {
			page := rowIDs(queryRows(t, h, acmeKey, fmt.Sprintf(`{"filter": "all", "sort": {"latency": "asc"}, "limit": 7, "offset": %d}`, offset)))
			if len(page) > 7 {
				t.Fatalf("page of %d", len(page))
			}
			got = append(got, page...)
		}
		if !slices.Equal(got, want) {
			t.Errorf("by latency:\n got %v\nwant %v", got, want)
		}
		// Helicone's default limit is 10, newest first.
		if got := rowIDs(queryRows(t, h, acmeKey, `{"filter": "all"}`)); !slices.Equal(got, newestFirst(acme)[:10]) {
			t.Errorf("default page %v", got)
		}
		if got := queryRows(t, h, acmeKey, `{"filter": "all", "isCached": true, "limit": 100}`); len(got) != len(filterRecs(acme, func(r *record.Record) bool { return r.CacheHit })) {
			t.Errorf("isCached: %d rows", len(got))
		}
		if got := queryRows(t, h, acmeKey, `{"filter": "all", "isPartOfExperiment": true}`); len(got) != 0 {
			t.Errorf("isPartOfExperiment: %d rows", len(got))
		}
	})

	t.Run("rows have Helicone's fields", func(t *testing.T) {
		r := acme[4] // openai, not a cache hit, env prod? (4%5 != 0: dev), team a
		f := fmt.Sprintf(`{"request_response_rmt": {"request_id": {"equals": %q}}}`, r.RequestID)
		rows := queryRows(t, h, acmeKey, `{"filter": `+f+`}`)
		if len(rows) != 1 {
			t.Fatalf("rows %v", rows)
		}
		row := rows[0]
		want := map[string]any{
			"request_id": r.RequestID, "request_created_at": r.CreatedAt.Format("2006-01-02T15:04:05.000Z"),
			"response_status": float64(r.Status), "request_model": r.Model, "model": r.Model, "provider": "OPENAI",
			"prompt_tokens": float64(r.PromptTokens), "completion_tokens": float64(r.CompletionTokens),
			"total_tokens": float64(r.PromptTokens + r.CompletionTokens), "delay_ms": float64(r.LatencyMs),
			"time_to_first_token": float64(r.TTFTMs), "cost": r.CostUSD, "costUSD": r.CostUSD,
			"request_user_id": r.UserID, "request_path": r.Path, "response_id": nil, "feedback_rating": nil,
			"cache_reference_id": "00000000-0000-0000-0000-000000000000", "model_override": "gpt-4o",
			"response_created_at": r.CreatedAt.Add(time.Duration(r.LatencyMs) * time.Millisecond).Format("2006-01-02T15:04:05.000Z"),
		}
		for k, v := range want {
			if fmt.Sprint(row[k]) != fmt.Sprint(v) {
				t.Errorf("%s = %#v, want %#v", k, row[k], v)
			}
		}
		if b, _ := json.Marshal(row["request_body"]); string(b) != r.RequestBody {
			t.Errorf("request_body %s, want the JSON %s", b, r.RequestBody)
		}
		props, _ := row["request_properties"].(map[string]any)
		if props["env"] != "dev" || props["team"] != "a" || props["Helicone-Session-Id"] != "s1" {
			t.Errorf("request_properties %v", props)
		}
	})

	t.Run("feedback filters and scores", func(t *testing.T) {
		rated := acme[8]
		if rr := do(t, h, "POST", "/v1/request/"+rated.RequestID+"/feedback", local, acmeKey, `{"rating": true}`, nil); rr.Code != 200 {
			t.Fatalf("feedback: %d %s", rr.Code, rr.Body)
		}
		rows := queryRows(t, h, acmeKey, `{"filter": {"request_response_rmt": {"helicone-score-feedback": {"equals": true}}}}`)
		if len(rows) != 1 || rows[0]["request_id"] != rated.RequestID || rows[0]["feedback_rating"] != true {
			t.Fatalf("rated rows %v", rows)
		}
		if s, _ := rows[0]["scores"].(map[string]any); s["helicone-score-feedback"] != 1.0 {
			t.Errorf("scores %v", rows[0]["scores"])
		}
		if got := query(`{"feedback": {"rating": {"equals": false}}}`); len(got) != 0 {
			t.Errorf("bad ratings %v", got)
		}
		if got := rowIDs(queryRows(t, h, acmeKey, `{"filter": "all", "isScored": true}`)); !slices.Equal(got, []string{rated.RequestID}) {
			t.Errorf("isScored %v", got)
		}
		if rr := do(t, h, "POST", "/v1/request/"+acme[9].RequestID+"/score", local, acmeKey, `{"scores": {"quality": 7}}`, nil); rr.Code != 201 {
			t.Fatalf("score: %d %s", rr.Code, rr.Body)
		}
		if got := query(`{"request_response_rmt": {"scores": {"quality": {"gte": 5}}}}`); !slices.Equal(got, []string{acme[9].RequestID}) {
			t.Errorf("score filter %v", got)
		}
		unscored := filterRecs(acme, func(r *record.Record) bool { return r != rated && r != acme[9] })
		if got := rowIDs(queryRows(t, h, acmeKey, `{"filter": "all", "isScored": false, "limit": 1000}`)); !slices.Equal(got, newestFirst(unscored)) {
			t.Errorf("isScored false: %v", got)
		}
	})

	// Every value is a bound parameter: text an attacker crafts is data.
	t.Run("injection", func(t *testing.T) {
		for _, f := range []string{
			`{"request_response_rmt": {"model": {"equals": "x' OR 1=1 --"}}}`,
			`{"request_response_rmt": {"model": {"like": "%' OR '1'='1"}}}`,
			`{"request_response_rmt": {"user_id": {"contains": "') OR tenant != ('"}}}`,
			`{"properties": {"env') OR ('1'='1": {"equals": "dev"}}}`,
			`{"properties": {"a?b": {"equals": "?"}}}`,
			`{"request_response_rmt": {"model": {"equals": "\\' OR 1=1 --"}}}`,
			`{"request_response_rmt": {"request_id": {"equals": "x\u0000y"}}}`,
		} {
			if got := query(f); len(got) != 0 {
				t.Errorf("%s matched %d rows", f, len(got))
			}
		}
	})

	t.Run("bad input names the field", func(t *testing.T) {
		deep := `"all"`
		for range 40 {
			deep = `{"left": ` + deep + `, "operator": "and", "right": "all"}`
		}
		for _, c := range []struct{ body, field string }{
			{`{}`, "filter"},
			{`[]`, "body"},
			{`{"filter": "some"}`, "filter"},
			{`{"filter": {"request_response_rmt": {"country_code": {"equals": "US"}}}}`, "filter.request_response_rmt.country_code"},
			{`{"filter": {"request_response_rmt": {"model": {"gt": "a"}}}}`, "filter.request_response_rmt.model.gt"},
			{`{"filter": {"request_response_rmt": {"status": {"equals": "200"}}}}`, "filter.request_response_rmt.status.equals"},
			{`{"filter": {"request_response_rmt": {"request_created_at": {"gt": "yesterday"}}}}`, "filter.request_response_rmt.request_created_at.gt"},
			{`{"filter": {"request_response_rmt": {"cached": {"not-equals": true}}}}`, "filter.request_response_rmt.cached.not-equals"},
			{`{"filter": {"request_response_rmt": {"model": {}}}}`, "filter.request_response_rmt.model"},
			{`{"filter": {"users_view": {"user_user_id": {"equals": "x"}}}}`, "filter.users_view"},
			{`{"filter": {"left": "all", "operator": "xor", "right": "all"}}`, "filter.operator"},
			{`{"filter": {"left": "all", "operator": "and", "right": "nope"}}`, "filter.right"},
			{`{"filter": ` + deep + `}`, "filter" + strings.Repeat(".left", maxFilterDepth+1)},
			{`{"filter": "all", "limit": 1001}`, "limit"},
			{`{"filter": "all", "limit": -1}`, "limit"},
			{`{"filter": "all", "limit": 1.5}`, "limit"},
			{`{"filter": "all", "offset": 10001}`, "offset"},
			{`{"filter": "all", "sort": {"random": true}}`, "sort.random"},
			{`{"filter": "all", "sort": {"created_at": "up"}}`, "sort.created_at"},
			{`{"filter": "all", "isCached": "yes"}`, "isCached"},
			{`{"filter": "all", "tenant": "other"}`, "tenant"},
		} {
			rr := do(t, h, "POST", "/v1/request/query", local, acmeKey, c.body, nil)
			if _, e := heliconeBody(t, rr.Body.Bytes()); rr.Code != 400 || e == nil || !strings.HasPrefix(*e, c.field+":") {
				t.Errorf("%.80s: %d %s, want 400 naming %s", c.body, rr.Code, rr.Body, c.field)
			}
		}
	})

	t.Run("many conditions in one leaf", func(t *testing.T) {
		leaf := func(n int) string {
			var f []string
			for i := range n {
				f = append(f, fmt.Sprintf(`"p%d": {"not-equals": "x"}`, i))
			}
			return `{"properties": {` + strings.Join(f, ", ") + `}}`
		}
		if got := query(leaf(maxFilterLeaves)); len(got) != len(acme) {
			t.Errorf("%d conditions: %d rows", maxFilterLeaves, len(got))
		}
		rr := do(t, h, "POST", "/v1/request/query", local, acmeKey, `{"filter": `+leaf(maxFilterLeaves+1)+`}`, nil)
		if _, e := heliconeBody(t, rr.Body.Bytes()); rr.Code != 400 || e == nil || !strings.HasPrefix(*e, "filter:") {
			t.Errorf("%d conditions: %d %s", maxFilterLeaves+1, rr.Code, rr.Body)
		}
		// null is an absent optional field.
		if got := queryRows(t, h, acmeKey, `{"filter": "all", "sort": null, "limit": null, "isCached": null}`); len(got) != defaultHLimit {
			t.Errorf("nulls: %d rows", len(got))
		}
	})

	t.Run("bodies are bounded per answer", func(t *testing.T) {
		defer func(b int) { maxBodyBudget = b }(maxBodyBudget)
		maxBodyBudget = 100 // each seeded row's bodies are about 20 bytes
		rows := queryRows(t, h, acmeKey, `{"filter": "all", "limit": 10}`)
		with := 0
		for i, r := range rows {
			if m, ok := r["request_body"].(map[string]any); ok && m["helicone_message"] != nil {
				if i < 4 || r["response_body"].(map[string]any)["helicone_message"] == nil {
					t.Errorf("row %d omitted early: %v", i, r["request_body"])
				}
				continue
			}
			with++
		}
		if len(rows) != 10 || with < 4 || with > 5 {
			t.Errorf("%d rows, %d with bodies", len(rows), with)
		}
	})

	t.Run("query-clickhouse is the same query", func(t *testing.T) {
		rr := do(t, h, "POST", "/v1/request/query-clickhouse", local, acmeKey, `{"filter": "all", "limit": 3}`, nil)
		data, _ := heliconeBody(t, rr.Body.Bytes())
		var rows []map[string]any
		if rr.Code != 200 || json.Unmarshal(data, &rows) != nil || len(rows) != 3 {
			t.Errorf("%d %s", rr.Code, rr.Body)
		}
	})
}

// blockingQueries is a query backend whose Helicone queries wait until
// released; entered receives each query's tenant as it starts waiting.
type blockingQueries struct {
	Queries
	entered chan string
	release chan struct{}
}

func (b *blockingQueries) QueryHelicone(ctx context.Context, tenant string, _ chquery.HeliconeQuery) ([]*chquery.HeliconeRow, error) {
	b.entered <- tenant
	select {
	case <-b.release:
		return nil, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// One tenant holds at most maxTenantQueries of the maxHeliconeQueries
// slots: its slow queries turn its own next one away, not another
// tenant's; every slot taken turns everyone away.
func TestHeliconeQueryTenantShare(t *testing.T) {
	keys := make([]policies.APIKey, maxHeliconeQueries)
	auth := make([]map[string]string, len(keys))
	for i := range keys {
		key := fmt.Sprintf("sk-helicone-t%d", i)
		keys[i] = policies.APIKey{SHA256: policies.HashKey(key), Tenant: fmt.Sprintf("t%d", i)}
		auth[i] = map[string]string{"Helicone-Auth": "Bearer " + key}
	}
	a, err := policies.NewAuth(keys, false)
	if err != nil {
		t.Fatal(err)
	}
	b := &blockingQueries{entered: make(chan string, maxHeliconeQueries), release: make(chan struct{})}
	h := New(Options{Query: b, Auth: a})
	const body = `{"filter": "all"}`
	var wg sync.WaitGroup
	defer wg.Wait()
	released := false
	release := func() {
		if !released {
			released = true
			close(b.release)
		}
	}
	defer release()
	// hold starts a query and returns once it is running in the backend.
	hold := func(who int) {
		wg.Go(func() {
			if rr := do(t, h, "POST", "/v1/request/query", local, auth[who], body, nil); rr.Code != 200 {
				t.Errorf("t%d's held query: %d %s", who, rr.Code, rr.Body)
			}
		})
		if got, want := <-b.entered, fmt.Sprintf("t%d", who); got != want {
			t.Fatalf("query of %s entered, want %s", got, want)
		}
	}
	busy := func(who int, why string) {
		t.Helper()
		rr := do(t, h, "POST", "/v1/request/query", local, auth[who], body, nil)
		if _, e := heliconeBody(t, rr.Body.Bytes()); rr.Code != 503 || e == nil || !strings.Contains(*e, "retry") {
			t.Errorf("t%d %s: %d %s, want 503 to retry", who, why, rr.Code, rr.Body)
		}
	}

	for range maxTenantQueries {
		hold(0)
	}
	busy(0, "past its share")
	// t0's queries leave the other slots to the other tenants, one each.
	for i := 1; i <= maxHeliconeQueries-maxTenantQueries; i++ {
		hold(i)
	}
	busy(maxHeliconeQueries-1, "with every slot taken")
	release()
	wg.Wait()
	// Done, the queries gave their slots back, the tenant's share too.
	if rr := do(t, h, "POST", "/v1/request/query", local, auth[0], body, nil); rr.Code == 503 {
		t.Errorf("t0 after its queries ended: %d %s", rr.Code, rr.Body)
	}
}
