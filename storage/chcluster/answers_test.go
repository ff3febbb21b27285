package chcluster

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tollgate-dev/tollgate/alerts"
	"github.com/tollgate-dev/tollgate/internal/testenv"
	"github.com/tollgate-dev/tollgate/record"
	"github.com/tollgate-dev/tollgate/storage/chquery"
	"github.com/tollgate-dev/tollgate/storage/chschema"
	"github.com/tollgate-dev/tollgate/storage/chstore"
	"github.com/tollgate-dev/tollgate/storage/chstore/chtest"
)

// testSameAnswers writes the same calls, replays, feedback, scores and
// alert rows through the same code into one server and into the cluster,
// and asks both every question chquery answers (the API's list, detail,
// stats and Helicone queries, the alerts' metrics and stores): the
// answers must be the same.
func testSameAnswers(t *testing.T, c *testenv.ClickHouseCluster) {
	now := time.Now().UTC().Truncate(time.Second)
	singleURL, _, singleDB := chtest.FreshDatabase(t, "same")
	clusterURL, clusterDBName := clusterDB(t, c, "same")
	migrate(t, clusterURL)

	seed(t, singleURL, now)
	seed(t, clusterURL, now)
	syncReplicas(t, c, clusterDBName)

	single := answers(t, singleURL, singleDB, now)
	cluster := answers(t, clusterURL, clusterDBName, now)
	if len(single) == 0 {
		t.Fatal("no answers")
	}
	for name, want := range single {
		if got := cluster[name]; got != want {
			t.Errorf("%s differs on the cluster:\n one server: %s\n cluster:    %s", name, want, got)
		}
	}
	// An answer empty on both sides would compare equal and prove
	// nothing: every question the seed has rows for must find them.
	for name, v := range single {
		if (v == "null" || v == "[]" || v == "{}" || v == "0" || v == "false") && !emptyBySeed(name) {
			t.Errorf("%s: empty on one server (%s), though the seed holds rows for it", name, v)
		}
	}
	// The seeded rows really were spread: both shards hold requests.
	for s := range c.Shards {
		var n uint64
		if err := nodeConn(t, c.Node(s, 0)).QueryRow(context.Background(),
			"SELECT count() FROM "+clusterDBName+"."+chschema.RequestsTable+chschema.LocalSuffix).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Errorf("shard %d holds no requests: the Distributed table did not shard them", s+1)
		}
	}
}

// emptyBySeed names the answers that are empty because of how the seed
// spreads rows over the tenants: "acme" holds the odd calls, so none of
// gpt-4o (every fourth call), no scores (every fourth) and no unscored
// cache hits (every tenth); a call of one tenant does not exist for the
// other.
func emptyBySeed(name string) bool {
	var i int
	var tenant string
	if _, err := fmt.Sscanf(name, "exists %d %q", &i, &tenant); err == nil {
		return (tenant == "acme") != (i%2 == 1)
	}
	if _, err := fmt.Sscanf(name, "get %d %q", &i, &tenant); err == nil {
		return tenant == "acme" && i%2 == 0
	}
	acme := strings.HasPrefix(name, "helicone acme ") || strings.HasSuffix(name, " acme")
	return acme && (strings.Contains(name, "gpt-4o") || strings.Contains(name, `"Key":"quality"`) || strings.Contains(name, "scored=false cached=true"))
}

func seedID(i int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", i) }

// seedRecords are 120 calls over two tenants, four models, five users,
// properties, errors, cache hits and streams over the last two hours. Costs
// are multiples of 1/8 so that sums are exact whatever order shards add
// them in.
func seedRecords(now time.Time) []*record.Record {
	var out []*record.Record
	models := []string{"gpt-4o", "gpt-4o-mini", "claude-sonnet-4-5", "o3"}
	for i := range 120 {
		r := &record.Record{
			RequestID: seedID(i), CreatedAt: now.Add(-time.Duration(i) * 61 * time.Second),
			Tenant: []string{"", "acme"}[i%2], UserID: fmt.Sprintf("user%d", i%5),
			SessionID: fmt.Sprintf("s%d", i%7), Model: models[i%4], ResponseModel: models[i%4],
			Provider: []string{"openai", "openai", "anthropic", "openai"}[i%4], Method: "POST", Path: "/v1/chat/completions",
			Status: []int32{200, 200, 200, 429, 500, record.StatusTimeout}[i%6], Stream: i%3 == 0,
			PromptTokens: int64(100 + i*7), CompletionTokens: int64(20 + i*3), CachedTokens: int64(i % 11),
			CostUSD: float64(i%9) / 8, LatencyMs: int64(50 + (i*37)%900), TTFTMs: int64((i * 13) % 200),
			CacheHit: i%10 == 0, RequestBody: fmt.Sprintf(`{"n":%d}`, i), ResponseBody: fmt.Sprintf(`{"answer":%d}`, i),
		}
		if r.CacheHit && i%20 == 0 {
			r.CacheSimilarity = 0.93
		}
		if i%4 != 3 {
			r.Properties = []record.Property{{Key: "env", Value: []string{"prod", "dev", "prod"}[i%3]}}
		}
		out = append(out, r)
	}
	return out
}

// seed writes seedRecords through the real writer (WAL and spool), and a
// replay of 30 of them (a batch inserted twice), then feedback, scores and
// alert rows.
func seed(t *testing.T, url string, now time.Time) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	w, err := chstore.Open(ctx, chstore.Options{URL: url, SpoolDir: t.TempDir(), FlushInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	recs := seedRecords(now)
	for _, r := range recs {
		w.Write(r)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs[40:70] {
		cp := *r
		w.Write(&cp)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}

	conn, db, err := chschema.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var fb []chstore.Feedback
	for i := 0; i < 120; i += 3 {
		fb = append(fb, chstore.Feedback{RequestID: seedID(i), Tenant: recs[i].Tenant, Rating: i%2 == 0, CreatedAt: now.Add(-time.Minute)})
	}
	// A later change of mind for some: the newest rating wins.
	for i := 0; i < 120; i += 9 {
		fb = append(fb, chstore.Feedback{RequestID: seedID(i), Tenant: recs[i].Tenant, Rating: i%2 == 1, CreatedAt: now})
	}
	if err := chstore.InsertFeedback(ctx, conn, db, fb...); err != nil {
		t.Fatal(err)
	}
	q := chquery.NewRequests(conn, db, nil)
	for i := 0; i < 120; i += 4 {
		scores := []chquery.Score{{Name: "quality", Value: float64(i % 5)}, {Name: "safe", Value: float64(i % 2), Bool: true}}
		if err := q.InsertScores(ctx, recs[i].Tenant, seedID(i), now.Add(-time.Minute), scores); err != nil {
			t.Fatal(err)
		}
	}
	a, err := chquery.NewAlerts(conn, db)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		r := alerts.StoredRule{Rule: alerts.Rule{ID: fmt.Sprintf("rule%d", i), Name: fmt.Sprintf("rule %d", i),
			Metric: alerts.CostUSD, Threshold: float64(i), Window: time.Hour, Cooldown: time.Minute, Enabled: true,
			WebhookURL: "http://127.0.0.1:1/hook"}, CreatedAt: now.Add(-time.Hour), Version: uint64(i + 1)}
		if err := a.PutRule(ctx, r); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 { // a newer version: renamed, or deleted
			r.Version += 100
			r.Name += " (v2)"
			r.Deleted = i == 4
			if err := a.PutRule(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
	}
	var events []alerts.Event
	for i := range 12 {
		events = append(events, alerts.Event{ID: uuid.NewSHA1(uuid.Nil, []byte{byte(i)}).String(), RuleID: fmt.Sprintf("rule%d", i%6),
			RuleName: "r", Metric: alerts.CostUSD, Value: float64(i), Threshold: 1, Window: time.Hour,
			FiredAt: now.Add(-time.Duration(i) * time.Minute), Generation: "g1", Delivered: i%3 == 0, Lost: i == 7,
			Version: uint64(i + 1)})
	}
	if err := a.PutEvents(ctx, events...); err != nil {
		t.Fatal(err)
	}
	events[2].Delivered, events[2].Version = true, 1000 // a later rewrite of one event
	if err := a.PutEvents(ctx, events[2]); err != nil {
		t.Fatal(err)
	}
}

// answers asks every query of chquery, each answer as JSON by name.
func answers(t *testing.T, url, db string, now time.Time) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, _, err := chschema.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	q := chquery.NewRequests(conn, db, nil)
	out := map[string]string{}
	put := func(name string, v any, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = string(b)
	}
	from, to := now.Add(-3*time.Hour), now.Add(time.Minute)
	for _, tenant := range []string{"", "acme"} {
		f := chquery.Filter{Tenant: tenant, From: from, To: to}
		// Every page of the list, by cursor.
		var all []*record.Record
		var cur *chquery.Cursor
		for page := 0; page < 20; page++ {
			recs, next, err := q.List(ctx, f, 7, cur)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, recs...)
			if cur = next; cur == nil {
				break
			}
		}
		put("list "+tenant, all, nil)
		prod := f
		prod.Properties = []record.Property{{Key: "env", Value: "prod"}}
		prod.Model = "gpt-4o"
		recs, _, err := q.List(ctx, prod, 100, nil)
		put("list prod gpt-4o "+tenant, recs, err)

		st, err := q.Stats(ctx, f, 600, "env")
		put("stats "+tenant, st, err)
		hit := true
		f.CacheHit = &hit
		st, err = q.Stats(ctx, f, 3600, "")
		put("stats cache hits "+tenant, st, err)

		for _, hq := range heliconeQueries() {
			rows, err := q.QueryHelicone(ctx, tenant, hq)
			b, _ := json.Marshal(hq.Filter)
			scored := "-"
			if hq.Scored != nil {
				scored = fmt.Sprint(*hq.Scored)
			}
			put(fmt.Sprintf("helicone %s sort=%s desc=%v offset=%d scored=%s cached=%v %s", tenant, hq.Sort, hq.Desc, hq.Offset, scored, hq.CachedOnly, b), rows, err)
		}
		for _, m := range []alerts.Metric{alerts.CostUSD, alerts.ErrorRate, alerts.LatencyP95} {
			for _, s := range []alerts.Scope{{}, {Model: "gpt-4o"}, {User: "user1"}, {Property: &alerts.Property{Name: "env", Value: "prod"}}} {
				v, err := q.AlertMetric(ctx, m, s, from, to)
				sb, _ := json.Marshal(s)
				put(fmt.Sprintf("alert metric %s %s", m, sb), v, err)
			}
		}
	}
	for _, i := range []int{0, 1, 9, 44, 63, 99} {
		for _, tenant := range []string{"", "acme"} {
			d, err := q.Get(ctx, seedID(i), tenant)
			put(fmt.Sprintf("get %d %q", i, tenant), d, err)
			ok, err := q.Exists(ctx, seedID(i), tenant)
			put(fmt.Sprintf("exists %d %q", i, tenant), ok, err)
		}
	}
	a, err := chquery.NewAlerts(conn, db)
	if err != nil {
		t.Fatal(err)
	}
	rules, err := a.Rules(ctx, "")
	put("rules", rules, err)
	rule, err := a.Rules(ctx, "rule2")
	put("rule2", rule, err)
	evs, err := a.Events(ctx, 100)
	put("events", evs, err)
	recent, err := a.RecentEvents(ctx, nil, 2)
	put("recent events", recent, err)
	recent, err = a.RecentEvents(ctx, []string{"rule1", "rule2"}, 8)
	put("recent events of 2 rules", recent, err)
	byID, err := a.EventsByID(ctx, []string{"rule2", "rule3"}, []string{uuid.NewSHA1(uuid.Nil, []byte{2}).String(), uuid.NewSHA1(uuid.Nil, []byte{3}).String()})
	put("events by id", byID, err)
	return out
}

func heliconeQueries() []chquery.HeliconeQuery {
	yes, no := true, false
	leaf := func(f chquery.Field, op chquery.Op, v any) *chquery.Cond {
		return &chquery.Cond{Field: f, Op: op, Value: v}
	}
	return []chquery.HeliconeQuery{
		{Limit: 50},
		{Limit: 10, Offset: 10, Sort: chquery.FieldCost, Desc: true},
		{Limit: 100, Sort: chquery.FieldLatency, Filter: &chquery.Cond{Branch: "and",
			Left: leaf(chquery.FieldModel, chquery.OpEquals, "gpt-4o"), Right: leaf(chquery.FieldStatus, chquery.OpGTE, float64(200))}},
		{Limit: 100, Filter: leaf(chquery.FieldFeedback, chquery.OpEquals, true)},
		{Limit: 100, Filter: leaf(chquery.FieldFeedback, chquery.OpEquals, false)},
		{Limit: 100, Filter: &chquery.Cond{Field: chquery.FieldScore, Key: "quality", Op: chquery.OpGT, Value: float64(2)}},
		{Limit: 100, Filter: &chquery.Cond{Field: chquery.FieldProperty, Key: "env", Op: chquery.OpEquals, Value: "dev"}},
		{Limit: 100, Filter: leaf(chquery.FieldResponseBody, chquery.OpContains, "answer\":1")},
		{Limit: 100, Scored: &yes},
		{Limit: 100, Scored: &no, CachedOnly: true},
	}
}
