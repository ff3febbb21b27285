// Package egress is the egress policy: one YAML file, written by a
// platform team and mounted from a ConfigMap, that governs the LLM calls of
// every workload in a mesh: which providers, models and Helicone-Target-URL
// origins each may use, whether it must send Helicone-Auth, the rate limits
// and budgets it runs under, its cache defaults and how its bodies are
// logged.
//
// The file is parsed and compiled once (Parse, and Watch to keep it
// current); per request, Decide picks the first rule matching the workload
// and returns a precompiled Decision, without allocating. A nil *Policy,
// and a file with nothing in it, allow everything and change nothing. Its
// rate limits and budgets are taken by the gate (policies/gate) in the
// same store round trip as the request's own.
package egress

import (
	"time"

	"github.com/tollgate-dev/tollgate/policies/ratelimit"
)

// Workload identifies the Kubernetes workload a call comes from.
type Workload struct {
	Namespace      string
	ServiceAccount string
	Name           string            // the workload, e.g. the Deployment's name
	Labels         map[string]string // the pod's labels
	// ProxyKey is the id of the key-vault proxy key the call was made
	// with ("" for none): a rule can select it (match.proxyKeys), and
	// then its limits are kept per key.
	ProxyKey string
}

// Policy is a parsed, validated policy file. It is immutable and safe
// for concurrent use.
type Policy struct {
	name     string
	defaults *effective
	rules    []compiledRule
}

type compiledRule struct {
	name string
	sel  selector
	eff  *effective
}

// Name is the file name the policy was parsed under.
func (p *Policy) Name() string {
	if p == nil {
		return ""
	}
	return p.name
}

// Decide returns what the policy says for w: the first rule whose match
// selects w, else the defaults. Cheap enough for every request: no
// allocation, a few string comparisons per rule.
func (p *Policy) Decide(w Workload) Decision {
	if p == nil {
		return Decision{namespace: w.Namespace, workload: w.Name}
	}
	eff := p.defaults
	perKey := false
	for i := range p.rules {
		if p.rules[i].sel.matches(&w) {
			eff = p.rules[i].eff
			perKey = len(p.rules[i].sel.proxyKeys) > 0
			break
		}
	}
	d := eff.decision
	d.namespace, d.workload = w.Namespace, w.Name
	if perKey {
		d.proxyKey = w.ProxyKey
	}
	return d
}

// Decision is the policy as it applies to one workload. The zero
// value (no policy) allows everything and changes nothing. Its slices are
// shared with the policy: read them, never modify them.
type Decision struct {
	Rule        string // the matching rule's name; "" = the defaults
	RequireAuth bool   // a call without Helicone-Auth is refused (401)
	// RateLimits and Budgets apply on top of the request's own
	// Helicone-RateLimit-Policy, each in a bucket of its own per (tenant,
	// rule, workload): see Limits. Budgets are always in ratelimit.UnitCents.
	RateLimits []ratelimit.Policy
	Budgets    []ratelimit.Policy
	Cache      Cache
	// How the request and response bodies go into the log. A request's
	// Helicone-Omit-Request / -Response header still omits its body: the
	// stricter of the two wins.
	RequestBody  BodyLogMode
	ResponseBody BodyLogMode

	eff                 *effective // nil: no policy
	namespace, workload string     // for bucket keys and messages
	proxyKey            string     // set when the rule selects proxy keys: its limits are per key
}

// Cache are cache defaults for calls that do not say otherwise: a
// request's own Helicone-Cache-Enabled, Cache-Control and
// Helicone-Cache-Bucket-Max-Size headers take precedence. Zero fields mean
// "no default from the policy".
type Cache struct {
	Enabled       bool          // cache calls that send no Helicone-Cache-Enabled
	TTL           time.Duration // when Cache-Control gives none; 0 = the server's default
	BucketMaxSize int           // when Helicone-Cache-Bucket-Max-Size is absent; 0 = 1
	// Semantic turns the semantic cache on for calls that send no
	// Helicone-Cache-Semantic-Enabled; SemanticThreshold (0: the server's
	// default) applies without Helicone-Cache-Semantic-Threshold.
	Semantic          bool
	SemanticThreshold float64
}

// BodyLogMode says how a body goes into the request log.
type BodyLogMode uint8

const (
	LogKeep   BodyLogMode = iota // logged as is (the default)
	LogOmit                      // left out of the log
	LogRedact                    // logged with the policy's redact patterns replaced
)

var bodyModeNames = [...]string{LogKeep: "keep", LogOmit: "omit", LogRedact: "redact"}

func (m BodyLogMode) String() string {
	if int(m) < len(bodyModeNames) {
		return bodyModeNames[m]
	}
	return "keep"
}

// AllowsProvider reports whether the workload may call provider (a name as
// provider.Classify returns it).
func (d Decision) AllowsProvider(provider string) bool {
	return d.eff == nil || d.eff.providers.allows(provider)
}

// AllowsModel reports whether the workload may use model at provider. A
// dated snapshot is allowed when its base model is (gpt-4o-mini-2024-07-18
// under gpt-4o-mini); an empty model (a call that names none) is allowed.
func (d Decision) AllowsModel(provider, model string) bool {
	return d.eff == nil || model == "" || d.eff.models.allows(provider, model)
}

// AllowsTargetOrigin reports whether the workload may send a call to
// origin through Helicone-Target-URL. This is the policy's verdict only:
// the server's own list of allowed origins still applies.
func (d Decision) AllowsTargetOrigin(origin string) bool {
	return d.eff == nil || d.eff.origins.allows(origin)
}

// Redact replaces every match of the policy's redact patterns in body with
// "[REDACTED]". It returns body itself when nothing matches.
func (d Decision) Redact(body []byte) []byte {
	if d.eff == nil {
		return body
	}
	return d.eff.redact.apply(body)
}

// ForLog is body as mode says to log it (mode is d.RequestBody or
// d.ResponseBody): nil when omitted, redacted, or as is.
func (d Decision) ForLog(mode BodyLogMode, body []byte) []byte {
	switch mode {
	case LogOmit:
		return nil
	case LogRedact:
		return d.Redact(body)
	}
	return body
}

// effective is one rule merged with the defaults, compiled.
type effective struct {
	decision  Decision // returned by Decide, eff pointing back here
	providers providerList
	models    modelList
	origins   originList
	redact    *redactor // nil: no patterns
}

func newEffective(rule string, s *settings) *effective {
	e := &effective{
		providers: s.providers.v,
		models:    s.models.v,
		origins:   s.origins.v,
		redact:    s.redact.v,
	}
	// An allow list the file never gives leaves that dimension open.
	e.providers.any = e.providers.any || !s.providers.set
	e.models.any = e.models.any || !s.models.set
	e.origins.open = !s.origins.set
	e.decision = Decision{
		Rule:        rule,
		RequireAuth: s.requireAuth.v,
		RateLimits:  s.rateLimits.v,
		Budgets:     s.budgets.v,
		Cache: Cache{
			Enabled:       s.cacheEnabled.v,
			TTL:           s.cacheTTL.v,
			BucketMaxSize: s.cacheBucketMaxSize.v,

			Semantic:          s.cacheSemantic.v,
			SemanticThreshold: s.cacheSemanticThreshold.v,
		},
		RequestBody:  s.requestBody.v,
		ResponseBody: s.responseBody.v,
		eff:          e,
	}
	return e
}
