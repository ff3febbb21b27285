package policies

import "time"

// The egress policy is one YAML file, written by a platform team and
// mounted from a ConfigMap, that governs the LLM calls of every workload in
// a mesh: which providers, models and Helicone-Target-URL origins each may
// use, whether it must send Helicone-Auth, the rate limits and budgets it
// runs under, its cache defaults and how its bodies are logged.
//
// The file is parsed and compiled once (ParseEgressPolicy); per request,
// Decide picks the first rule matching the workload and returns a
// precompiled decision, without allocating. A nil *EgressPolicy, and a
// file with nothing in it, allow everything and change nothing.

// Workload identifies the Kubernetes workload a call comes from.
type Workload struct {
	Namespace      string
	ServiceAccount string
	Name           string            // the workload, e.g. the Deployment's name
	Labels         map[string]string // the pod's labels
}

// EgressPolicy is a parsed, validated policy file. It is immutable and safe
// for concurrent use.
type EgressPolicy struct {
	name     string
	defaults *egressEffective
	rules    []egressRule
}

type egressRule struct {
	name string
	sel  egressSelector
	eff  *egressEffective
}

// Name is the file name the policy was parsed under.
func (p *EgressPolicy) Name() string {
	if p == nil {
		return ""
	}
	return p.name
}

// Decide returns what the policy says for w: the first rule whose match
// selects w, else the defaults. Cheap enough for every request: no
// allocation, a few string comparisons per rule.
func (p *EgressPolicy) Decide(w Workload) EgressDecision {
	if p == nil {
		return EgressDecision{namespace: w.Namespace, workload: w.Name}
	}
	eff := p.defaults
	for i := range p.rules {
		if p.rules[i].sel.matches(&w) {
			eff = p.rules[i].eff
			break
		}
	}
	d := eff.decision
	d.namespace, d.workload = w.Namespace, w.Name
	return d
}

// EgressDecision is the policy as it applies to one workload. The zero
// value (no policy) allows everything and changes nothing. Its slices are
// shared with the policy: read them, never modify them.
type EgressDecision struct {
	Rule        string // the matching rule's name; "" = the defaults
	RequireAuth bool   // a call without Helicone-Auth is refused (401)
	// RateLimits and Budgets apply on top of the request's own
	// Helicone-RateLimit-Policy, each in a bucket of its own per (tenant,
	// rule, workload): see Limits. Budgets are always in UnitCents.
	RateLimits []RateLimitPolicy
	Budgets    []RateLimitPolicy
	Cache      EgressCache
	// How the request and response bodies go into the log. A request's
	// Helicone-Omit-Request / -Response header still omits its body: the
	// stricter of the two wins.
	RequestBody  BodyLogMode
	ResponseBody BodyLogMode

	eff                 *egressEffective // nil: no policy
	namespace, workload string           // for bucket keys and messages
}

// EgressCache are cache defaults for calls that do not say otherwise: a
// request's own Helicone-Cache-Enabled, Cache-Control and
// Helicone-Cache-Bucket-Max-Size headers take precedence. Zero fields mean
// "no default from the policy".
type EgressCache struct {
	Enabled       bool          // cache calls that send no Helicone-Cache-Enabled
	TTL           time.Duration // when Cache-Control gives none; 0 = the server's default
	BucketMaxSize int           // when Helicone-Cache-Bucket-Max-Size is absent; 0 = 1
}

// BodyLogMode says how a body goes into the request log.
type BodyLogMode uint8

const (
	LogKeep   BodyLogMode = iota // logged as is (the default)
	LogOmit                      // left out of the log
	LogRedact                    // logged with the policy's redact patterns replaced
)

var egressBodyModeNames = [...]string{LogKeep: "keep", LogOmit: "omit", LogRedact: "redact"}

func (m BodyLogMode) String() string {
	if int(m) < len(egressBodyModeNames) {
		return egressBodyModeNames[m]
	}
	return "keep"
}

// AllowsProvider reports whether the workload may call provider (a name as
// provider.Classify returns it).
func (d EgressDecision) AllowsProvider(provider string) bool {
	return d.eff == nil || d.eff.providers.allows(provider)
}

// AllowsModel reports whether the workload may use model at provider. A
// dated snapshot is allowed when its base model is (gpt-4o-mini-2024-07-18
// under gpt-4o-mini); an empty model (a call that names none) is allowed.
func (d EgressDecision) AllowsModel(provider, model string) bool {
	return d.eff == nil || model == "" || d.eff.models.allows(provider, model)
}

// AllowsTargetOrigin reports whether the workload may send a call to
// origin through Helicone-Target-URL. This is the policy's verdict only:
// the server's own list of allowed origins still applies.
func (d EgressDecision) AllowsTargetOrigin(origin string) bool {
	return d.eff == nil || d.eff.origins.allows(origin)
}

// Redact replaces every match of the policy's redact patterns in body with
// "[REDACTED]". It returns body itself when nothing matches.
func (d EgressDecision) Redact(body []byte) []byte {
	if d.eff == nil {
		return body
	}
	return d.eff.redact.apply(body)
}

// ForLog is body as mode says to log it (mode is d.RequestBody or
// d.ResponseBody): nil when omitted, redacted, or as is.
func (d EgressDecision) ForLog(mode BodyLogMode, body []byte) []byte {
	switch mode {
	case LogOmit:
		return nil
	case LogRedact:
		return d.Redact(body)
	}
	return body
}

// egressEffective is one rule merged with the defaults, compiled.
type egressEffective struct {
	decision  EgressDecision // returned by Decide, eff pointing back here
	providers egressProviderList
	models    egressModelList
	origins   egressOriginList
	redact    *egressRedactor // nil: no patterns
}

func newEgressEffective(rule string, s *egressSettings) *egressEffective {
	e := &egressEffective{
		providers: s.providers.v,
		models:    s.models.v,
		origins:   s.origins.v,
		redact:    s.redact.v,
	}
	// An allow list the file never gives leaves that dimension open.
	e.providers.any = e.providers.any || !s.providers.set
	e.models.any = e.models.any || !s.models.set
	e.origins.open = !s.origins.set
	e.decision = EgressDecision{
		Rule:        rule,
		RequireAuth: s.requireAuth.v,
		RateLimits:  s.rateLimits.v,
		Budgets:     s.budgets.v,
		Cache: EgressCache{
			Enabled:       s.cacheEnabled.v,
			TTL:           s.cacheTTL.v,
			BucketMaxSize: s.cacheBucketMaxSize.v,
		},
		RequestBody:  s.requestBody.v,
		ResponseBody: s.responseBody.v,
		eff:          e,
	}
	return e
}
