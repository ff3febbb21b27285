package grafana

import (
	"strings"
	"testing"
)

func loadFile(t *testing.T, name string) *Dashboard {
	t.Helper()
	data, err := Dashboards.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	d, err := Load(data)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return d
}

// TestDashboardsLoad: each file decodes strictly, every panel queries its
// own data source through the datasource variable.
func TestDashboardsLoad(t *testing.T) {
	for name, plugin := range map[string]string{
		"tollgate-clickhouse.json": ClickHousePlugin,
		"tollgate-prometheus.json": PrometheusPlugin,
	} {
		d := loadFile(t, name)
		if len(d.AllPanels()) < 10 {
			t.Errorf("%s: only %d panels", name, len(d.AllPanels()))
		}
		for _, p := range d.AllPanels() {
			if p.Datasource.Type != plugin || p.Datasource.UID != "${datasource}" {
				t.Errorf("%s: panel %q queries %+v, want %s through ${datasource}", name, p.Title, *p.Datasource, plugin)
			}
		}
	}
}

// TestLoadRefuses: what Grafana would ignore or show as an empty panel
// fails instead.
func TestLoadRefuses(t *testing.T) {
	data, err := Dashboards.ReadFile("tollgate-clickhouse.json")
	if err != nil {
		t.Fatal(err)
	}
	good := string(data)
	cases := map[string]struct{ old, new, want string }{
		"unknown field":      {`"gridPos"`, `"gridPosition"`, `unknown field "gridPosition"`},
		"unknown panel type": {`"type": "bargauge"`, `"type": "piechart"`, `unknown panel type "piechart"`},
		"undefined variable": {`${property:sqlstring}`, `${prop:sqlstring}`, `variable "prop" is not defined`},
		"format mismatch":    {`"format": 1`, `"format": 0`, `disagree`},
		"off the grid":       {`"w": 12`, `"w": 25`, `off the 24-column grid`},
	}
	for name, c := range cases {
		if !strings.Contains(good, c.old) {
			t.Fatalf("%s: %q not in the dashboard", name, c.old)
		}
		_, err := Load([]byte(strings.Replace(good, c.old, c.new, 1)))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want %q", name, err, c.want)
		}
	}
}
