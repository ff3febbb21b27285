package alerts

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
)

// ruleJSON is a rule on the wire (API answers, webhook payloads).
type ruleJSON struct {
	ID        string  `json:"id"`
	Name      string  `json:"name"`
	Metric    Metric  `json:"metric"`
	Threshold float64 `json:"threshold"`
	Window    string  `json:"window"`
	Scope     Scope   `json:"scope"`
	// WebhookURL is the origin only, "/…" after it when the URL has more
	// (a path or query may hold a token); WebhookURLSet says a URL is set.
	WebhookURL    string `json:"webhook_url,omitempty"`
	WebhookURLSet bool   `json:"webhook_url_set,omitempty"`
	Cooldown      string `json:"cooldown"`
	Enabled       bool   `json:"enabled"`
	ReadOnly      bool   `json:"read_only"`
}

// MarshalJSON writes the rule as the API shows it: durations as "15m",
// read_only true for a file's rule, and the webhook URL as its origin
// only ("https://hooks.example.com/…") with webhook_url_set: true: the
// path and query of a webhook URL often hold a token, which the API never
// returns. Both are left out when WebhookURL is empty (webhook payloads).
func (r Rule) MarshalJSON() ([]byte, error) {
	return json.Marshal(ruleJSON{
		ID: r.ID, Name: r.Name, Metric: r.Metric, Threshold: r.Threshold, Window: formatDuration(r.Window),
		Scope: r.Scope, WebhookURL: redactWebhookURL(r.WebhookURL), WebhookURLSet: r.WebhookURL != "",
		Cooldown: formatDuration(r.Cooldown), Enabled: r.Enabled, ReadOnly: r.ReadOnly(),
	})
}

// DecodeRule reads a rule from a JSON object (POST /v1/alerts) and checks
// it; a problem is a *FieldError naming the field. id may be absent (the
// caller makes one up); cooldown defaults to 1h, enabled to true, name to
// the id. read_only and webhook_url_set are accepted and ignored, so a
// rule read from the API can be posted back once its webhook_url, which
// the API shows shortened, is replaced by the whole URL (a shortened one
// is refused).
func DecodeRule(body []byte) (Rule, error) {
	var s ruleSpec
	top, fe := jsonObject(body, "", "body", append(slices.Clone(fieldOrder), "read_only", "webhook_url_set"))
	if fe != nil {
		return Rule{}, fe
	}
	for _, f := range []struct {
		key string
		dst *string
	}{{"id", &s.ID}, {"name", &s.Name}, {"metric", &s.Metric}, {"webhook_url", &s.WebhookURL}} {
		if fe := jsonString(top, "", f.key, f.dst); fe != nil {
			return Rule{}, fe
		}
	}
	for _, f := range []struct {
		key string
		dst **string
	}{{"window", &s.Window}, {"cooldown", &s.Cooldown}} {
		if raw, ok := top[f.key]; ok {
			var v string
			if json.Unmarshal(raw, &v) != nil {
				return Rule{}, &FieldError{f.key, "must be a string such as \"15m\""}
			}
			*f.dst = &v
		}
	}
	if raw, ok := top["threshold"]; ok {
		var v float64
		if json.Unmarshal(raw, &v) != nil {
			return Rule{}, &FieldError{"threshold", "must be a number"}
		}
		s.Threshold = &v
	}
	if raw, ok := top["enabled"]; ok {
		var v bool
		if json.Unmarshal(raw, &v) != nil {
			return Rule{}, &FieldError{"enabled", "must be true or false"}
		}
		s.Enabled = &v
	}
	if fe := decodeScopeJSON(top["scope"], &s); fe != nil {
		return Rule{}, fe
	}
	r, problems := s.rule()
	if len(problems) > 0 {
		return Rule{}, &problems[0]
	}
	return r, nil
}

func decodeScopeJSON(raw json.RawMessage, s *ruleSpec) *FieldError {
	if raw == nil {
		return nil
	}
	scope, fe := jsonObject(raw, "scope.", "scope", []string{"model", "user", "property"})
	if fe != nil {
		return fe
	}
	if fe := jsonString(scope, "scope.", "model", &s.Model); fe != nil {
		return fe
	}
	if fe := jsonString(scope, "scope.", "user", &s.User); fe != nil {
		return fe
	}
	if raw, ok := scope["property"]; ok {
		prop, fe := jsonObject(raw, "scope.property.", "scope.property", []string{"name", "value"})
		if fe != nil {
			return fe
		}
		var p Property
		if fe := jsonString(prop, "scope.property.", "name", &p.Name); fe != nil {
			return fe
		}
		if fe := jsonString(prop, "scope.property.", "value", &p.Value); fe != nil {
			return fe
		}
		s.Property = &p
	}
	return nil
}

// jsonObject decodes a JSON object whose keys must be among known; null
// members count as absent. A nil map with no error means null.
func jsonObject(raw []byte, prefix, field string, known []string) (map[string]json.RawMessage, *FieldError) {
	if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, &FieldError{field, "must be a JSON object"}
	}
	var unknown []string
	for k, v := range m {
		if !slices.Contains(known, k) {
			unknown = append(unknown, k)
		}
		if bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
			delete(m, k)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return nil, &FieldError{prefix + unknown[0], "is not a field here (want " + strings.Join(known, ", ") + ")"}
	}
	return m, nil
}

func jsonString(m map[string]json.RawMessage, prefix, key string, dst *string) *FieldError {
	raw, ok := m[key]
	if !ok {
		return nil
	}
	if json.Unmarshal(raw, dst) != nil {
		return &FieldError{prefix + key, "must be a string"}
	}
	return nil
}
