package policies

import (
	"errors"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// egressOpt is one setting of the file: whether it was given (a rule overrides
// the defaults only with what it gives) and where, for errors found after
// the merge.
type egressOpt[T any] struct {
	v    T
	set  bool
	line int
	path string
}

func (o *egressOpt[T]) put(v T, n *yaml.Node, path string) { *o = egressOpt[T]{v, true, n.Line, path} }

func (o *egressOpt[T]) overlay(r egressOpt[T]) {
	if r.set {
		*o = r
	}
}

// egressSettings is what the defaults and each rule may set. Every leaf is
// merged on its own: a rule giving allow.models keeps the defaults'
// allow.providers. Lists are leaves: a rule's list replaces the default's.
type egressSettings struct {
	requireAuth               egressOpt[bool]
	providers                 egressOpt[egressProviderList]
	models                    egressOpt[egressModelList]
	origins                   egressOpt[egressOriginList]
	rateLimits, budgets       egressOpt[[]RateLimitPolicy]
	cacheEnabled              egressOpt[bool]
	cacheTTL                  egressOpt[time.Duration]
	cacheBucketMaxSize        egressOpt[int]
	requestBody, responseBody egressOpt[BodyLogMode]
	redact                    egressOpt[*egressRedactor]
}

func (s *egressSettings) overlay(r *egressSettings) {
	s.requireAuth.overlay(r.requireAuth)
	s.providers.overlay(r.providers)
	s.models.overlay(r.models)
	s.origins.overlay(r.origins)
	s.rateLimits.overlay(r.rateLimits)
	s.budgets.overlay(r.budgets)
	s.cacheEnabled.overlay(r.cacheEnabled)
	s.cacheTTL.overlay(r.cacheTTL)
	s.cacheBucketMaxSize.overlay(r.cacheBucketMaxSize)
	s.requestBody.overlay(r.requestBody)
	s.responseBody.overlay(r.responseBody)
	s.redact.overlay(r.redact)
}

// settingsFields are the keys shared by defaults and rules.
func (p *egressParser) settingsFields(s *egressSettings) []egressField {
	return []egressField{
		{"requireAuth", func(v *yaml.Node, path string) {
			if b, ok := p.boolean(v, path); ok {
				s.requireAuth.put(b, v, path)
			}
		}},
		{"allow", func(v *yaml.Node, path string) {
			p.mapping(v, path,
				egressField{"providers", func(v *yaml.Node, path string) { s.providers.put(p.providers(v, path), v, path) }},
				egressField{"models", func(v *yaml.Node, path string) { s.models.put(p.models(v, path), v, path) }},
				egressField{"targetOrigins", func(v *yaml.Node, path string) { s.origins.put(p.origins(v, path), v, path) }},
			)
		}},
		{"rateLimits", func(v *yaml.Node, path string) { s.rateLimits.put(p.limits(v, path, false), v, path) }},
		{"budgets", func(v *yaml.Node, path string) { s.budgets.put(p.limits(v, path, true), v, path) }},
		{"cache", func(v *yaml.Node, path string) {
			p.mapping(v, path,
				egressField{"enabled", func(v *yaml.Node, path string) {
					if b, ok := p.boolean(v, path); ok {
						s.cacheEnabled.put(b, v, path)
					}
				}},
				egressField{"ttl", func(v *yaml.Node, path string) {
					if d, ok := p.ttl(v, path); ok {
						s.cacheTTL.put(d, v, path)
					}
				}},
				egressField{"bucketMaxSize", func(v *yaml.Node, path string) {
					if n, ok := p.integer(v, path, 1, 20); ok {
						s.cacheBucketMaxSize.put(n, v, path)
					}
				}},
			)
		}},
		{"logging", func(v *yaml.Node, path string) {
			p.mapping(v, path,
				egressField{"requestBody", func(v *yaml.Node, path string) { p.bodyMode(&s.requestBody, v, path) }},
				egressField{"responseBody", func(v *yaml.Node, path string) { p.bodyMode(&s.responseBody, v, path) }},
				egressField{"redact", func(v *yaml.Node, path string) { s.redact.put(p.redactor(v, path), v, path) }},
			)
		}},
	}
}

// limits parses rateLimits or budgets: Helicone-RateLimit-Policy values.
// Two limits of one list sharing window, unit and segment would share a
// bucket, so they are refused.
func (p *egressParser) limits(n *yaml.Node, path string, budget bool) []RateLimitPolicy {
	what := "rate limit"
	if budget {
		what = "budget"
	}
	out := []RateLimitPolicy{}
	type bucketShape struct {
		window  int64
		unit    RateLimitUnit
		segment string
	}
	first := map[bucketShape]string{} // path of the entry that has the shape
	p.eachString(n, path, func(s string, it *yaml.Node, ipath string) {
		lp, err := parseEgressLimit(s, budget)
		if err != nil {
			p.failf(it, ipath, "bad %s %q: %v", what, clip(s), err)
			return
		}
		shape := bucketShape{lp.Window, lp.Unit, lp.Segment}
		if at, dup := first[shape]; dup {
			p.failf(it, ipath, "%q has the same window, unit and segment as %s; give one quota per window", clip(s), at)
			return
		}
		first[shape] = ipath
		out = append(out, lp)
	})
	return out
}

// parseEgressLimit is ParseRateLimitPolicy; a budget is in cents whatever
// it says, and saying u=request is a mistake worth reporting.
func parseEgressLimit(s string, budget bool) (RateLimitPolicy, error) {
	lp, err := ParseRateLimitPolicy(s)
	if err != nil || !budget {
		return lp, err
	}
	for _, part := range strings.Split(s, ";")[1:] {
		k, v, _ := strings.Cut(part, "=")
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.ToLower(strings.TrimSpace(v))
		if k == "u" && (v == "request" || v == "requests") {
			return lp, errors.New("budgets are counted in cents; u=request belongs in rateLimits")
		}
	}
	lp.Unit = UnitCents
	return lp, nil
}

// ttl reads a duration: Go's form ("90s", "1h30m") or whole days ("7d").
func (p *egressParser) ttl(n *yaml.Node, path string) (time.Duration, bool) {
	s, ok := p.str(n, path)
	if !ok {
		return 0, false
	}
	var d time.Duration
	var err error
	if days, isDays := strings.CutSuffix(s, "d"); isDays {
		var k int64
		k, err = strconv.ParseInt(days, 10, 64)
		if k > int64(MaxCacheTTL/(24*time.Hour)) {
			k = -1 // reported as out of range below
		}
		d = time.Duration(k) * 24 * time.Hour
	} else {
		d, err = time.ParseDuration(s)
	}
	if err != nil || d < time.Second || d > MaxCacheTTL {
		p.failf(n, path, "want a duration from 1s to 365d such as 1h or 7d, got %q", clip(s))
		return 0, false
	}
	return d, true
}

func (p *egressParser) bodyMode(o *egressOpt[BodyLogMode], n *yaml.Node, path string) {
	s, ok := p.str(n, path)
	if !ok {
		return
	}
	for m, name := range egressBodyModeNames {
		if s == name {
			o.put(BodyLogMode(m), n, path)
			return
		}
	}
	p.failf(n, path, "want keep, omit or redact, got %q", clip(s))
}

func (p *egressParser) redactor(n *yaml.Node, path string) *egressRedactor {
	var pats []*regexp.Regexp
	bad := false
	p.eachString(n, path, func(s string, it *yaml.Node, ipath string) {
		re, err := regexp.Compile(s)
		switch {
		case err != nil:
			p.failf(it, ipath, "bad regular expression %q: %v", clip(s), err)
		case re.MatchString(""):
			p.failf(it, ipath, "%q matches the empty string; a redact pattern must match some text", clip(s))
		default:
			pats = append(pats, re)
			return
		}
		bad = true
	})
	if bad {
		// The file is rejected anyway; a stand-in keeps checkRedact from
		// adding "no patterns" to the report.
		return &egressRedactor{}
	}
	return newEgressRedactor(pats)
}

// checkRedact reports a body mode of redact with no pattern to apply.
// merged is a scope's effective settings, own what the scope itself gives:
// a problem inherited whole from the defaults is reported there only.
func (p *egressParser) checkRedact(merged, own *egressSettings) {
	if merged.redact.v != nil {
		return
	}
	for _, m := range [...]egressOpt[BodyLogMode]{merged.requestBody, merged.responseBody} {
		if m.v != LogRedact {
			continue
		}
		switch {
		case own.redact.set: // this scope emptied the list
			p.failf(&yaml.Node{Line: own.redact.line}, own.redact.path, "no patterns, but %s is redact (line %d)", m.path, m.line)
		case own.requestBody.set && own.requestBody.path == m.path, own.responseBody.set && own.responseBody.path == m.path:
			p.failf(&yaml.Node{Line: m.line}, m.path, "redact needs at least one pattern in logging.redact (here or in defaults)")
		}
		return
	}
}
