package grafana

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate-dev/tollgate/inject"
	"github.com/tollgate-dev/tollgate/internal/app"
	"github.com/tollgate-dev/tollgate/internal/devtest"
	"github.com/tollgate-dev/tollgate/internal/testenv"
	"github.com/tollgate-dev/tollgate/storage/chstore/chtest"
)

// targetLabels are the labels Prometheus adds to every scraped series.
var targetLabels = map[string]bool{"job": true, "instance": true}

// inventory is the series a registry exports: metric → label → values.
type inventory map[string]map[string]map[string]bool

func (inv inventory) add(metric string, labels map[string]string) {
	if inv[metric] == nil {
		inv[metric] = map[string]map[string]bool{}
	}
	for k, v := range labels {
		if inv[metric][k] == nil {
			inv[metric][k] = map[string]bool{}
		}
		inv[metric][k][v] = true
	}
}

var (
	exposition = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? \S+$`)
	expoLabel  = regexp.MustCompile(`(\w+)="((?:[^"\\]|\\.)*)"`)
)

// addExposition reads Prometheus' text format, as /metrics serves it.
func (inv inventory) addExposition(text string) error {
	for _, line := range strings.Split(text, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := exposition.FindStringSubmatch(line)
		if m == nil {
			return fmt.Errorf("cannot read %q", line)
		}
		labels := map[string]string{}
		for _, l := range expoLabel.FindAllStringSubmatch(m[2], -1) {
			labels[l[1]] = l[2]
		}
		inv.add(m[1], labels)
	}
	return nil
}

var descString = regexp.MustCompile(`fqName: "(\w+)".*variableLabels: \{([^}]*)\}`)

// addDescribed adds what reg describes: the metrics and label names of
// vectors that have no series yet (their values stay unknown).
func (inv inventory) addDescribed(reg *prometheus.Registry) error {
	ch := make(chan *prometheus.Desc)
	go func() { reg.Describe(ch); close(ch) }()
	var err error
	for d := range ch {
		m := descString.FindStringSubmatch(d.String())
		if m == nil {
			err = fmt.Errorf("cannot read %s", d)
			continue
		}
		labels := map[string]string{}
		for _, l := range strings.Split(m[2], ",") {
			if l = strings.Trim(strings.TrimSpace(l), "c()"); l != "" {
				labels[l] = "" // a name without known values
			}
		}
		inv.add(m[1], labels)
	}
	return err
}

// TestPrometheusQueries: every metric a Prometheus panel (or variable)
// selects is exported by Tollgate, with every label it matches or
// aggregates by, and every value it matches with =. The processor's
// metrics come from /metrics of `tollgate dev` on the test ClickHouse and
// Redis, after a call and a refused call; the injector's from a registry
// built with the functions `tollgate webhook` calls (its audit needs a
// cluster).
func TestPrometheusQueries(t *testing.T) {
	dsn, _, _ := chtest.FreshDatabase(t, "tollgate_grafana_prom")
	dev := devtest.StartDev(t, app.Run, "--clickhouse", dsn, "--redis", testenv.RedisURL(t))
	post := func(body string) int {
		resp, err := http.Post("http://"+dev.Addrs["listen"]+"/v1/chat/completions", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello"}]}`); code != 200 {
		t.Fatalf("call: %d", code)
	}
	if code := post(`not json`); code != 400 {
		t.Fatalf("refused call: %d", code)
	}
	inv := inventory{}
	testenv.Eventually(t, 10*time.Second, func() error {
		resp, err := http.Get("http://" + dev.Addrs["http"] + "/metrics")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		inv = inventory{}
		if err := inv.addExposition(string(b)); err != nil {
			t.Fatal(err)
		}
		for _, m := range []string{"tollgate_calls_total", "tollgate_rejected_total", "tollgate_tokens_total", "tollgate_cost_usd_total"} {
			if inv[m] == nil {
				return fmt.Errorf("no %s yet", m)
			}
		}
		return nil
	})

	reg := prometheus.NewRegistry()
	if _, err := inject.NewWebhookWithMetrics(inject.Config{}, nil, reg); err != nil {
		t.Fatal(err)
	}
	inject.NewAuditor(nil, time.Minute, "tollgate", reg, nil)
	if err := inv.addDescribed(reg); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			inv.add(mf.GetName(), labels)
		}
	}

	d := loadFile(t, "tollgate-prometheus.json")
	var exprs []string
	for _, p := range d.AllPanels() {
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, v := range d.Templating.List {
		if v.Type == "query" {
			q, ok := strings.CutSuffix(strings.TrimPrefix(v.Query, "label_values("), ")")
			sel, label, _ := strings.Cut(q, ", ")
			if !ok || label == "" {
				t.Fatalf("variable %s: want label_values(selector, label), got %q", v.Name, v.Query)
			}
			if !targetLabels[label] {
				exprs = append(exprs, "sum by ("+label+") ("+sel+")")
			} else {
				exprs = append(exprs, sel)
			}
		}
	}
	for _, e := range exprs {
		if err := inv.check(e); err != nil {
			t.Errorf("%s\n  %v", e, err)
		}
	}
}

func (inv inventory) check(expr string) error {
	use, err := parsePromQL(expr)
	if err != nil {
		return err
	}
	for _, sel := range use.metrics {
		labels, ok := inv[sel.metric]
		if !ok {
			return fmt.Errorf("Tollgate exports no metric %s", sel.metric)
		}
		for l, v := range sel.labels {
			if targetLabels[l] {
				continue
			}
			values, ok := labels[l]
			if !ok {
				return fmt.Errorf("%s has no label %q (it has %v)", sel.metric, l, names(labels))
			}
			if v != "" && !values[v] {
				return fmt.Errorf("%s{%s} has no value %q (it has %v)", sel.metric, l, v, names(values))
			}
		}
		for _, l := range use.byLabels {
			if _, ok := labels[l]; !ok && !targetLabels[l] {
				return fmt.Errorf("%s has no label %q to aggregate by (it has %v)", sel.metric, l, names(labels))
			}
		}
	}
	return nil
}

func names[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
