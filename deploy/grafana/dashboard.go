package grafana

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
)

// Dashboards are the dashboard files, by name.
//
//go:embed tollgate-clickhouse.json tollgate-prometheus.json
var Dashboards embed.FS

// The data source plugins the dashboards use.
const (
	ClickHousePlugin = "grafana-clickhouse-datasource"
	PrometheusPlugin = "prometheus"
)

// Dashboard is the part of Grafana's dashboard model these files use.
// Load refuses any other field, so a misspelt key (which Grafana would
// silently ignore) fails the tests instead of hiding a panel's setting.
type Dashboard struct {
	Requires     []Require                 `json:"__requires"`
	Title        string                    `json:"title"`
	UID          string                    `json:"uid"`
	Description  string                    `json:"description"`
	Tags         []string                  `json:"tags"`
	Editable     bool                      `json:"editable"`
	GraphTooltip int                       `json:"graphTooltip"`
	ID           *int                      `json:"id"`
	Links        []any                     `json:"links"`
	LiveNow      bool                      `json:"liveNow"`
	Refresh      string                    `json:"refresh"`
	Schema       int                       `json:"schemaVersion"`
	Version      int                       `json:"version"`
	Timezone     string                    `json:"timezone"`
	Time         struct{ From, To string } `json:"time"`
	Timepicker   json.RawMessage           `json:"timepicker"`
	Annotations  json.RawMessage           `json:"annotations"`
	Templating   struct {
		List []Variable `json:"list"`
	} `json:"templating"`
	Panels []Panel `json:"panels"`
}

// Require is an entry of __requires (what Grafana's import page checks).
type Require struct {
	Type    string `json:"type"`
	ID      string `json:"id"`
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Variable is a template variable.
type Variable struct {
	Name        string          `json:"name"`
	Label       string          `json:"label"`
	Type        string          `json:"type"` // datasource, textbox, query
	Description string          `json:"description"`
	Datasource  *Datasource     `json:"datasource"`
	Definition  string          `json:"definition"`
	Query       string          `json:"query"`
	Current     json.RawMessage `json:"current"`
	Options     []any           `json:"options"`
	Hide        int             `json:"hide"`
	Refresh     int             `json:"refresh"`
	Regex       string          `json:"regex"`
	Multi       bool            `json:"multi"`
	IncludeAll  bool            `json:"includeAll"`
	AllValue    string          `json:"allValue"`
	Sort        int             `json:"sort"`
}

// Datasource names a data source: type is the plugin, uid a variable.
type Datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// Panel is a panel or a row.
type Panel struct {
	ID          int             `json:"id"`
	Type        string          `json:"type"`
	Title       string          `json:"title"`
	Description string          `json:"description"`
	Datasource  *Datasource     `json:"datasource"`
	GridPos     GridPos         `json:"gridPos"`
	Targets     []Target        `json:"targets"`
	FieldConfig json.RawMessage `json:"fieldConfig"`
	Options     json.RawMessage `json:"options"`
	Collapsed   bool            `json:"collapsed"`
	Panels      []Panel         `json:"panels"` // a collapsed row's
}

// GridPos places a panel on Grafana's 24-column grid.
type GridPos struct {
	H int `json:"h"`
	W int `json:"w"`
	X int `json:"x"`
	Y int `json:"y"`
}

// Target is one query of a panel: RawSQL for ClickHouse, Expr for
// Prometheus.
type Target struct {
	RefID      string      `json:"refId"`
	Datasource *Datasource `json:"datasource"`
	// ClickHouse (grafana-clickhouse-datasource 4.x).
	EditorType string `json:"editorType"` // sql
	QueryType  string `json:"queryType"`  // timeSeries, table
	Format     *int   `json:"format"`     // 0 time series, 1 table
	RawSQL     string `json:"rawSql"`
	// Prometheus.
	Expr         string `json:"expr"`
	LegendFormat string `json:"legendFormat"`
	Range        bool   `json:"range"`
	Instant      bool   `json:"instant"`
}

// panelTypes are the panel plugins the dashboards may use: Grafana's
// built-in ones that these files were written for.
var panelTypes = map[string]bool{"row": true, "stat": true, "timeseries": true, "table": true, "bargauge": true}

// Load decodes a dashboard strictly and checks what Grafana would
// otherwise get wrong silently: unknown fields and panel types, duplicate
// panel ids, panels off the grid, queries for another data source than
// the panel's, and variables used but not defined.
func Load(data []byte) (*Dashboard, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var d Dashboard
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	if dec.More() {
		return nil, errors.New("dashboard: data after the JSON object")
	}
	if d.UID == "" || d.Title == "" {
		return nil, errors.New("dashboard: uid and title are required")
	}
	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		if vars[v.Name] {
			return nil, fmt.Errorf("dashboard: variable %q defined twice", v.Name)
		}
		vars[v.Name] = true
	}
	undefined := func(texts ...string) error {
		for _, t := range texts {
			for _, name := range VarRefs(t) {
				if !vars[name] {
					return fmt.Errorf("variable %q is not defined", name)
				}
			}
		}
		return nil
	}
	for _, v := range d.Templating.List {
		if err := undefined(v.Query); err != nil {
			return nil, fmt.Errorf("dashboard %s: variable %s: %w", d.UID, v.Name, err)
		}
	}
	ids := map[int]bool{}
	for _, p := range d.AllPanels() {
		err := checkPanel(p, ids)
		for _, t := range p.Targets {
			if err == nil {
				err = undefined(p.Title, t.RawSQL, t.Expr, t.LegendFormat)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("dashboard %s: panel %d %q: %w", d.UID, p.ID, p.Title, err)
		}
	}
	return &d, nil
}

// AllPanels are the panels, rows' nested panels included, rows left out.
func (d *Dashboard) AllPanels() []Panel {
	var out []Panel
	var walk func([]Panel)
	walk = func(ps []Panel) {
		for _, p := range ps {
			if p.Type != "row" {
				out = append(out, p)
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

func checkPanel(p Panel, ids map[int]bool) error {
	if !panelTypes[p.Type] {
		return fmt.Errorf("unknown panel type %q", p.Type)
	}
	if ids[p.ID] {
		return errors.New("duplicate id")
	}
	ids[p.ID] = true
	if p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X < 0 || p.GridPos.X+p.GridPos.W > 24 {
		return fmt.Errorf("off the 24-column grid: %+v", p.GridPos)
	}
	if p.Datasource == nil {
		return errors.New("no datasource")
	}
	if len(p.Targets) == 0 {
		return errors.New("no queries")
	}
	for _, t := range p.Targets {
		if t.Datasource == nil || *t.Datasource != *p.Datasource {
			return fmt.Errorf("query %s: datasource differs from the panel's", t.RefID)
		}
		switch p.Datasource.Type {
		case ClickHousePlugin:
			if t.EditorType != "sql" || t.RawSQL == "" || t.Expr != "" || t.Format == nil {
				return fmt.Errorf("query %s: a ClickHouse query needs editorType sql, format and rawSql", t.RefID)
			}
			if want := map[string]int{"timeSeries": 0, "table": 1}; want[t.QueryType] != *t.Format || (t.QueryType != "timeSeries" && t.QueryType != "table") {
				return fmt.Errorf("query %s: queryType %q and format %d disagree", t.RefID, t.QueryType, *t.Format)
			}
		case PrometheusPlugin:
			if t.Expr == "" || t.RawSQL != "" {
				return fmt.Errorf("query %s: a Prometheus query needs expr", t.RefID)
			}
		default:
			return fmt.Errorf("unknown data source plugin %q", p.Datasource.Type)
		}
	}
	return nil
}
