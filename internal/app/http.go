package app

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tollgate-dev/tollgate/alerts"
	"github.com/tollgate-dev/tollgate/api"
	"github.com/tollgate-dev/tollgate/dashboard"
	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/prompt"
	"github.com/tollgate-dev/tollgate/provider"
	"github.com/tollgate-dev/tollgate/record"
	"github.com/tollgate-dev/tollgate/storage/chquery"
	"github.com/tollgate-dev/tollgate/storage/chschema"
	"github.com/tollgate-dev/tollgate/storage/chstore"
	"github.com/tollgate-dev/tollgate/storage/erasure"
)

// apiHandler serves health and metrics, the feedback, log and query API
// (rest), and the dashboard at every other path. The dashboard's pages hold
// no data (it comes from the API, which needs the key), so with a key they
// are public; without one, like the API, they are for loopback clients only.
// In the sidecar role it serves health and metrics only, whoever asks: the
// application shares the sidecar's loopback, so "loopback only" would hand
// it every tenant's logged prompts and answers (DESIGN.md section 2, Roles).
// In both roles /metrics checks the Host (scrapeHostsOnly).
// schemaBehind (nil: no ClickHouse) says why log records are not written.
func apiHandler(cfg *Config, reg *prometheus.Registry, ready *atomic.Bool, schemaBehind func() error, rest http.Handler) http.Handler {
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
		// Still ready: calls work and their records wait in the spool. Not
		// ready would take every injected application out of service over
		// a log table; the metric tollgate_clickhouse_schema_behind is for
		// alerting, this line for the person who looks. It stays generic:
		// the port is open to every namespace, and the database's name and
		// versions are for the logs (the writer's error line says them).
		if schemaBehind != nil && schemaBehind() != nil {
			w.Write([]byte("log: not writing to ClickHouse (records wait in the spool): schema behind or of the other mode, see the logs; run `tollgate migrate`\n"))
		}
	})
	mux.Handle("GET /metrics", scrapeHostsOnly(dashboardHost(cfg.DashboardURL), promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})))
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

// scrapeHostsOnly refuses (403) a request whose Host is not an IP literal,
// localhost, or the host of --dashboard-url. A page the developer visits can
// reach the port through DNS rebinding, but its requests then carry the
// page's own name as Host: never an IP literal. Prometheus scrapes a pod by
// its IP (the Host is that IP), and kubelet probes too, so both keep working
// in either role. Health and readiness stay open to every Host: they tell a
// rebinding page nothing.
func scrapeHostsOnly(named string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
		_, ipErr := netip.ParseAddr(host)
		if ipErr != nil && !strings.EqualFold(host, "localhost") && (named == "" || !strings.EqualFold(host, named)) {
			msg := "metrics: the Host header must be an IP address or localhost"
			if named != "" {
				msg += " or " + named
			}
			http.Error(w, msg, http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// dashboardHost is the host name of --dashboard-url, "" when none is set.
func dashboardHost(dashboardURL string) string {
	if u, err := url.Parse(dashboardURL); err == nil && dashboardURL != "" {
		return u.Hostname()
	}
	return ""
}

// newAPI builds the REST API. Out-of-band log records go to the same sink
// as proxied calls; feedback, queries and alerts need ClickHouse (ch nil:
// they answer 503 saying so). mgr (nil: alerts off) is started and stopped
// by serve.
func newAPI(cfg *Config, sink record.Sink, ch *apiClickHouse, mgr *alerts.Manager, auth *policies.Auth,
	prices *provider.PriceTable, prompts *prompt.Library, log *slog.Logger) http.Handler {
	o := api.Options{Sink: sink, Auth: auth, Prices: prices, Prompts: prompts, APIKey: cfg.APIKey, MaxLoggedBody: cfg.MaxLoggedBody, Logger: log,
		PromptLinkSecret: cfg.PromptLinkSecret, PublicURL: cfg.DashboardURL}
	if ch != nil {
		o.Feedback, o.Query = ch.insertFeedback, ch.requests
		o.Erasures = erasure.NewStore(ch.conn, ch.db, nil)
	}
	if mgr != nil {
		o.Alerts = mgr
	}
	return api.New(o)
}

// apiClickHouse is ClickHouse as the API and the alerts use it: a
// connection pool of their own (the log writer's is for its inserts).
type apiClickHouse struct {
	conn     driver.Conn
	db       string
	requests *chquery.Requests
	alerts   *chquery.Alerts
}

// openAPIClickHouse connects when --clickhouse is set; nil otherwise. It
// does not dial: the first query does.
func openAPIClickHouse(cfg *Config, prices *provider.PriceTable) (*apiClickHouse, error) {
	if cfg.ClickHouse == "" {
		if cfg.AlertRules != "" {
			return nil, fmt.Errorf("alert-rules: alerts need ClickHouse (--clickhouse)")
		}
		return nil, nil
	}
	conn, db, err := chschema.Connect(cfg.ClickHouse)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: %w", err)
	}
	alertStore, err := chquery.NewAlerts(conn, db)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return &apiClickHouse{conn: conn, db: db, requests: chquery.NewRequests(conn, db, prices), alerts: alertStore}, nil
}

func (c *apiClickHouse) insertFeedback(ctx context.Context, fb chstore.Feedback) error {
	return chstore.InsertFeedback(ctx, c.conn, c.db, fb)
}

// Close closes the pool; nil does nothing.
func (c *apiClickHouse) Close() {
	if c != nil {
		c.conn.Close()
	}
}

// newAlerts builds the alert evaluator (nil when --alerts is off or there
// is no ClickHouse); the caller starts it and closes it before ch.
func newAlerts(cfg *Config, ch *apiClickHouse, reg prometheus.Registerer, log *slog.Logger) (*alerts.Manager, error) {
	if ch == nil || !cfg.Alerts {
		return nil, nil
	}
	var fileRules []alerts.Rule
	if cfg.AlertRules != "" {
		var err error
		if fileRules, err = alerts.LoadFile(cfg.AlertRules); err != nil {
			return nil, err
		}
	}
	return alerts.New(alerts.Options{Store: ch.alerts, Metrics: ch.requests, FileRules: fileRules,
		Interval: cfg.AlertInterval.Duration, DashboardURL: cfg.DashboardURL, AllowPrivateWebhooks: cfg.AlertPrivateWebhooks,
		Registerer: reg, Logger: log})
}
