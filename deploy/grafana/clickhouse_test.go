package grafana

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/tollgate-dev/tollgate/internal/testenv"
	"github.com/tollgate-dev/tollgate/provider"
	"github.com/tollgate-dev/tollgate/record"
	"github.com/tollgate-dev/tollgate/storage/chquery"
	"github.com/tollgate-dev/tollgate/storage/chschema"
	"github.com/tollgate-dev/tollgate/storage/chstore"
	"github.com/tollgate-dev/tollgate/storage/chstore/chtest"
)

var t0 = time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)

// seedRows are the calls the panels are checked on: tenant acme in two
// minute buckets of the hour from t0, with errors, a rate-limited call,
// streams (TTFT), an exact and a semantic cache hit of two earlier calls;
// one acme call before the hour and one call of tenant t2, which the
// panels must leave out. Costs are priced as the processor prices them,
// so the cache savings can be compared with GET /v1/stats'.
func seedRows() []*record.Record {
	prices := provider.DefaultPrices()
	at := func(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }
	call := func(id int, sec int, prov, model, user string, status int32, latency, ttft int64, prompt, completion int64, props ...string) *record.Record {
		r := &record.Record{
			RequestID: fmt.Sprintf("0193a5c4-0000-7000-8000-%012d", id), CreatedAt: at(sec), Tenant: "acme",
			UserID: user, Provider: prov, Model: model, ResponseModel: model, Status: status,
			LatencyMs: latency, TTFTMs: ttft, PromptTokens: prompt, CompletionTokens: completion,
			Method: "POST", Path: "/v1/chat/completions",
		}
		for i := 0; i+1 < len(props); i += 2 {
			r.Properties = append(r.Properties, record.Property{Key: props[i], Value: props[i+1]})
		}
		r.CostUSD, _ = prices.CallCost(prov, r.Usage(), model)
		return r
	}
	hit := func(id, sec int, user string, of *record.Record, similarity float32) *record.Record {
		r := call(id, sec, of.Provider, of.Model, user, 200, 10, 8, of.PromptTokens, of.CompletionTokens)
		r.CostUSD, r.CacheHit, r.CacheReferenceID, r.CacheSimilarity = 0, true, of.RequestID, similarity
		return r
	}
	r1 := call(1, 5, "openai", "gpt-4o", "alice", 200, 100, 0, 1000, 100, "team", "search")
	r2 := call(2, 10, "openai", "gpt-4o", "alice", 200, 200, 50, 2000, 300, "team", "search", "env", "prod")
	r3 := call(3, 20, "openai", "gpt-4o-mini", "bob", 500, 300, 80, 4000, 0, "team", "ads")
	r4 := call(4, 30, "openai", "gpt-4o-mini", "bob", 429, 5, 0, 0, 0)
	r4.RateLimited, r4.Error = true, "rate limited"
	r5 := hit(5, 65, "carol", r1, 0)
	// A client's Helicone-Request-Id may be upper case; the request_id
	// column holds the UUID, which reads lower case.
	r5.CacheReferenceID = strings.ToUpper(r1.RequestID)
	r6 := hit(6, 70, "carol", r2, 0.95)
	r7 := call(7, 80, "anthropic", "claude-sonnet-4-5", "alice", 200, 400, 120, 3000, 500, "team", "search")
	r8 := call(8, 90, "openai", "gpt-4o-mini", "dave", record.StatusClientCancelled, 1000, 0, 500, 0)
	before := call(9, -7200, "openai", "gpt-4o", "alice", 500, 9000, 0, 100000, 10000, "team", "search")
	other := call(10, 15, "openai", "gpt-4o", "erin", 500, 9000, 0, 100000, 10000, "team", "search")
	other.Tenant = "t2"
	return []*record.Record{r1, r2, r3, r4, r5, r6, r7, r8, before, other}
}

// TestClickHousePanels runs every ClickHouse panel's SQL (and the template
// variables' queries), expanded as the plugin expands it, against a fresh
// database on the test server in which every row was written twice (a
// replayed batch) and merges are stopped: each panel must count it once.
// The main panels' figures are checked against the seeded calls and
// against GET /v1/stats' aggregates (chquery.Stats) for the same hour.
func TestClickHousePanels(t *testing.T) {
	dsn, conn, db := chtest.FreshDatabase(t, "tollgate_grafana")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := conn.Exec(ctx, "SYSTEM STOP MERGES "+db+".requests"); err != nil {
		t.Fatal(err)
	}
	seedTwice(ctx, t, chtest.Writer(t, dsn), conn, db)
	checkPanels(ctx, t, conn, db)
}

// TestClickHousePanelsOnCluster: the same on a cluster of two shards
// (--clickhouse-cluster), where requests is a Distributed table: the
// panels must give the same figures, a replayed row still counted once.
func TestClickHousePanelsOnCluster(t *testing.T) {
	c := testenv.StartClickHouseCluster(t, 2, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dsn, err := chschema.WithCluster(c.URL()+"/tollgate_grafana", c.Name)
	if err != nil {
		t.Fatal(err)
	}
	if err := chschema.Migrate(ctx, dsn, nil); err != nil {
		t.Fatal(err)
	}
	conn, db, err := chschema.Connect(dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, n := range c.Nodes {
		nc, _, err := chschema.Connect(n.URL() + "/" + db)
		if err != nil {
			t.Fatal(err)
		}
		err = nc.Exec(ctx, "SYSTEM STOP MERGES "+db+".requests"+chschema.LocalSuffix)
		nc.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	w, err := chstore.Open(ctx, chstore.Options{URL: dsn, SpoolDir: t.TempDir(), FlushInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(context.Background())
	seedTwice(ctx, t, w, conn, db)
	checkPanels(ctx, t, conn, db)
}

// seedTwice writes seedRows twice, as replays would, and checks both
// copies are stored: in one insert, then one row an insert. (A replicated
// table drops a block identical to one it already has, insert
// deduplication; a replay batched differently escapes it.)
func seedTwice(ctx context.Context, t *testing.T, w *chstore.Writer, conn driver.Conn, db string) {
	t.Helper()
	seeds := seedRows()
	flush := func() {
		if err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range seeds {
		c := *r
		w.Write(&c)
	}
	flush()
	for _, r := range seeds {
		c := *r
		w.Write(&c)
		flush()
	}
	var stored uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+db+".requests").Scan(&stored); err != nil || stored != uint64(2*len(seeds)) {
		t.Fatalf("rows stored: %d, %v; want every row twice (%d)", stored, err, 2*len(seeds))
	}
}

// checkPanels runs the dashboard's queries on db and checks their figures.
func checkPanels(ctx context.Context, t *testing.T, conn driver.Conn, db string) {
	t.Helper()
	seeds := seedRows()
	// An alias named like a column shadows it in the rest of the SELECT,
	// and servers' analyzers differ on that: none do here.
	cols, err := run(ctx, conn, "SELECT name FROM system.columns WHERE database = ? AND table = 'requests'", db)
	if err != nil || len(cols.rows) < 40 {
		t.Fatalf("columns: %v %v", cols, err)
	}
	column := map[string]bool{}
	for _, r := range cols.rows {
		column[r[0].(string)] = true
	}
	alias := regexp.MustCompile(`(?i)\bAS\s+(\w+)`)

	q := Query{From: t0, To: t0.Add(time.Hour), Interval: time.Minute,
		Vars: map[string][]string{"database": {db}, "tenant": {"acme"}, "property": {"team"}}}
	d := loadFile(t, "tollgate-clickhouse.json")
	results := map[string]table{}
	for _, p := range d.AllPanels() {
		for _, tg := range p.Targets {
			// Every read of the table de-duplicates replayed rows.
			if n, final := strings.Count(tg.RawSQL, "${database}.requests"), strings.Count(tg.RawSQL, "${database}.requests FINAL"); n == 0 || n != final {
				t.Errorf("panel %q reads ${database}.requests %d times, %d with FINAL", p.Title, n, final)
			}
			for _, a := range alias.FindAllStringSubmatch(tg.RawSQL, -1) {
				if column[a[1]] {
					t.Errorf("panel %q: alias %s is also a column", p.Title, a[1])
				}
			}
			sql, err := Expand(tg.RawSQL, q)
			if err != nil {
				t.Fatalf("panel %q: %v", p.Title, err)
			}
			res, err := run(ctx, conn, sql)
			if err != nil {
				t.Fatalf("panel %q: %v\n%s", p.Title, err, sql)
			}
			if tg.QueryType == "timeSeries" && (len(res.cols) == 0 || res.cols[0] != "t") {
				t.Errorf("panel %q: a time series' first column is %v, want its time t", p.Title, res.cols)
			}
			if _, dup := results[p.Title]; dup {
				t.Fatalf("two panels are titled %q", p.Title)
			}
			results[p.Title] = res
		}
	}
	vars := map[string]table{}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		res, err := expandRun(ctx, conn, v.Query, q)
		if err != nil {
			t.Fatalf("variable %s: %v", v.Name, err)
		}
		vars[v.Name] = res
	}

	// The expectations, from the seeded calls of acme in the hour.
	var in []*record.Record
	for _, r := range seeds {
		if r.Tenant == "acme" && !r.CreatedAt.Before(q.From) && !r.CreatedAt.After(q.To) {
			in = append(in, r)
		}
	}
	stats, err := chquery.NewRequests(conn, db, nil).Stats(ctx, chquery.Filter{Tenant: "acme", From: q.From, To: q.To}, 60, "team")
	if err != nil {
		t.Fatal(err)
	}
	if stats.Requests != uint64(len(in)) || len(in) != 8 {
		t.Fatalf("stats counts %d calls, the seeds %d", stats.Requests, len(in))
	}

	check := func(panel string, want [][]any) {
		t.Helper()
		got, ok := results[panel]
		if !ok {
			t.Errorf("no panel %q", panel)
			return
		}
		if !got.equal(want) {
			t.Errorf("panel %q (%v):\n got %v\nwant %v", panel, got.cols, got.rows, want)
		}
	}
	check("Calls", [][]any{{8}})
	// ...which the duplicates would change.
	if res, err := run(ctx, conn, "SELECT count() FROM "+db+".requests WHERE tenant = 'acme' AND created_at >= toDateTime(?) AND created_at <= toDateTime(?)", q.From.Unix(), q.To.Unix()); err != nil || !res.equal([][]any{{16}}) {
		t.Errorf("without FINAL: %v, %v; want 16", res, err)
	}
	check("Rate-limited calls", [][]any{{1}})
	// r3 (500), r4 (429), r8 (-3)
	check("Error rate", [][]any{{3.0 / 8}})
	check("Cache hit rate", [][]any{{2.0 / 8}})
	if stats.ErrorRate != 3.0/8 {
		t.Errorf("stats error rate %v", stats.ErrorRate)
	}

	cost := func(ids ...int) float64 {
		var s float64
		for _, id := range ids {
			s += in[id-1].CostUSD
		}
		return s
	}
	check("Cost", [][]any{{cost(1, 2, 3, 4, 5, 6, 7, 8)}})
	byModel := [][]any{
		{"claude-sonnet-4-5", 1, cost(7), 3000, 500},
		{"gpt-4o", 4, cost(1, 2), 1000 + 2000 + 1000 + 2000, 100 + 300 + 100 + 300},
		{"gpt-4o-mini", 3, cost(3, 4, 8), 4500, 0},
	}
	sort.SliceStable(byModel, func(i, j int) bool { return byModel[i][2].(float64) > byModel[j][2].(float64) })
	check("Cost by model (totals)", byModel)
	for i, g := range stats.ByModel {
		if g.Key != byModel[i][0] || !near(g.CostUSD, byModel[i][2].(float64)) {
			t.Errorf("stats by model %d: %+v, dashboard %v", i, g, byModel[i])
		}
	}
	m0, m1 := t0, t0.Add(time.Minute)
	check("Cost by model", [][]any{
		{m0, "gpt-4o", cost(1, 2)}, {m0, "gpt-4o-mini", cost(3, 4)},
		{m1, "claude-sonnet-4-5", cost(7)}, {m1, "gpt-4o", 0.0}, {m1, "gpt-4o-mini", cost(8)},
	})
	check("Cost by user (top 10)", [][]any{
		{m0, "alice", cost(1, 2)}, {m0, "bob", cost(3, 4)},
		{m1, "alice", cost(7)}, {m1, "carol", 0.0}, {m1, "dave", cost(8)},
	})
	check("Cost by property ${property}", [][]any{{"search", cost(1, 2, 7)}, {"ads", cost(3)}})

	// Latency: quantiles() interpolates between the sorted values.
	lat0, lat1 := []float64{100, 200, 300, 5}, []float64{10, 10, 400, 1000}
	check("Latency p50 / p95 / p99", [][]any{
		{m0, quantile(lat0, 0.5), quantile(lat0, 0.95), quantile(lat0, 0.99)},
		{m1, quantile(lat1, 0.5), quantile(lat1, 0.95), quantile(lat1, 0.99)},
	})
	ttft0, ttft1 := []float64{50, 80}, []float64{8, 8, 120}
	check("Time to first token p50 / p95 / p99", [][]any{
		{m0, quantile(ttft0, 0.5), quantile(ttft0, 0.95), quantile(ttft0, 0.99)},
		{m1, quantile(ttft1, 0.5), quantile(ttft1, 0.95), quantile(ttft1, 0.99)},
	})
	check("Error rate over time", [][]any{{m0, 2.0 / 4}, {m1, 1.0 / 4}})
	check("Rate-limited calls over time", [][]any{{m0, 1}, {m1, 0}})

	// Savings: each hit is worth its original call's cost, which is what
	// /v1/stats prices its tokens at.
	check("Cache savings by kind", [][]any{{"exact", 1, cost(1)}, {"semantic", 1, cost(2)}})
	if !near(stats.ExactCostSavedUSD, cost(1)) || !near(stats.SemanticCostSavedUSD, cost(2)) || cost(1) == 0 || cost(2) == 0 {
		t.Errorf("stats savings exact %v semantic %v; dashboard %v %v", stats.ExactCostSavedUSD, stats.SemanticCostSavedUSD, cost(1), cost(2))
	}
	check("Cache savings", [][]any{{cost(1) + cost(2)}})
	check("Cache hits", [][]any{{m0, 0, 0}, {m1, 1, 1}})
	check("Tokens billed", [][]any{{m0, 7000, 0, 400, 0}, {m1, 3500, 0, 500, 0}})
	check("Top users", [][]any{
		{"alice", 3, cost(1, 2, 7), 1000 + 100 + 2000 + 300 + 3000 + 500, 0, 0, 0, quantile([]float64{100, 200, 400}, 0.95)},
		{"bob", 2, cost(3, 4), 4000, 2, 0, 1, quantile([]float64{300, 5}, 0.95)},
		{"dave", 1, cost(8), 500, 1, 0, 0, 1000.0},
		{"carol", 2, 0.0, 3000 + 400, 0, 2, 0, 10.0},
	})

	if got := vars["tenant"]; !got.equal([][]any{{"acme"}, {"t2"}}) {
		t.Errorf("tenant variable: %v", got.rows)
	}
	if got := vars["property"]; !got.equal([][]any{{"env"}, {"team"}}) {
		t.Errorf("property variable: %v", got.rows)
	}
}

// quantile is ClickHouse's quantile() on up to 8,192 values: linear
// interpolation at level × (n - 1) of the sorted values.
func quantile(v []float64, level float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	pos := level * float64(len(s)-1)
	i := int(pos)
	if i+1 >= len(s) {
		return s[len(s)-1]
	}
	return s[i] + (pos-float64(i))*(s[i+1]-s[i])
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

// table is a query's result, each value as the driver scanned it.
type table struct {
	cols []string
	rows [][]any
}

func expandRun(ctx context.Context, conn driver.Conn, sql string, q Query) (table, error) {
	s, err := Expand(sql, q)
	if err != nil {
		return table{}, err
	}
	return run(ctx, conn, s)
}

func run(ctx context.Context, conn driver.Conn, sql string, args ...any) (table, error) {
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		return table{}, err
	}
	defer rows.Close()
	var res table
	types := rows.ColumnTypes()
	res.cols = rows.Columns()
	for rows.Next() {
		ptrs := make([]any, len(types))
		for i, ct := range types {
			ptrs[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rows.Scan(ptrs...); err != nil {
			return res, err
		}
		row := make([]any, len(ptrs))
		for i, p := range ptrs {
			row[i] = reflect.ValueOf(p).Elem().Interface()
		}
		res.rows = append(res.rows, row)
	}
	return res, rows.Err()
}

// equal compares with want, numbers as float64 (near), times by instant.
func (t table) equal(want [][]any) bool {
	if len(t.rows) != len(want) {
		return false
	}
	for i, row := range t.rows {
		if len(row) != len(want[i]) {
			return false
		}
		for j, v := range row {
			if !sameValue(v, want[i][j]) {
				return false
			}
		}
	}
	return true
}

func sameValue(got, want any) bool {
	if wt, ok := want.(time.Time); ok {
		gt, ok := got.(time.Time)
		return ok && gt.Equal(wt)
	}
	if ws, ok := want.(string); ok {
		return got == ws
	}
	g, gok := toFloat(got)
	w, wok := toFloat(want)
	return gok && wok && near(g, w)
}

func toFloat(v any) (float64, bool) {
	rv := reflect.ValueOf(v)
	switch {
	case rv.CanInt():
		return float64(rv.Int()), true
	case rv.CanUint():
		return float64(rv.Uint()), true
	case rv.CanFloat():
		return rv.Float(), true
	}
	return 0, false
}

func (t table) String() string {
	return fmt.Sprintf("%v %v", t.cols, strings.TrimSpace(fmt.Sprint(t.rows)))
}
