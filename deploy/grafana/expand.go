package grafana

import (
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"
)

// Query is what Grafana knows when it runs a panel's query: the time
// range, the interval it chose for the panel (range / max data points,
// rounded), and the values of the template variables.
type Query struct {
	From, To time.Time
	Interval time.Duration
	Vars     map[string][]string
}

// varRef is Grafana's variable syntax: $name, ${name}, ${name:format},
// [[name]] and [[name:format]] (the frontend's templateSrv regex).
var varRef = regexp.MustCompile(`\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?::([^}]+))?\}`)

// macroRef is the plugin's macro syntax as grafana/sqlds parses it: the
// name, then optionally arguments up to the first ")" (so an argument
// cannot hold a parenthesis), split on commas and trimmed.
var macroRef = regexp.MustCompile(`\$__(\w+)(?:\((.*?)\))?`)

// Expand returns sql as the ClickHouse plugin sends it: template variables
// replaced first (Grafana's frontend), then the plugin's macros (its
// backend). It fails on what would reach ClickHouse unexpanded: an unknown
// variable or macro, a multi-value variable without a format, or a macro
// with the wrong arguments.
func Expand(sql string, q Query) (string, error) {
	out, err := interpolate(sql, q.Vars)
	if err != nil {
		return "", err
	}
	return expandMacros(out, q)
}

// interpolate replaces template variables. Names starting with "__" are
// Grafana's and the plugin's own ($__timeFilter, $__interval_s): they are
// left for expandMacros, as the frontend leaves the plugin's macros.
func interpolate(sql string, vars map[string][]string) (string, error) {
	var err error
	out := varRef.ReplaceAllStringFunc(sql, func(m string) string {
		s := varRef.FindStringSubmatch(m)
		name, format := s[1]+s[2]+s[4], s[3]+s[5]
		if strings.HasPrefix(name, "__") {
			return m
		}
		values, ok := vars[name]
		if !ok {
			err = fmt.Errorf("variable %q is not defined", name)
			return m
		}
		v, ferr := formatValues(values, format)
		if ferr != nil {
			err = fmt.Errorf("variable %q: %w", name, ferr)
		}
		return v
	})
	return out, err
}

// formatValues applies a variable format as Grafana does.
func formatValues(values []string, format string) (string, error) {
	switch format {
	case "":
		if len(values) != 1 {
			return "", fmt.Errorf("%d values need a format such as :sqlstring", len(values))
		}
		return values[0], nil
	case "raw", "csv":
		return strings.Join(values, ","), nil
	case "sqlstring":
		// Grafana's sqlstring: each value quoted, quotes doubled.
		quoted := make([]string, len(values))
		for i, v := range values {
			quoted[i] = "'" + strings.ReplaceAll(v, "'", "''") + "'"
		}
		return strings.Join(quoted, ","), nil
	}
	return "", fmt.Errorf("format %q is not supported here", format)
}

// expandMacros applies the grafana-clickhouse-datasource macros (its
// pkg/macros), which the plugin's backend expands after the frontend
// replaced the variables. Times are whole seconds, UTC.
func expandMacros(sql string, q Query) (string, error) {
	dateTime := func(t time.Time) string { return fmt.Sprintf("toDateTime(%d)", t.Unix()) }
	dateTime64 := func(t time.Time) string { return fmt.Sprintf("fromUnixTimestamp64Milli(%d)", t.UnixMilli()) }
	date := func(t time.Time) string { return fmt.Sprintf("toDate('%s')", t.UTC().Format("2006-01-02")) }
	seconds := int(math.Max(q.Interval.Seconds(), 1))
	millis := int(math.Max(float64(q.Interval.Milliseconds()), 1))

	var err error
	out := macroRef.ReplaceAllStringFunc(sql, func(m string) string {
		s := macroRef.FindStringSubmatch(m)
		name := s[1]
		var args []string
		if strings.HasPrefix(m[len("$__")+len(name):], "(") {
			for _, a := range strings.Split(s[2], ",") {
				args = append(args, strings.TrimSpace(a))
			}
		}
		want := map[string]int{
			"fromTime": 0, "toTime": 0, "fromTime_ms": 0, "toTime_ms": 0, "interval_s": 0,
			"timeFilter": 1, "timeFilter_ms": 1, "dateFilter": 1, "timeInterval": 1, "timeInterval_ms": 1,
			"dateTimeFilter": 2, "dt": 2,
		}
		n, known := want[name]
		switch {
		case !known:
			err = fmt.Errorf("macro $__%s is not one of the ClickHouse plugin's", name)
			return m
		case len(args) != n && !(n == 0 && args == nil):
			err = fmt.Errorf("macro $__%s: want %d arguments, got %d", name, n, len(args))
			return m
		}
		switch name {
		case "fromTime":
			return dateTime(q.From)
		case "toTime":
			return dateTime(q.To)
		case "fromTime_ms":
			return dateTime64(q.From)
		case "toTime_ms":
			return dateTime64(q.To)
		case "interval_s":
			return fmt.Sprint(seconds)
		case "timeFilter":
			return fmt.Sprintf("%s >= %s AND %s <= %s", args[0], dateTime(q.From), args[0], dateTime(q.To))
		case "timeFilter_ms":
			return fmt.Sprintf("%s >= %s AND %s <= %s", args[0], dateTime64(q.From), args[0], dateTime64(q.To))
		case "dateFilter":
			return fmt.Sprintf("%s >= %s AND %s <= %s", args[0], date(q.From), args[0], date(q.To))
		case "timeInterval":
			return fmt.Sprintf("toStartOfInterval(toDateTime(%s), INTERVAL %d second)", args[0], seconds)
		case "timeInterval_ms":
			return fmt.Sprintf("toStartOfInterval(toDateTime64(%s, 3), INTERVAL %d millisecond)", args[0], millis)
		default: // dateTimeFilter, dt
			return fmt.Sprintf("(%s >= %s AND %s <= %s) AND (%s >= %s AND %s <= %s)",
				args[0], date(q.From), args[0], date(q.To), args[1], dateTime(q.From), args[1], dateTime(q.To))
		}
	})
	return out, err
}

// VarRefs are the template variables text uses (Grafana's own "__" names
// left out).
func VarRefs(text string) []string {
	var out []string
	for _, s := range varRef.FindAllStringSubmatch(text, -1) {
		if name := s[1] + s[2] + s[4]; !strings.HasPrefix(name, "__") {
			out = append(out, name)
		}
	}
	return out
}
