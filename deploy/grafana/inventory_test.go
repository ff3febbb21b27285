package grafana

import (
	"strings"
	"testing"
)

// TestInventoryCheck: the check refuses each kind of mistake a dashboard
// query could make, and accepts the dashboards' own forms.
func TestInventoryCheck(t *testing.T) {
	inv := inventory{}
	inv.add("tollgate_calls_total", map[string]string{"provider": "openai", "status_class": "2xx"})
	inv.add("tollgate_cache_lookups_total", map[string]string{"result": "hit"})
	inv.add("tollgate_log_batch_seconds_bucket", map[string]string{"le": "0.1"})
	ok := []string{
		`sum by (status_class) (rate(tollgate_calls_total{job=~"$job", instance=~"$instance"}[$__rate_interval]))`,
		`sum(rate(tollgate_cache_lookups_total{result="hit"}[5m])) / sum(rate(tollgate_cache_lookups_total[5m]))`,
		`histogram_quantile(0.99, sum by (le) (rate(tollgate_log_batch_seconds_bucket{job=~"a,b"}[5m])))`,
		`sum by (instance) (tollgate_calls_total) * 3600`,
	}
	for _, e := range ok {
		if err := inv.check(e); err != nil {
			t.Errorf("%s: %v", e, err)
		}
	}
	bad := map[string]string{
		`rate(tollgate_call_total[5m])`:                                   "exports no metric tollgate_call_total",
		`sum by (model) (rate(tollgate_calls_total[5m]))`:                 `no label "model" to aggregate by`,
		`rate(tollgate_calls_total{status="200"}[5m])`:                    `no label "status"`,
		`rate(tollgate_cache_lookups_total{result="hits"}[5m])`:           `no value "hits"`,
		`irate(tollgate_calls_total[5m])`:                                 `function "irate"`,
		`sum(rate(calls_total[5m]))`:                                      `"calls_total" is neither`,
		`rate(tollgate_calls_total{provider=~openai}[5m])`:                "cannot read matcher",
		`sum without (provider) (rate(tollgate_cache_lookups_total[5m]))`: `no label "provider"`,
	}
	for e, want := range bad {
		if err := inv.check(e); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v, want %q", e, err, want)
		}
	}
}
