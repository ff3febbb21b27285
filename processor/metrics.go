package processor

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate-dev/tollgate/provider"
	"github.com/tollgate-dev/tollgate/record"
)

// Metrics are the processor's Prometheus series.
type Metrics struct {
	calls        *prometheus.CounterVec
	tokens       *prometheus.CounterVec
	costUSD      *prometheus.CounterVec
	rejected     *prometheus.CounterVec
	endedEarly   *prometheus.CounterVec
	unknownModel *prometheus.CounterVec
	// heliconeWarnings counts tolerated Helicone-* header values by header
	// (helicone.WarningLabel: Helicone's names, else "other").
	heliconeWarnings *prometheus.CounterVec
	processorErrors  prometheus.Counter
	cacheHits        prometheus.Counter
	attempts         prometheus.Counter
	fallbacks        prometheus.Counter
	linkMisses       prometheus.Counter
}

// NewMetrics creates the series and registers them with reg (nil: not
// registered, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_calls_total", Help: "Calls processed, by provider (openai, anthropic, azure; other: any other origin) and HTTP status class (negative: ended without a response).",
		}, []string{"provider", "status_class"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_tokens_total", Help: "Tokens reported by providers, by provider (openai, anthropic, azure, other) and kind.",
		}, []string{"provider", "kind"}),
		costUSD: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_cost_usd_total", Help: "Cost of calls in USD, by provider (openai, anthropic, azure, other).",
		}, []string{"provider"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_rejected_total", Help: "Calls answered by Tollgate itself with an error, by reason.",
		}, []string{"reason"}),
		endedEarly: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_calls_ended_early_total", Help: "Calls whose stream ended before the response did, by reason.",
		}, []string{"reason"}),
		unknownModel: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_unknown_model_total", Help: "Calls with usage whose model has no price (cost logged as 0).",
		}, []string{"provider"}),
		heliconeWarnings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_helicone_warnings_total", Help: "Helicone-* request header values tolerated instead of a 400 (reported in Helicone-Warning), by header.",
		}, []string{"header"}),
		processorErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tollgate_extproc_protocol_errors_total", Help: "ext_proc messages the processor could not handle.",
		}),
		cacheHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tollgate_cache_hits_served_total", Help: "Calls answered from the cache.",
		}),
		attempts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tollgate_upstream_attempts_total", Help: "Upstream attempts of calls with retries or fallback (seen by the upstream-level filter).",
		}),
		fallbacks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tollgate_fallbacks_total", Help: "Attempt responses handed over to the next fallback entry.",
		}),
		linkMisses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tollgate_upstream_link_misses_total", Help: "Upstream-level streams whose request this processor does not know (another replica's, or already ended); they go out unchanged.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.calls, m.tokens, m.costUSD, m.rejected, m.endedEarly, m.unknownModel, m.heliconeWarnings, m.processorErrors, m.cacheHits,
			m.attempts, m.fallbacks, m.linkMisses)
	}
	return m
}

func (m *Metrics) observe(r *record.Record) {
	p := providerLabel(r.Provider)
	m.calls.WithLabelValues(p, statusClass(r.Status)).Inc()
	if r.PromptTokens > 0 {
		m.tokens.WithLabelValues(p, "prompt").Add(float64(r.PromptTokens))
	}
	if r.CompletionTokens > 0 {
		m.tokens.WithLabelValues(p, "completion").Add(float64(r.CompletionTokens))
	}
	if r.CostUSD > 0 {
		m.costUSD.WithLabelValues(p).Add(r.CostUSD)
	}
}

// providerLabel bounds the provider label. A record's provider is the host
// of the origin a call went to when Helicone-Target-URL,
// Helicone-OpenAI-Api-Base or a fallback entry named one, and under
// --allowed-target-origins '*' the client picks that host: labelled as
// such, every new host would be new series for as long as the process
// runs. The providers Tollgate knows keep their names; any host is
// "other" (the record keeps the host).
func providerLabel(p string) string {
	switch p {
	case provider.OpenAI, provider.Anthropic, provider.Azure, "":
		return p
	}
	if provider.Known(p) {
		return p // a built-in or configured provider: a bounded set
	}
	return "other"
}

func statusClass(status int32) string {
	if status < 100 {
		return strconv.Itoa(int(status))
	}
	return strconv.Itoa(int(status/100)) + "xx"
}
