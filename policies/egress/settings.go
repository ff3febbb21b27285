package egress

import (
	"errors"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/tollgate-dev/tollgate/policies/cachecontrol"
	"github.com/tollgate-dev/tollgate/policies/ratelimit"
)

// setting is one setting of the file: whether it was given (a rule overrides
// the defaults only with what it gives) and where, for errors found after
// the merge.
type setting[T any] struct {
	v    T
	set  bool
	line int
	path string
}

func (o *setting[T]) put(v T, n *yaml.Node, path string) { *o = setting[T]{v, true, n.Line, path} }

func (o *setting[T]) overlay(r setting[T]) {
	if r.set {
		*o = r
	}
}

// settings is what the defaults and each rule may set. Every leaf is
// merged on its own: a rule giving allow.models keeps the defaults'
// allow.providers. Lists are leaves: a rule's list replaces the default's.
type settings struct {
	requireAuth               setting[bool]
	providers                 setting[providerList]
	models                    setting[modelList]
	origins                   setting[originList]
	rateLimits, budgets       setting[[]ratelimit.Policy]
	cacheEnabled              setting[bool]
	cacheTTL                  setting[time.Duration]
	cacheBucketMaxSize        setting[int]
	cacheSemantic             setting[bool]
	cacheSemanticThreshold    setting[float64]
	requestBody, responseBody setting[BodyLogMode]
	redact                    setting[*redactor]
}

func (s *settings) overlay(r *settings) {
	s.requireAuth.overlay(r.requireAuth)
	s.providers.overlay(r.providers)
	s.models.overlay(r.models)
	s.origins.overlay(r.origins)
	s.rateLimits.overlay(r.rateLimits)
	s.budgets.overlay(r.budgets)
	s.cacheEnabled.overlay(r.cacheEnabled)
	s.cacheTTL.overlay(r.cacheTTL)
	s.cacheBucketMaxSize.overlay(r.cacheBucketMaxSize)
	s.cacheSemantic.overlay(r.cacheSemantic)
	s.cacheSemanticThreshold.overlay(r.cacheSemanticThreshold)
	s.requestBody.overlay(r.requestBody)
	s.responseBody.overlay(r.responseBody)
	s.redact.overlay(r.redact)
}

// settingsFields are the keys shared by defaults and rules.
func (p *parser) settingsFields(s *settings) []field {
	return []field{
		{"requireAuth", func(v *yaml.Node, path string) {
			if b, ok := p.boolean(v, path); ok {
				s.requireAuth.put(b, v, path)
			}
		}},
		{"allow", func(v *yaml.Node, path string) {
			p.mapping(v, path,
				field{"providers", func(v *yaml.Node, path string) { s.providers.put(p.providers(v, path), v, path) }},
				field{"models", func(v *yaml.Node, path string) { s.models.put(p.models(v, path), v, path) }},
				field{"targetOrigins", func(v *yaml.Node, path string) { s.origins.put(p.origins(v, path), v, path) }},
			)
		}},
		{"rateLimits", func(v *yaml.Node, path string) { s.rateLimits.put(p.limits(v, path, false), v, path) }},
		{"budgets", func(v *yaml.Node, path string) { s.budgets.put(p.limits(v, path, true), v, path) }},
		{"cache", func(v *yaml.Node, path string) {
			p.mapping(v, path,
				field{"enabled", func(v *yaml.Node, path string) {
					if b, ok := p.boolean(v, path); ok {
						s.cacheEnabled.put(b, v, path)
					}
				}},
				field{"ttl", func(v *yaml.Node, path string) {
					if d, ok := p.ttl(v, path); ok {
						s.cacheTTL.put(d, v, path)
					}
				}},
				field{"bucketMaxSize", func(v *yaml.Node, path string) {
					if n, ok := p.integer(v, path, 1, 20); ok {
						s.cacheBucketMaxSize.put(n, v, path)
					}
				}},
				field{"semantic", func(v *yaml.Node, path string) {
					if b, ok := p.boolean(v, path); ok {
						s.cacheSemantic.put(b, v, path)
					}
				}},
				field{"semanticThreshold", func(v *yaml.Node, path string) {
					var f float64
					if !p.is(v, yaml.ScalarNode, path, "a number") {
						return
					}
					if t := v.ShortTag(); t != "!!float" && t != "!!int" || v.Decode(&f) != nil || !(f > 0 && f <= 1) {
						p.failf(v, path, "want a cosine similarity in (0, 1], got %s", describe(v))
						return
					}
					s.cacheSemanticThreshold.put(f, v, path)
				}},
			)
		}},
		{"logging", func(v *yaml.Node, path string) {
			p.mapping(v, path,
				field{"requestBody", func(v *yaml.Node, path string) { p.bodyMode(&s.requestBody, v, path) }},
				field{"responseBody", func(v *yaml.Node, path string) { p.bodyMode(&s.responseBody, v, path) }},
				field{"redact", func(v *yaml.Node, path string) { s.redact.put(p.redactor(v, path), v, path) }},
			)
		}},
	}
}

// limits parses rateLimits or budgets: Helicone-RateLimit-Policy values.
// Two limits of one list sharing window, unit and segment would share a
// bucket, so they are refused.
func (p *parser) limits(n *yaml.Node, path string, budget bool) []ratelimit.Policy {
	what := "rate limit"
	if budget {
		what = "budget"
	}
	out := []ratelimit.Policy{}
	type bucketShape struct {
		window  int64
		unit    ratelimit.Unit
		segment string
	}
	first := map[bucketShape]string{} // path of the entry that has the shape
	p.eachString(n, path, func(s string, it *yaml.Node, ipath string) {
		lp, err := parseLimit(s, budget)
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

// parseLimit is ratelimit.Parse; a budget is in cents whatever
// it says, and saying u=request is a mistake worth reporting.
func parseLimit(s string, budget bool) (ratelimit.Policy, error) {
	lp, err := ratelimit.Parse(s)
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
	lp.Unit = ratelimit.UnitCents
	return lp, nil
}

// ttl reads a duration: Go's form ("90s", "1h30m") or whole days ("7d").
func (p *parser) ttl(n *yaml.Node, path string) (time.Duration, bool) {
	s, ok := p.str(n, path)
	if !ok {
		return 0, false
	}
	var d time.Duration
	var err error
	if days, isDays := strings.CutSuffix(s, "d"); isDays {
		var k int64
		k, err = strconv.ParseInt(days, 10, 64)
		if k > int64(cachecontrol.MaxTTL/(24*time.Hour)) {
			k = -1 // reported as out of range below
		}
		d = time.Duration(k) * 24 * time.Hour
	} else {
		d, err = time.ParseDuration(s)
	}
	if err != nil || d < time.Second || d > cachecontrol.MaxTTL {
		p.failf(n, path, "want a duration from 1s to 365d such as 1h or 7d, got %q", clip(s))
		return 0, false
	}
	return d, true
}

func (p *parser) bodyMode(o *setting[BodyLogMode], n *yaml.Node, path string) {
	s, ok := p.str(n, path)
	if !ok {
		return
	}
	for m, name := range bodyModeNames {
		if s == name {
			o.put(BodyLogMode(m), n, path)
			return
		}
	}
	p.failf(n, path, "want keep, omit or redact, got %q", clip(s))
}

func (p *parser) redactor(n *yaml.Node, path string) *redactor {
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
		return &redactor{}
	}
	return newRedactor(pats)
}

// checkRedact reports a body mode of redact with no pattern to apply.
// merged is a scope's effective settings, own what the scope itself gives:
// a problem inherited whole from the defaults is reported there only.
func (p *parser) checkRedact(merged, own *settings) {
	if merged.redact.v != nil {
		return
	}
	for _, m := range [...]setting[BodyLogMode]{merged.requestBody, merged.responseBody} {
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
