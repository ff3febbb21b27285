package grafana

import (
	"fmt"
	"regexp"
	"strings"
)

// promUse is what a PromQL expression asks of the registry: the metrics
// it selects with their label matchers, and the labels it aggregates by.
type promUse struct {
	metrics  []promSelector
	byLabels []string
}

type promSelector struct {
	metric string
	labels map[string]string // label → value of an = matcher, "" for other matchers
}

var (
	promString   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	promSelect   = regexp.MustCompile(`\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}`)
	promMatcher  = regexp.MustCompile(`^\s*(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*$`)
	promGrouping = regexp.MustCompile(`\b(?:by|without)\s*\(([^)]*)\)`)
	promRange    = regexp.MustCompile(`\[[^\]]*\]`)
	promIdent    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
)

// promFuncs are the functions and aggregations the dashboards may call.
var promFuncs = map[string]bool{"sum": true, "min": true, "max": true, "avg": true, "rate": true,
	"increase": true, "histogram_quantile": true}

// parsePromQL reads the small PromQL subset the dashboards use: selectors
// with string matchers, range vectors, the functions above, by/without and
// arithmetic. Anything else (an unknown function, a bare word that is no
// metric of ours) is an error, so a typo cannot pass as a metric name.
func parsePromQL(expr string) (promUse, error) {
	var u promUse
	rest := promGrouping.ReplaceAllStringFunc(expr, func(m string) string {
		for _, l := range strings.Split(promGrouping.FindStringSubmatch(m)[1], ",") {
			if l = strings.TrimSpace(l); l != "" {
				u.byLabels = append(u.byLabels, l)
			}
		}
		return " "
	})
	rest = promRange.ReplaceAllString(rest, " ")
	var err error
	rest = promSelect.ReplaceAllStringFunc(rest, func(m string) string {
		s := promSelect.FindStringSubmatch(m)
		sel := promSelector{metric: s[1], labels: map[string]string{}}
		for _, part := range splitMatchers(s[2]) {
			mm := promMatcher.FindStringSubmatch(part)
			if mm == nil {
				err = fmt.Errorf("cannot read matcher %q", part)
				continue
			}
			if mm[2] == "=" {
				sel.labels[mm[1]] = mm[3]
			} else {
				sel.labels[mm[1]] = ""
			}
		}
		u.metrics = append(u.metrics, sel)
		return " "
	})
	if err != nil {
		return u, err
	}
	rest = promString.ReplaceAllString(rest, " ")
	for _, loc := range promIdent.FindAllStringIndex(rest, -1) {
		word := rest[loc[0]:loc[1]]
		if strings.HasPrefix(strings.TrimSpace(rest[loc[1]:]), "(") {
			if !promFuncs[word] {
				return u, fmt.Errorf("function %q is not one the checks know", word)
			}
			continue
		}
		if !strings.HasPrefix(word, "tollgate_") {
			return u, fmt.Errorf("%q is neither a function nor a tollgate_ metric", word)
		}
		u.metrics = append(u.metrics, promSelector{metric: word, labels: map[string]string{}})
	}
	if len(u.metrics) == 0 {
		return u, fmt.Errorf("no metric in %q", expr)
	}
	return u, nil
}

// splitMatchers splits a selector's body on the commas outside strings.
func splitMatchers(body string) []string {
	var out []string
	inString, start := false, 0
	for i := 0; i < len(body); i++ {
		switch body[i] {
		case '\\':
			i++
		case '"':
			inString = !inString
		case ',':
			if !inString {
				out = append(out, body[start:i])
				start = i + 1
			}
		}
	}
	if strings.TrimSpace(body[start:]) != "" {
		out = append(out, body[start:])
	}
	return out
}
