package alerts

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Metric is what a rule watches, over the requests of its scope in its
// window.
type Metric string

const (
	// CostUSD is the sum of cost_usd.
	CostUSD Metric = "cost_usd"
	// ErrorRate is the share of requests that failed (status >= 400, or no
	// response), from 0 to 1; 0 when there were no requests.
	ErrorRate Metric = "error_rate"
	// LatencyP95 is the exact 95th percentile of latency_ms (the value at
	// rank floor(0.95 × n)), as GET /v1/stats computes it; 0 when there
	// were no requests.
	LatencyP95 Metric = "latency_p95_ms"
)

func (m Metric) valid() bool { return m == CostUSD || m == ErrorRate || m == LatencyP95 }

// Property is a request property (Helicone-Property-<Name>) to match.
type Property struct {
	Name  string `json:"name"` // lowercased, as the request log stores it
	Value string `json:"value"`
}

// Scope narrows a rule to some requests; zero fields match everything.
// Rules see every tenant.
type Scope struct {
	Model    string    `json:"model,omitempty"`
	User     string    `json:"user,omitempty"`
	Property *Property `json:"property,omitempty"`
}

// Rule is one alert rule.
type Rule struct {
	ID         string
	Name       string
	Metric     Metric
	Threshold  float64 // the rule fires when the value exceeds it
	Window     time.Duration
	Scope      Scope
	WebhookURL string // may hold a token: never logged
	Cooldown   time.Duration
	Enabled    bool
	// File is the file that defines the rule; such rules are read-only
	// through the API. Empty for rules created through the API.
	File string
}

// ReadOnly reports whether the rule comes from a file.
func (r Rule) ReadOnly() bool { return r.File != "" }

// Limits of a rule's durations and texts.
const (
	MinWindow       = time.Minute
	MaxWindow       = 7 * 24 * time.Hour
	MinCooldown     = time.Minute
	MaxCooldown     = 30 * 24 * time.Hour
	DefaultCooldown = time.Hour

	maxNameLen  = 200
	maxScopeLen = 256
	maxURLLen   = 2048
)

// FieldError names the field of a rule that is wrong, as the API and the
// file loader report it.
type FieldError struct {
	Field  string // e.g. "window", "scope.property.name"
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Errors of the rule operations; the API maps them to 404 and 409.
var (
	ErrNotFound = errors.New("no such alert rule")
	ErrReadOnly = errors.New("the rule is defined in a file and is read-only")
	ErrExists   = errors.New("an alert rule with this id exists")
	// ErrConflict: another replica changed the rule at the same moment.
	ErrConflict = errors.New("the alert rule was changed concurrently; read it again")
)

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// Validate reports the first problem of r, as a *FieldError.
func (r Rule) Validate() error {
	if p := r.problems(); len(p) > 0 {
		return &p[0]
	}
	return nil
}

// problems lists what is wrong with r, in field order.
func (r Rule) problems() []FieldError {
	var out []FieldError
	bad := func(field, format string, args ...any) {
		out = append(out, FieldError{field, fmt.Sprintf(format, args...)})
	}
	if !idPattern.MatchString(r.ID) {
		bad("id", "want 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
	if utf8.RuneCountInString(r.Name) > maxNameLen || !utf8.ValidString(r.Name) {
		bad("name", "want at most %d characters of UTF-8", maxNameLen)
	}
	if !r.Metric.valid() {
		bad("metric", "want %s, %s or %s", CostUSD, ErrorRate, LatencyP95)
	}
	switch {
	case math.IsNaN(r.Threshold) || math.IsInf(r.Threshold, 0) || r.Threshold < 0:
		bad("threshold", "want a number of at least 0")
	case r.Metric == ErrorRate && r.Threshold > 1:
		bad("threshold", "error_rate is a fraction of the requests: want a number from 0 to 1 (0.05 = 5%%)")
	}
	if r.Window < MinWindow || r.Window > MaxWindow || r.Window%time.Second != 0 {
		bad("window", "want a whole number of seconds from 1m to 7d, such as 15m")
	}
	for _, f := range []struct{ name, v string }{{"scope.model", r.Scope.Model}, {"scope.user", r.Scope.User}} {
		if len(f.v) > maxScopeLen {
			bad(f.name, "want at most %d bytes", maxScopeLen)
		}
	}
	if p := r.Scope.Property; p != nil {
		switch {
		case p.Name == "":
			bad("scope.property.name", "is required with a property")
		case len(p.Name) > maxScopeLen || p.Name != strings.ToLower(p.Name):
			bad("scope.property.name", "want at most %d bytes, lowercase", maxScopeLen)
		}
		if len(p.Value) > maxScopeLen {
			bad("scope.property.value", "want at most %d bytes", maxScopeLen)
		}
	}
	if why := webhookProblem(r.WebhookURL); why != "" {
		bad("webhook_url", "%s", why)
	}
	if r.Cooldown < MinCooldown || r.Cooldown > MaxCooldown || r.Cooldown%time.Second != 0 {
		bad("cooldown", "want a whole number of seconds from 1m to 30d, such as 1h")
	}
	return out
}

// webhookProblem explains what is wrong with a webhook URL, "" if nothing.
// The URL itself never appears in the explanation: it may hold a token.
func webhookProblem(raw string) string {
	if raw == "" {
		return "is required"
	}
	if len(raw) > maxURLLen {
		return fmt.Sprintf("want at most %d bytes", maxURLLen)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return "want an http:// or https:// URL"
	}
	if strings.HasSuffix(raw, redactedURLSuffix) {
		return "the API shows webhook URLs shortened to their origin (they may hold tokens): send the whole URL"
	}
	return ""
}

// generation identifies what a rule watches and where it reports: a hash
// of its metric, threshold, window, scope and webhook URL. Each event
// carries the generation of the rule that fired it; events of another
// generation do not count for the rule's incident and cooldown, so a rule
// changed (or deleted and created again with other settings) starts
// afresh. Name, cooldown and enabled are not part of it. The hash is
// truncated SHA-256: it does not reveal the URL.
func (r Rule) generation() string {
	h := sha256.New()
	field := func(s string) { fmt.Fprintf(h, "%d:%s;", len(s), s) }
	field(string(r.Metric))
	field(strconv.FormatFloat(r.Threshold, 'g', -1, 64))
	field(strconv.FormatInt(int64(r.Window/time.Second), 10))
	field(r.Scope.Model)
	field(r.Scope.User)
	if p := r.Scope.Property; p != nil {
		field("property")
		field(p.Name)
		field(p.Value)
	} else {
		field("")
	}
	field(r.WebhookURL)
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// redactedURLSuffix ends a webhook URL as the API shows it when the URL
// has more than an origin.
const redactedURLSuffix = "/…"

// redactWebhookURL shows a webhook URL as its origin ("https://host:port"),
// with "/…" after it when the URL has a path, query or fragment, which may
// hold a token; "" for "". Credentials in the URL are dropped too.
func redactWebhookURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(hidden)"
	}
	origin := u.Scheme + "://" + u.Host
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.RawPath != "" {
		return origin + redactedURLSuffix
	}
	return origin
}
