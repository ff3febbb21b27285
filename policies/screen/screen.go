// Package screen runs the checks a call can ask for before it goes to the
// provider, with Helicone's headers: Helicone-Moderations-Enabled (OpenAI's
// moderation endpoint, called with the call's own OpenAI key) and
// Helicone-LLM-Security-Enabled (a prompt-injection classifier the operator
// runs, such as Meta's Prompt Guard behind an HTTP server).
//
// Both look at what Helicone looks at — the last message of an OpenAI chat
// completion, when it is the user's — and answer a flagged call with
// Helicone's status and body. They go only to origins the operator
// configured, each under its own timeout, and never more than MaxInFlight
// at once; each one's time and outcome is in tollgate_screen_duration_seconds.
// A call that asks for neither never reaches this package.
package screen

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Checks, as the metric's check label and the record's property names say.
const (
	CheckModeration  = "moderation"
	CheckLLMSecurity = "llm_security"
)

// Outcome is what one check came to.
type Outcome string

const (
	Passed  Outcome = "passed"
	Flagged Outcome = "flagged"
	Failed  Outcome = "error"   // no answer that could be read (connection, status, body)
	Timeout Outcome = "timeout" // no answer within the check's timeout
	Busy    Outcome = "busy"    // MaxInFlight checks were running for the whole timeout
	// Skipped: nothing to check (the last message is not the user's, or
	// has no text); Unconfigured: LLM security asked for on a gateway
	// without a classifier. Neither calls anything nor is measured.
	Skipped      Outcome = "skipped"
	Unconfigured Outcome = "unconfigured"
)

// Defaults of Options.
const (
	DefaultModerationURL = "https://api.openai.com"
	// DefaultTimeout keeps a check, the gate's store round trip and the
	// rest of the body phase inside Envoy's message_timeout (2 s in
	// envoy/): the processor answers that phase only once the checks are
	// done, and Envoy fails a call whose reply comes later.
	DefaultTimeout     = 1500 * time.Millisecond
	DefaultThreshold   = 0.5
	DefaultMaxInFlight = 256
)

// maxAnswer bounds what is read of a check's answer: a moderation result
// is a few KiB.
const maxAnswer = 1 << 20

// Options configure a Screen. Zero values get the defaults.
type Options struct {
	// ModerationURL is the base URL of OpenAI's API; POST
	// <ModerationURL>/v1/moderations.
	ModerationURL     string
	ModerationTimeout time.Duration
	// SecurityURL is the classifier's URL, posted to as it is; "" turns
	// LLM security off (such calls go on unchecked, as at Helicone
	// without its classifier).
	SecurityURL     string
	SecurityTimeout time.Duration
	// SecurityThreshold: a classifier label other than a benign one with
	// at least this score flags the prompt.
	SecurityThreshold float64
	MaxInFlight       int
	Client            *http.Client          // default: no redirects, no proxy from the environment
	Registerer        prometheus.Registerer // nil: metrics not registered
	Now               func() time.Time
}

// Screen runs the checks. It is safe for concurrent use.
type Screen struct {
	moderationURL     string
	moderationTimeout time.Duration
	securityURL       string
	securityTimeout   time.Duration
	threshold         float64
	client            *http.Client
	slots             chan struct{}
	duration          *prometheus.HistogramVec
	now               func() time.Time
}

// New builds a Screen; the URLs must pass ValidURL.
func New(o Options) (*Screen, error) {
	if o.ModerationURL == "" {
		o.ModerationURL = DefaultModerationURL
	}
	if err := ValidURL(o.ModerationURL); err != nil {
		return nil, err
	}
	if o.SecurityURL != "" {
		if err := ValidURL(o.SecurityURL); err != nil {
			return nil, err
		}
	}
	s := &Screen{
		moderationURL:     strings.TrimRight(o.ModerationURL, "/") + "/v1/moderations",
		moderationTimeout: o.ModerationTimeout,
		securityURL:       o.SecurityURL,
		securityTimeout:   o.SecurityTimeout,
		threshold:         o.SecurityThreshold,
		client:            o.Client,
		now:               o.Now,
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tollgate_screen_duration_seconds",
			Help:    "Time of the pre-call checks (Helicone-Moderations-Enabled, Helicone-LLM-Security-Enabled), by check and outcome (passed, flagged, error, timeout, busy).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 1.5, 2, 5},
		}, []string{"check", "result"}),
	}
	if s.moderationTimeout <= 0 {
		s.moderationTimeout = DefaultTimeout
	}
	if s.securityTimeout <= 0 {
		s.securityTimeout = DefaultTimeout
	}
	if s.threshold <= 0 {
		s.threshold = DefaultThreshold
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	s.slots = make(chan struct{}, o.MaxInFlight)
	if s.client == nil {
		s.client = &http.Client{
			Transport: &http.Transport{
				// Only the configured origins: no proxy from the
				// environment, no redirect elsewhere.
				Proxy:               nil,
				MaxIdleConnsPerHost: o.MaxInFlight,
				IdleConnTimeout:     90 * time.Second,
				ForceAttemptHTTP2:   true,
			},
		}
	}
	noRedirect := *s.client
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	s.client = &noRedirect
	if s.now == nil {
		s.now = time.Now
	}
	if o.Registerer != nil {
		if err := o.Registerer.Register(s.duration); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// ValidURL accepts an http(s) URL with a host and no credentials, query or
// fragment: where an operator may send prompts.
func ValidURL(v string) error {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		shown := v
		if err == nil && u.User != nil {
			shown = u.Redacted() // the message reaches logs
		}
		return errors.New("want an http(s) URL such as https://api.openai.com, without credentials, query or fragment, got " + quote(shown))
	}
	return nil
}

func quote(v string) string {
	if len(v) > 128 {
		v = v[:128] + "…"
	}
	return `"` + v + `"`
}

// Request is one call's part in the checks.
type Request struct {
	Body        []byte // the chat completion's request body
	Moderation  bool   // Helicone-Moderations-Enabled
	LLMSecurity bool   // Helicone-LLM-Security-Enabled
	Advanced    bool   // Helicone-LLM-Security-Advanced: passed on to the classifier
	// The call's own OpenAI credentials, sent to the moderation endpoint
	// only (never to the classifier, never logged): Authorization and the
	// OpenAI-Organization and OpenAI-Project that scope it.
	Authorization, Organization, Project string
	RequestID                            string // named in the flagged answer's details
}

// Result is one check's outcome and time.
type Result struct {
	Check    string
	Outcome  Outcome
	Duration time.Duration
	// Detail says more for the log: the flagged moderation categories, or
	// why a check failed. Never a secret.
	Detail string
}

// Verdict is the checks' outcome for one call.
type Verdict struct {
	Results []Result // one per check asked for
	Block   *Block   // nil: the call goes on
}

// Block is the answer to a call that must not go on.
type Block struct {
	Status int
	Code   string // lowercase, for X-Helicone-Error and the rejection metric
	Body   []byte // Helicone's body
	Reason string // for the record's error column
}

// Check runs the checks req asks for, both at once when it asks for both,
// and returns once they are done.
//
// What Helicone does (worker/src/lib/HeliconeProxyRequest/ProxyForwarder.ts):
// LLM security first — a threat is a 400 PROMPT_THREAT_DETECTED, a
// classifier that fails lets the call go on (PromptSecurityClient.ts
// returns undefined) — then moderation, a flagged prompt a 400
// PROMPT_FLAGGED_FOR_MODERATION and a moderation call that fails a 500
// (managers/ModerationManager.ts). Here the two run concurrently and their
// outcomes are weighed in that order, so a call waits for the slower
// check, not for both.
func (s *Screen) Check(ctx context.Context, req Request) Verdict {
	in, ok := lastUserInput(req.Body)
	var v Verdict
	var mod, sec Result
	switch {
	case !ok:
		mod = Result{Check: CheckModeration, Outcome: Skipped}
		sec = Result{Check: CheckLLMSecurity, Outcome: Skipped}
	case req.Moderation && req.LLMSecurity && s.securityURL != "" && in.text != "":
		done := make(chan Result, 1)
		go func() { done <- s.security(ctx, in, req.Advanced) }()
		mod = s.moderation(ctx, in, req)
		sec = <-done
	default:
		if req.Moderation {
			mod = s.moderation(ctx, in, req)
		}
		if req.LLMSecurity {
			sec = s.security(ctx, in, req.Advanced)
		}
	}
	if req.LLMSecurity {
		v.Results = append(v.Results, sec)
		if sec.Outcome == Flagged {
			v.Block = threatBlock(req.RequestID)
		}
	}
	if req.Moderation {
		v.Results = append(v.Results, mod)
		if v.Block == nil {
			v.Block = moderationBlock(mod, req.RequestID)
		}
	}
	return v
}

// run times one check under its timeout and a free slot, and records it.
func (s *Screen) run(ctx context.Context, check string, timeout time.Duration, call func(context.Context) (Outcome, string)) Result {
	start := s.now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r := Result{Check: check}
	select {
	case s.slots <- struct{}{}:
		r.Outcome, r.Detail = call(ctx)
		<-s.slots
		if r.Outcome == Failed && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			r.Outcome, r.Detail = Timeout, "no answer within "+timeout.String()
		}
	case <-ctx.Done():
		r.Outcome, r.Detail = Busy, "no free slot within "+timeout.String()
		if errors.Is(ctx.Err(), context.Canceled) {
			r.Outcome, r.Detail = Failed, "the call ended first"
		}
	}
	r.Duration = s.now().Sub(start)
	s.duration.WithLabelValues(check, string(r.Outcome)).Observe(r.Duration.Seconds())
	return r
}
