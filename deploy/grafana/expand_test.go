package grafana

import (
	"strings"
	"testing"
	"time"
)

func testQuery() Query {
	return Query{
		From:     time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC),
		To:       time.Date(2026, 11, 2, 11, 0, 0, 0, time.UTC),
		Interval: time.Minute,
		Vars: map[string][]string{
			"database": {"tollgate"},
			"tenant":   {"acme", "o'brien"},
			"property": {"team"},
		},
	}
}

// TestExpand: variables as Grafana's frontend replaces them, then the
// ClickHouse plugin's macros as its backend expands them.
func TestExpand(t *testing.T) {
	cases := map[string]string{
		"SELECT 1 FROM ${database}.requests WHERE $__timeFilter(created_at)": "SELECT 1 FROM tollgate.requests WHERE created_at >= toDateTime(1793613600) AND created_at <= toDateTime(1793617200)",
		"tenant IN (${tenant:sqlstring})":                                    "tenant IN ('acme','o''brien')",
		"$database.requests [[database]].x ${tenant:csv}":                    "tollgate.requests tollgate.x acme,o'brien",
		"intDiv(x, $__interval_s) * $__interval_s":                           "intDiv(x, 60) * 60",
		"created_at <= $__toTime AND created_at >= $__fromTime":              "created_at <= toDateTime(1793617200) AND created_at >= toDateTime(1793613600)",
		"$__timeFilter_ms(created_at)":                                       "created_at >= fromUnixTimestamp64Milli(1793613600000) AND created_at <= fromUnixTimestamp64Milli(1793617200000)",
		"$__timeInterval(created_at)":                                        "toStartOfInterval(toDateTime(created_at), INTERVAL 60 second)",
		"$__dt(d, created_at)":                                               "(d >= toDate('2026-11-02') AND d <= toDate('2026-11-02')) AND (created_at >= toDateTime(1793613600) AND created_at <= toDateTime(1793617200))",
		"has(properties.key, ${property:sqlstring})":                         "has(properties.key, 'team')",
	}
	for in, want := range cases {
		got, err := Expand(in, testQuery())
		if err != nil || got != want {
			t.Errorf("Expand(%q)\n got %q, %v\nwant %q", in, got, err, want)
		}
	}
}

// A sub-second interval is one second, as in the plugin.
func TestExpandIntervalFloor(t *testing.T) {
	q := testQuery()
	q.Interval = 200 * time.Millisecond
	if got, _ := Expand("$__interval_s", q); got != "1" {
		t.Fatalf("got %q, want 1", got)
	}
}

// What would reach ClickHouse unexpanded, or expanded wrongly, is an
// error.
func TestExpandRefuses(t *testing.T) {
	cases := map[string]string{
		"SELECT ${tenat:sqlstring}":        `variable "tenat" is not defined`,
		"tenant = '$tenant'":               "2 values need a format",
		"${tenant:regex}":                  `format "regex" is not supported`,
		"$__timeFilter(a, b)":              "want 1 arguments, got 2",
		"$__timeFilter":                    "want 1 arguments, got 0",
		"$__timeGroup(created_at, minute)": "not one of the ClickHouse plugin's",
	}
	for in, want := range cases {
		if got, err := Expand(in, testQuery()); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Expand(%q) = %q, %v; want an error with %q", in, got, err, want)
		}
	}
}

func TestVarRefs(t *testing.T) {
	got := strings.Join(VarRefs("$a ${b:sqlstring} [[c]] $__interval_s ${__from}"), " ")
	if got != "a b c" {
		t.Fatalf("got %q", got)
	}
}
