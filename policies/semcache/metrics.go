package semcache

import (
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Metrics are the semantic cache's Prometheus series.
type Metrics struct {
	embed        *prometheus.CounterVec // result: ok, error, timeout
	lookups      *prometheus.CounterVec // result: hit, miss
	added        prometheus.Counter
	storeErrors  prometheus.Counter
	followErrors prometheus.Counter
	gone         prometheus.Counter
	entries      prometheus.Gauge
}

// NewMetrics registers the series with reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		embed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollgate_semantic_cache_embeddings_total",
			Help: "Embeddings calls of the semantic cache by result (ok, error, timeout); on error and timeout the call went on uncached."},
			[]string{"result"}),
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollgate_semantic_cache_lookups_total",
			Help: "Semantic cache lookups by result (hit, miss)."}, []string{"result"}),
		added: prometheus.NewCounter(prometheus.CounterOpts{Name: "tollgate_semantic_cache_added_total",
			Help: "Answers stored in the semantic cache by this replica."}),
		storeErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "tollgate_semantic_cache_store_errors_total",
			Help: "Failed semantic cache store reads and writes."}),
		followErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "tollgate_semantic_cache_follow_errors_total",
			Help: "Failed reads of the store's log of semantic additions."}),
		gone: prometheus.NewCounter(prometheus.CounterOpts{Name: "tollgate_semantic_cache_gone_total",
			Help: "Semantic hits whose answer was gone from the store (expired, evicted); the entry left the index and the next best was tried."}),
		entries: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tollgate_semantic_cache_entries",
			Help: "Entries in this replica's semantic index, over all scopes."}),
	}
	for _, r := range []string{"ok", "error", "timeout"} {
		m.embed.WithLabelValues(r)
	}
	m.lookups.WithLabelValues("hit")
	m.lookups.WithLabelValues("miss")
	if reg != nil {
		reg.MustRegister(m.embed, m.lookups, m.added, m.storeErrors, m.followErrors, m.gone, m.entries)
	}
	return m
}

// EmbedCount is the number of embeddings calls with result (tests).
func (m *Metrics) EmbedCount(result string) float64 {
	return counterValue(m.embed.WithLabelValues(result))
}

func counterValue(c prometheus.Counter) float64 {
	var d dto.Metric
	_ = c.Write(&d)
	return d.GetCounter().GetValue()
}
