package gate

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the cache and rate-limit series. Label children are
// resolved once here so the request path does no label lookups.
type Metrics struct {
	cacheHit, cacheMiss, cacheError          prometheus.Counter
	fillStored, fillReplaced, fillFull       prometheus.Counter
	fillTooLarge, fillError                  prometheus.Counter
	limitAllowed, limitLimited, limitIgnored prometheus.Counter
	limitFailOpen, limitFailClosed           prometheus.Counter
	errAdmit, errFill, errCharge, errCorrupt prometheus.Counter
	admitSeconds                             prometheus.Observer
}

// NewMetrics creates the series and registers them with reg (nil: not
// registered, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	lookups := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tollgate_cache_lookups_total",
		Help: "Cache reads on the request path, by result (error: the store failed and the call was treated as a miss).",
	}, []string{"result"})
	fills := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tollgate_cache_fills_total",
		Help: "Responses offered to the cache, by result (too_large: over the entry size limit, not stored; full: every slot already filled).",
	}, []string{"result"})
	limits := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tollgate_ratelimit_checks_total",
		Help: "Calls under a rate-limit policy, by result (fail_open / fail_closed: the store was unreachable; ignored: a Helicone-RateLimit-Policy not applied, as Helicone does not apply it, because it does not parse or the call lacks the user or property it segments by).",
	}, []string{"result"})
	errs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tollgate_store_errors_total",
		Help: "Failed cache / rate-limit store calls, by operation (corrupt_entry: an unreadable cache entry, served as a miss).",
	}, []string{"op"})
	admit := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "tollgate_store_admit_seconds",
		Help:    "Duration of the one store round trip on the request path (cache read and rate-limit take).",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1},
	})
	if reg != nil {
		reg.MustRegister(lookups, fills, limits, errs, admit)
	}
	return &Metrics{
		cacheHit:        lookups.WithLabelValues("hit"),
		cacheMiss:       lookups.WithLabelValues("miss"),
		cacheError:      lookups.WithLabelValues("error"),
		fillStored:      fills.WithLabelValues("stored"),
		fillReplaced:    fills.WithLabelValues("replaced"),
		fillFull:        fills.WithLabelValues("full"),
		fillTooLarge:    fills.WithLabelValues("too_large"),
		fillError:       fills.WithLabelValues("error"),
		limitAllowed:    limits.WithLabelValues("allowed"),
		limitLimited:    limits.WithLabelValues("limited"),
		limitIgnored:    limits.WithLabelValues("ignored"),
		limitFailOpen:   limits.WithLabelValues("fail_open"),
		limitFailClosed: limits.WithLabelValues("fail_closed"),
		errAdmit:        errs.WithLabelValues("admit"),
		errFill:         errs.WithLabelValues("fill"),
		errCharge:       errs.WithLabelValues("charge"),
		errCorrupt:      errs.WithLabelValues("corrupt_entry"),
		admitSeconds:    admit,
	}
}
