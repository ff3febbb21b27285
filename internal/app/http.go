package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tollgate-dev/tollgate/alerts"
	"github.com/tollgate-dev/tollgate/api"
	"github.com/tollgate-dev/tollgate/dashboard"
	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/provider"
	"github.com/tollgate-dev/tollgate/record"
	"github.com/tollgate-dev/tollgate/storage/chstore"
)

// apiHandler serves health and metrics, the feedback, log and query API
// (rest), and the dashboard at every other path. The dashboard's pages hold
// no data (it comes from the API, which needs the key), so with a key they
// are public; without one, like the API, they are for loopback clients only.
// In the sidecar role it serves health and metrics only, whoever asks: the
// application shares the sidecar's loopback, so "loopback only" would hand
// it every tenant's logged prompts and answers (DESIGN.md section 2, Roles).
func apiHandler(cfg *Config, reg *prometheus.Registry, ready *atomic.Bool, rest http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !ready.Load() {
			http.Error(w, "draining", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	if cfg.Role == RoleSidecar {
		mux.Handle("/", http.NotFoundHandler())
		return mux
	}
	for _, prefix := range []string{"/v1/", "/custom/", "/oai/", "/anthropic/"} {
		mux.Handle(prefix, rest)
	}
	ui := dashboard.Handler()
	if cfg.APIKey == "" {
		ui = api.LoopbackOnly(ui)
	}
	mux.Handle("/", ui)
	return mux
}

// newAPI builds the REST API. Out-of-band log records go to the same sink
// as proxied calls; feedback and queries need ClickHouse (without it they
// answer 503 saying so).
func newAPI(cfg *Config, sink record.Sink, auth *policies.Auth, prices *provider.PriceTable, prompts *policies.PromptLibrary,
	reg prometheus.Registerer, log *slog.Logger) (http.Handler, func(), error) {
	o := api.Options{Sink: sink, Auth: auth, Prices: prices, Prompts: prompts, APIKey: cfg.APIKey, Logger: log}
	closeAPI := func() {}
	if w, ok := sink.(*chstore.Writer); ok {
		o.Feedback = func(ctx context.Context, fb chstore.Feedback) error { return w.InsertFeedback(ctx, fb) }
		conn, db, err := chstore.Connect(cfg.ClickHouse)
		if err != nil {
			return nil, nil, fmt.Errorf("clickhouse: %w", err)
		}
		o.Query = api.NewQuerier(conn, db, prices)
		if !cfg.Alerts {
			closeAPI = func() { conn.Close() }
			return api.New(o), closeAPI, nil
		}
		var fileRules []alerts.Rule
		if cfg.AlertRules != "" {
			if fileRules, err = alerts.LoadFile(cfg.AlertRules); err != nil {
				conn.Close()
				return nil, nil, err
			}
		}
		mgr, err := alerts.New(alerts.Options{Conn: conn, Database: db, Metrics: o.Query, FileRules: fileRules,
			Interval: cfg.AlertInterval.Duration, DashboardURL: cfg.DashboardURL, AllowPrivateWebhooks: cfg.AlertPrivateWebhooks,
			Registerer: reg, Logger: log})
		if err != nil {
			conn.Close()
			return nil, nil, err
		}
		mgr.Start()
		o.Alerts = mgr
		closeAPI = func() { mgr.Close(); conn.Close() } // the manager uses conn until it stops
	} else if cfg.AlertRules != "" {
		return nil, nil, fmt.Errorf("alert-rules: alerts need ClickHouse (--clickhouse)")
	}
	return api.New(o), closeAPI, nil
}
