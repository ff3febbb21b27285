package alerts

import (
	"slices"
	"strings"
)

// ruleSpec is a rule as written (JSON body or YAML file), before defaults
// and parsing of durations. Both decoders fill it, so both apply the same
// defaults and checks.
type ruleSpec struct {
	ID, Name, Metric string
	Threshold        *float64
	Window, Cooldown *string
	Model, User      string
	Property         *Property
	WebhookURL       string
	Enabled          *bool
}

// rule applies the defaults (name = id, cooldown 1h, enabled) and checks
// the result. An empty id is left for the caller (the API makes one up).
func (s ruleSpec) rule() (Rule, []FieldError) {
	r := Rule{
		ID: s.ID, Name: s.Name, Metric: Metric(s.Metric), WebhookURL: s.WebhookURL,
		Scope: Scope{Model: s.Model, User: s.User}, Cooldown: DefaultCooldown, Enabled: true,
	}
	if r.Name == "" {
		r.Name = r.ID
	}
	if s.Property != nil {
		p := *s.Property
		p.Name = strings.ToLower(strings.TrimSpace(p.Name))
		r.Scope.Property = &p
	}
	if s.Enabled != nil {
		r.Enabled = *s.Enabled
	}
	var early []FieldError
	if s.Threshold == nil {
		early = append(early, FieldError{"threshold", "is required"})
	} else {
		r.Threshold = *s.Threshold
	}
	if s.Window == nil {
		early = append(early, FieldError{"window", "is required (a duration from 1m to 7d, such as 15m)"})
	} else if d, err := parseDuration(*s.Window); err != nil {
		early = append(early, FieldError{"window", "want a duration such as 15m, 1h or 7d"})
	} else {
		r.Window = d
	}
	if s.Cooldown != nil {
		if d, err := parseDuration(*s.Cooldown); err != nil {
			early = append(early, FieldError{"cooldown", "want a duration such as 30m, 1h or 1d"})
		} else {
			r.Cooldown = d
		}
	}
	if s.Metric == "" {
		early = append(early, FieldError{"metric", "is required (cost_usd, error_rate or latency_p95_ms)"})
	}
	late := r.problems()
	if r.ID == "" {
		late = slices.DeleteFunc(late, func(p FieldError) bool { return p.Field == "id" })
	}
	return r, mergeProblems(early, late)
}

// mergeProblems keeps one problem per field, the early (parsing) one
// first, in the order fields are written.
func mergeProblems(early, late []FieldError) []FieldError {
	seen := map[string]bool{}
	var out []FieldError
	for _, p := range append(early, late...) {
		if !seen[p.Field] {
			seen[p.Field] = true
			out = append(out, p)
		}
	}
	order := func(field string) int {
		for i, f := range fieldOrder {
			if field == f || strings.HasPrefix(field, f+".") {
				return i
			}
		}
		return len(fieldOrder)
	}
	slices.SortStableFunc(out, func(a, b FieldError) int { return order(a.Field) - order(b.Field) })
	return out
}

// fieldOrder is the order of a rule's fields, in messages and in JSON.
var fieldOrder = []string{"id", "name", "metric", "threshold", "window", "scope", "webhook_url", "cooldown", "enabled"}
