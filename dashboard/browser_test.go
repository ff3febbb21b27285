package dashboard

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tollgate-dev/tollgate/alerts"
	"github.com/tollgate-dev/tollgate/api"
	"github.com/tollgate-dev/tollgate/record"
	"github.com/tollgate-dev/tollgate/storage/chquery"
)

const testAPIKey = "dashboard-test-key"

// stack is Tollgate's HTTP side as the app composes it: the API at /v1/
// (with an API key, so the dashboard must ask for it) and the dashboard
// at /, over a fresh ClickHouse database holding tr.
type stack struct {
	url    string
	alerts *alerts.Manager
	hooks  *httptest.Server // webhook receiver: /ok answers 204, /fail 500
}

func startStack(t *testing.T, tr *traffic) *stack {
	t.Helper()
	dsn, conn, db := freshDatabase(t)
	writeRecords(t, dsn, tr.all)
	q := chquery.NewRequests(conn, db, nil)
	store, err := chquery.NewAlerts(conn, db)
	if err != nil {
		t.Fatal(err)
	}

	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fail" {
			http.Error(w, "receiver down", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(hooks.Close)
	mgr, err := alerts.New(alerts.Options{
		Store: store, Metrics: q, WebhookAttempts: 1,
		AllowPrivateWebhooks: true, // the receiver is on 127.0.0.1
		FileRules: []alerts.Rule{{
			ID: "daily-spend", Name: "Daily spend", Metric: alerts.CostUSD, Threshold: 0.25,
			Window: 24 * time.Hour, Cooldown: 6 * time.Hour, Enabled: true,
			WebhookURL: hooks.URL + "/ok", File: "alerts.yaml",
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mgr.Close() })

	mux := http.NewServeMux()
	mux.Handle("/v1/", api.New(api.Options{Query: q, Alerts: mgr, APIKey: testAPIKey, Logger: slog.New(slog.DiscardHandler)}))
	mux.Handle("/", Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &stack{url: srv.URL, alerts: mgr, hooks: hooks}
}

// TestDashboardInBrowser drives the dashboard in headless Chromium against
// the real API and ClickHouse: key prompt, explorer with filters and pages,
// a request's detail (streams reassembled), a session tree, analytics
// charts and alerts. Screenshots of each page are artifacts of the test
// (go test -artifacts keeps them); TOLLGATE_UPDATE_SCREENSHOTS=1 also
// writes them to docs/screenshots.
func TestDashboardInBrowser(t *testing.T) {
	chromium := findChromium(t)
	tr := newTraffic(time.Now().UTC().Truncate(time.Second))
	st := startStack(t, tr)
	b := startBrowser(t, chromium)

	t.Run("key prompt", func(t *testing.T) { checkKeyPrompt(t, b, st) })
	t.Run("explorer", func(t *testing.T) { checkExplorer(t, b, tr) })
	t.Run("request detail", func(t *testing.T) { checkDetail(t, b, tr) })
	t.Run("session", func(t *testing.T) { checkSession(t, b, tr) })
	t.Run("analytics", func(t *testing.T) { checkAnalytics(t, b, tr) })
	t.Run("alerts", func(t *testing.T) { checkAlerts(t, b, st) })

	if p := b.console.problems(); len(p) > 0 {
		t.Errorf("the page reported problems:\n%s", strings.Join(p, "\n"))
	}
}

// The sub-tests share one tab: each one's *testing.T reports its failures.
func (b *browser) use(t *testing.T) *browser {
	c := *b
	c.t = t
	return &c
}

func checkKeyPrompt(t *testing.T, b0 *browser, st *stack) {
	b := b0.use(t)
	b.do("open the explorer", chromedp.Navigate(st.url+"/#/requests"), chromedp.WaitVisible(chromedp.CSS("[data-key-prompt] input")))
	b.do("enter the API key",
		chromedp.SendKeys(chromedp.CSS("[data-key-prompt] input"), testAPIKey),
		chromedp.Click(chromedp.CSS("[data-key-prompt] button[type=submit]")),
	)
	b.ready("explorer after the key")
	if got := eval[string](b, "stored key", "sessionStorage.getItem('tollgate.apiKey')"); got != testAPIKey {
		t.Errorf("sessionStorage holds %q, want the key", got)
	}
}

// rowIDs are the request ids of the explorer's rows, top to bottom.
func rowIDs(b *browser) []string {
	b.t.Helper()
	return eval[[]string](b, "table rows", `[...document.querySelectorAll('table[data-requests] tbody tr')].map(r => r.dataset.id)`)
}

func checkExplorer(t *testing.T, b0 *browser, tr *traffic) {
	b := b0.use(t)
	b.open("#/requests")
	want := newestFirst(tr.all)
	if ids := rowIDs(b); !slices.Equal(ids, want[:50]) {
		t.Errorf("first page: %d rows, not the 50 newest calls", len(ids))
	}
	b.shot("requests", false)

	// The provider column, and the cache column tells a semantic hit (with
	// its similarity) from an exact one.
	cells := eval[map[string][]string](b, "provider and cache cells", `Object.fromEntries([...document.querySelectorAll('table[data-requests] tbody tr')].map(
		r => [r.dataset.id, [r.querySelector('td[data-col=provider]').textContent, r.querySelector('[data-cache]')?.textContent ?? '']]))`)
	for _, c := range []struct {
		r     *record.Record
		cache string
	}{{tr.semanticHit, "semantic hit 0.97"}, {tr.cacheHit, "cache hit"}, {tr.openAIStream, ""}, {tr.anthropicStream, ""}} {
		if got := cells[c.r.RequestID]; len(got) != 2 || got[0] != c.r.Provider || got[1] != c.cache {
			t.Errorf("row %s: provider and cache %q, want [%s %q]", c.r.RequestID, got, c.r.Provider, c.cache)
		}
	}

	b.do("next page", chromedp.Click(chromedp.CSS("[data-pager=older]")))
	b.ready("second page")
	if got, wantText := eval[string](b, "pager", `document.querySelector('[data-showing]').textContent`), fmt.Sprintf("Showing 51–%d", len(tr.all)); got != wantText {
		t.Errorf("second page says %q, want %q", got, wantText)
	}
	if ids := rowIDs(b); !slices.Equal(ids, want[50:]) {
		t.Errorf("second page: %d rows, want the %d oldest calls", len(ids), len(want)-50)
	}
	b.do("previous page", chromedp.Click(chromedp.CSS("[data-pager=newer]")))
	b.ready("first page again")
	if ids := rowIDs(b); !slices.Equal(ids, want[:50]) {
		t.Errorf("back on the first page: %d rows, not the 50 newest", len(ids))
	}

	const model = "claude-sonnet-4-5"
	b.do("filter by model",
		chromedp.SetValue(chromedp.CSS("form[data-filters] input[name=model]"), model),
		chromedp.Click(chromedp.CSS("form[data-filters] button[type=submit]")),
	)
	b.ready("filtered table")
	if hash := eval[string](b, "hash", "location.hash"); !strings.Contains(hash, "model="+model) {
		t.Errorf("the filter is not in the URL: %s", hash)
	}
	var wantIDs []string
	for _, id := range want {
		if r := byID(tr, id); r.Model == model {
			wantIDs = append(wantIDs, id)
		}
	}
	if ids := rowIDs(b); !slices.Equal(ids, wantIDs) {
		t.Errorf("model filter shows %d rows, want the %d calls of %s", len(ids), len(wantIDs), model)
	}

	// A click on a row opens it; the way back keeps the filter.
	first := rowIDs(b)[0]
	b.do("open a row", chromedp.Click(chromedp.CSS("table[data-requests] tbody tr td[data-col=model]")))
	b.ready("detail of the clicked row")
	if got := eval[string](b, "opened request", `document.querySelector('[data-page=request]').dataset.requestId`); got != first {
		t.Errorf("opened %s, want the clicked %s", got, first)
	}
	if back := eval[string](b, "back link", `document.querySelector('a.back').getAttribute('href')`); !strings.Contains(back, "model="+model) {
		t.Errorf("back link %q lost the filter", back)
	}
}

func byID(tr *traffic, id string) *record.Record {
	for _, r := range tr.all {
		if r.RequestID == id {
			return r
		}
	}
	return nil
}

func checkDetail(t *testing.T, b0 *browser, tr *traffic) {
	b := b0.use(t)
	for _, c := range []struct {
		id, text string
	}{{tr.anthropicStream.RequestID, tr.anthropicText}, {tr.openAIStream.RequestID, tr.openAIText}} {
		b.open("#/requests/" + c.id)
		if got := eval[string](b, "reassembled stream", `document.querySelector('[data-body=reassembled]').textContent`); got != c.text {
			t.Errorf("request %s: reassembled %q, want %q", c.id, got, c.text)
		}
	}
	// The last one (OpenAI) is on screen.
	req := eval[string](b, "request body", `document.querySelector('[data-body=request] pre.json').textContent`)
	if !strings.Contains(req, "\n  \"model\": \"gpt-4o\",\n  \"stream\": true\n}") {
		t.Errorf("request body is not pretty-printed JSON:\n%s", req)
	}
	if raw := eval[string](b, "raw stream", `document.querySelector('[data-body=raw-stream]').textContent`); !strings.HasSuffix(raw, "data: [DONE]") {
		t.Errorf("raw stream not shown as logged:\n%s", raw)
	}
	metrics := eval[string](b, "metrics", `document.querySelector('[data-metrics]').innerText`)
	for _, want := range []string{"2.14 s", "310 ms", "1,250", "96"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics %q lack %q", metrics, want)
		}
	}
	b.shot("request-detail", true)

	panel := func(id, name string) string {
		b.open("#/requests/" + id)
		return eval[string](b, name, fmt.Sprintf(`document.querySelector('[data-panel=%q]').innerText`, name))
	}
	if p := panel(tr.fallback.RequestID, "retries & fallback"); !strings.Contains(p, "1 (fallback entry 1)") || !strings.Contains(p, tr.fallback.RetryPolicy) {
		t.Errorf("fallback panel:\n%s", p)
	}
	if p := panel(tr.cacheHit.RequestID, "cache & limits"); !strings.Contains(p, tr.cacheHit.CacheReferenceID) {
		t.Errorf("cache panel lacks the reference %s:\n%s", tr.cacheHit.CacheReferenceID, p)
	}
	if p := panel(tr.semanticHit.RequestID, "cache & limits"); !strings.Contains(p, "semantic hit 0.97") || !strings.Contains(p, tr.semanticHit.CacheReferenceID) {
		t.Errorf("cache panel of a semantic hit lacks its similarity or reference:\n%s", p)
	}
	if p := panel(tr.cacheHit.RequestID, "cache & limits"); !strings.Contains(p, "exact hit") {
		t.Errorf("cache panel of an exact hit:\n%s", p)
	}
	if p := panel(tr.anthropicStream.RequestID, "call"); !strings.Contains(p, "anthropic") {
		t.Errorf("call panel lacks the provider:\n%s", p)
	}
	if p := panel(tr.denied.RequestID, "workload & policy"); !strings.Contains(p, tr.denied.PolicyDecision) || !strings.Contains(p, "team-billing/billing-worker") {
		t.Errorf("policy panel:\n%s", p)
	}
}

func checkSession(t *testing.T, b0 *browser, tr *traffic) {
	b := b0.use(t)
	b.open("#/requests/" + tr.session[4].RequestID)
	b.do("follow the session link", chromedp.Click(chromedp.CSS("[data-session-link]")))
	b.ready("session page")
	paths := eval[[]string](b, "session tree", `[...document.querySelectorAll('[data-session-tree] li[data-path]')].map(n => n.dataset.path)`)
	want := []string{"/", "/plan", "/plan/flights", "/plan/hotels", "/plan/hotels/compare", "/summary"}
	if !slices.Equal(paths, want) {
		t.Errorf("tree nodes %q, want %q", paths, want)
	}
	if !eval[bool](b, "nesting", `!!document.querySelector('li[data-path="/plan"] li[data-path="/plan/hotels"] li[data-path="/plan/hotels/compare"]')`) {
		t.Error("/plan/hotels/compare is not nested under /plan/hotels under /plan")
	}
	counts := eval[map[string]string](b, "node totals", `Object.fromEntries([...document.querySelectorAll('li[data-path]')].map(
		n => [n.dataset.path, n.querySelector(':scope > .tree-node [data-node-count]').textContent]))`)
	for path, n := range map[string]string{"/": "7 calls", "/plan": "6 calls", "/plan/flights": "2 calls", "/plan/hotels": "3 calls", "/summary": "1 call"} {
		if counts[path] != n {
			t.Errorf("node %s: %q, want %q", path, counts[path], n)
		}
	}
	if n := eval[int](b, "calls", `document.querySelectorAll('li[data-path="/plan/hotels/compare"] > ul > li[data-call]').length`); n != 2 {
		t.Errorf("/plan/hotels/compare lists %d calls, want 2", n)
	}
	b.shot("session", true)
}

// chartInk describes what a chart card holds: painted canvas pixels, or
// SVG bars with a width.
type chartInk struct {
	Title string `json:"title"`
	Kind  string `json:"kind"`
	Ink   int    `json:"ink"`
}

func checkAnalytics(t *testing.T, b0 *browser, tr *traffic) {
	b := b0.use(t)
	b.open("#/analytics?range=24h&group=team")
	drawn := eval[string](b, "charts drawn", `document.querySelector('[data-page=analytics]').dataset.chartsDrawn`)
	charts := eval[[]chartInk](b, "chart contents", `[...document.querySelectorAll('.chart-card')].map(c => {
		const cv = c.querySelector('canvas');
		if (cv) {
			const d = cv.getContext('2d').getImageData(0, 0, cv.width, cv.height).data;
			let ink = 0;
			for (let i = 3; i < d.length; i += 4) if (d[i] > 0) ink++;
			return { title: c.dataset.chart, kind: 'canvas', ink };
		}
		const svg = c.querySelector('svg.bar-chart');
		if (svg) return { title: c.dataset.chart, kind: 'svg', ink: [...svg.querySelectorAll('rect')].filter(r => parseFloat(r.getAttribute('width')) > 0).length };
		return { title: c.dataset.chart, kind: 'none', ink: 0 };
	})`)
	if drawn != fmt.Sprint(len(charts)) {
		t.Errorf("data-charts-drawn=%s, but %d chart cards", drawn, len(charts))
	}
	var titles []string
	for _, c := range charts {
		titles = append(titles, c.Title)
		if c.Ink == 0 {
			t.Errorf("chart %q (%s) is empty", c.Title, c.Kind)
		}
	}
	want := []string{"Requests", "Cost", "Error rate", "Cost by model", "Cost by user", "Cost by team", "Tokens in / out by model"}
	if eval[bool](b, "bucket latency", `!!document.querySelector('[data-no-bucket-latency]')`) {
		t.Log("this API reports no per-bucket latency; those charts are left out")
	} else {
		want = append(want, "Latency", "Time to first token", "Tokens", "Cache hits")
	}
	for _, w := range want {
		if !slices.Contains(titles, w) {
			t.Errorf("no %q chart among %q", w, titles)
		}
	}
	if got := eval[string](b, "requests total", `document.querySelector('[data-kpis] .kpi-value').textContent`); got != fmt.Sprint(len(tr.all)) {
		t.Errorf("Requests headline %q, want %d", got, len(tr.all))
	}
	// The seed has one semantic hit and one exact hit, each worth a call's
	// cost: both savings are shown, apart.
	if got := eval[string](b, "cache savings", `document.querySelector('[data-kpis] [data-cache-savings]').innerText`); !strings.Contains(got, "1 exact hits · 1 semantic hits") ||
		strings.Contains(got, "$0 ") || !strings.Contains(got, "semantic") {
		t.Errorf("cache savings KPI %q, want exact and semantic savings of one hit each", got)
	}
	b.shot("analytics", true)
}

func checkAlerts(t *testing.T, b0 *browser, st *stack) {
	b := b0.use(t)
	b.open("#/alerts")
	if state := eval[string](b, "alerts page", `document.querySelector('[data-page=alerts]').dataset.alertsState`); state != "ready" {
		t.Fatalf("alerts page state %q, want ready", state)
	}
	if n := eval[int](b, "file rule", `document.querySelectorAll('tr[data-rule="daily-spend"] [data-delete]').length`); n != 0 {
		t.Error("the file's read-only rule has a delete button")
	}
	b.do("create a rule",
		chromedp.SetValue(chromedp.CSS("[data-rule-form] input[name=name]"), "Errors on gpt-4o"),
		chromedp.SetValue(chromedp.CSS("[data-rule-form] select[name=metric]"), "error_rate"),
		chromedp.SetValue(chromedp.CSS("[data-rule-form] input[name=threshold]"), "0.05"),
		chromedp.SetValue(chromedp.CSS("[data-rule-form] input[name=window]"), "1h"),
		chromedp.SetValue(chromedp.CSS("[data-rule-form] input[name=cooldown]"), "30m"),
		chromedp.SetValue(chromedp.CSS("[data-rule-form] input[name=model]"), "gpt-4o"),
		chromedp.SetValue(chromedp.CSS("[data-rule-form] input[name=webhook_url]"), st.hooks.URL+"/fail"),
		chromedp.Click(chromedp.CSS("[data-rule-form] button[type=submit]")),
	)
	poll[bool](b, "rule listed", `document.querySelectorAll('tr[data-rule]').length === 2`)

	// Both rules fire over the seeded traffic: the file's webhook takes
	// the notification, the new rule's answers 500.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := st.alerts.EvaluateOnce(ctx); err != nil {
		t.Fatalf("evaluate: %v", err)
	}
	b.open("#/alerts?after=evaluation")
	events := eval[[]string](b, "fired alerts", `[...document.querySelectorAll('table[data-events] tbody tr')].map(r => r.innerText)`)
	joined := strings.Join(events, "\n")
	if len(events) != 2 {
		t.Errorf("%d fired alerts shown, want 2:\n%s", len(events), joined)
	}
	for _, want := range []string{"Daily spend", "delivered", "Errors on gpt-4o", "failed"} {
		if !strings.Contains(joined, want) {
			t.Errorf("fired alerts lack %q:\n%s", want, joined)
		}
	}
	b.shot("alerts", true)

	b.do("delete the rule (two clicks)", chromedp.Click(chromedp.CSS("button[data-delete]")), chromedp.Click(chromedp.CSS("button[data-delete]")))
	poll[bool](b, "rule deleted", `document.querySelectorAll('tr[data-rule]').length === 1 && !document.querySelector('button[data-delete]')`)
}
