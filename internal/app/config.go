package app

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/tollgate-dev/tollgate/dataplane"
	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/provider"
)

// Config is every setting of `tollgate serve` / `dev`. Each flag is also an
// environment variable TOLLGATE_<FLAG> and a key of the YAML file given by
// --config. Precedence: flag, then environment, then file, then default.
type Config struct {
	Listen            string   `json:"listen"`             // local data plane (dev only)
	GRPCListen        string   `json:"grpc-listen"`        // ext_proc server; host:port or unix:///path
	HTTPListen        string   `json:"http-listen"`        // health, metrics, API
	Redis             string   `json:"redis"`              // redis://…; empty = in-process store
	ClickHouse        string   `json:"clickhouse"`         // clickhouse://host:9000/db; empty = JSON-lines file
	UpstreamOpenAI    string   `json:"upstream-openai"`    // origin (+ optional path prefix) for OpenAI paths
	UpstreamAnthropic string   `json:"upstream-anthropic"` // origin (+ optional path prefix) for Anthropic paths
	SpoolDir          string   `json:"spool-dir"`          // disk spool for records ClickHouse could not take
	DataDir           string   `json:"data-dir"`           // embedded defaults keep their files here
	Migrate           bool     `json:"migrate"`            // run the ClickHouse migration at start
	LogLevel          string   `json:"log-level"`          // debug, info, warn, error
	AllowedTargets    []string `json:"allowed-target-origins"`
	MaxRequestBody    int      `json:"max-request-body"` // bytes; larger requests get 413
	MaxLoggedBody     int      `json:"max-logged-body"`  // bytes of each body kept in the log
	StreamUsage       bool     `json:"stream-usage"`     // add stream_options.include_usage to OpenAI streams
	PricesFile        string   `json:"prices-file"`      // YAML price overrides, same shape as the embedded table
	AuthRequired      bool     `json:"auth-required"`    // with keys configured, a missing Helicone-Auth is a 401
	DrainDelay        Duration `json:"drain-delay"`      // NOT_SERVING before stopping, so Envoy moves away first
	ShutdownTimeout   Duration `json:"shutdown-timeout"` // for in-flight calls and flushing logs
	RouteTimeout      Duration `json:"route-timeout"`    // data plane: whole upstream call
	IdleTimeout       Duration `json:"idle-timeout"`     // data plane: silence from the upstream
	MessageTimeout    Duration `json:"message-timeout"`  // data plane: wait for each processor reply
	FailureModeAllow  bool     `json:"failure-mode-allow"`
	// The dev data plane's retry back-off, as the route's retry_back_off in
	// envoy/ (Helicone's defaults: 1 s base, 10 s cap).
	RetryBaseInterval Duration `json:"retry-base-interval"`
	RetryMaxInterval  Duration `json:"retry-max-interval"`
	// PromptsDir is a read-only folder of prompt YAML files (a ConfigMap),
	// reloaded on change; empty: prompts come from the store only.
	PromptsDir string `json:"prompts-dir"`
	// EgressPolicy is the mesh-wide policy file, reloaded on change; empty:
	// everything allowed.
	EgressPolicy string `json:"egress-policy"`
	// The calling workload's identity in sidecar mode (the injector sets
	// these from the pod); the labels file is a downward API volume.
	WorkloadNamespace      string `json:"workload-namespace"`
	WorkloadServiceAccount string `json:"workload-service-account"`
	WorkloadName           string `json:"workload-name"`
	WorkloadLabelsFile     string `json:"workload-labels-file"`
	// TrustWorkloadHeaders: in gateway mode, read the workload identity from
	// the x-tollgate-workload-* request headers a trusted mesh sets.
	TrustWorkloadHeaders bool `json:"trust-workload-headers"`
	// Alerts (need ClickHouse): a YAML rules file (read-only rules; more
	// through the API), how often rules are evaluated, and the dashboard's
	// address sent in each notification.
	Alerts        bool     `json:"alerts"`
	AlertRules    string   `json:"alert-rules"`
	AlertInterval Duration `json:"alert-interval"`
	DashboardURL  string   `json:"dashboard-url"`
	// AlertPrivateWebhooks lets alert webhooks reach private, loopback and
	// link-local addresses (refused by default: the API could probe them).
	AlertPrivateWebhooks bool `json:"alert-private-webhooks"`
	// RateLimitFailClosed refuses calls under a rate-limit policy (503) when
	// Redis is unreachable; the default lets them through, counted.
	RateLimitFailClosed bool `json:"ratelimit-fail-closed"`
	// APIKey protects the HTTP API (feedback, logging, queries); empty:
	// loopback clients only.
	APIKey string `json:"api-key"`
	// Role is "gateway" (the HTTP port serves the API and the dashboard
	// too) or "sidecar" (health and metrics only: the application shares
	// the sidecar's loopback and must not reach every tenant's logs).
	Role string `json:"role"`

	// ClickHouse writer: rows per insert, longest wait before an insert,
	// rows held in memory before batches go to the spool, and the spool's
	// cap (beyond it records are dropped, counted and logged).
	LogBatchSize     int      `json:"log-batch-size"`
	LogFlushInterval Duration `json:"log-flush-interval"`
	LogQueueSize     int      `json:"log-queue-size"`
	SpoolMaxBytes    int64    `json:"spool-max-bytes"`

	// File-only settings.
	AuthKeys []policies.APIKey                    `json:"auth-keys"` // hashed Helicone-Auth keys and their tenants
	Prices   map[string]map[string]provider.Price `json:"prices"`    // provider -> model -> price overrides
}

// Roles of `tollgate serve` (--role).
const (
	RoleGateway = "gateway"
	RoleSidecar = "sidecar"
)

// Duration reads "1.5s"-style strings from YAML and flags.
type Duration struct{ time.Duration }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration string such as \"5s\": %w", err)
	}
	return d.Set(s)
}

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }
func (d *Duration) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}
func (d *Duration) String() string { return d.Duration.String() }

// stringList is a comma-separated flag.
type stringList struct{ list *[]string }

func (l stringList) String() string {
	if l.list == nil {
		return ""
	}
	return strings.Join(*l.list, ",")
}
func (l stringList) Set(s string) error {
	*l.list = nil
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			*l.list = append(*l.list, part)
		}
	}
	return nil
}

func defaultConfig(dev bool) Config {
	c := Config{
		Listen:            ":10000",
		GRPCListen:        ":50051",
		HTTPListen:        ":8080",
		UpstreamOpenAI:    "https://api.openai.com",
		UpstreamAnthropic: "https://api.anthropic.com",
		DataDir:           "data",
		Migrate:           true,
		LogLevel:          "info",
		MaxRequestBody:    8 << 20,
		MaxLoggedBody:     1 << 20,
		StreamUsage:       true,
		DrainDelay:        Duration{5 * time.Second},
		ShutdownTimeout:   Duration{30 * time.Second},
		RouteTimeout:      Duration{dataplane.DefaultRouteTimeout},
		IdleTimeout:       Duration{dataplane.DefaultStreamIdleTimeout},
		MessageTimeout:    Duration{2 * time.Second},
		RetryBaseInterval: Duration{time.Second},
		RetryMaxInterval:  Duration{10 * time.Second},
		AlertInterval:     Duration{30 * time.Second},
		Alerts:            true,
		LogBatchSize:      5000,
		LogFlushInterval:  Duration{time.Second},
		LogQueueSize:      100000,
		SpoolMaxBytes:     1 << 30,
		Role:              RoleGateway,
	}
	if dev {
		c.DrainDelay = Duration{0} // nothing in front of `dev` to drain
	}
	return c
}

// loadConfig builds the configuration for a subcommand from its arguments,
// the environment (getenv) and the optional YAML file.
func loadConfig(name string, args []string, getenv func(string) string, dev bool) (*Config, *flag.FlagSet, error) {
	cfg := defaultConfig(dev)
	path := configPath(args, getenv)
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, nil, fmt.Errorf("--config: %w", err)
		}
		if err := yaml.UnmarshalStrict(data, &cfg); err != nil {
			return nil, nil, fmt.Errorf("config file %s: %w", path, err)
		}
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.String("config", path, "YAML configuration file (keys are the flag names)")
	fs.StringVar(&cfg.Listen, "listen", cfg.Listen, "local data plane listen address (dev)")
	fs.StringVar(&cfg.GRPCListen, "grpc-listen", cfg.GRPCListen, "ext_proc gRPC listen address, host:port or unix:///path")
	fs.StringVar(&cfg.HTTPListen, "http-listen", cfg.HTTPListen, "HTTP listen address for /healthz, /readyz, /metrics and the API")
	fs.StringVar(&cfg.Redis, "redis", cfg.Redis, "Redis URL (redis://host:6379/0); empty uses an in-process store")
	fs.StringVar(&cfg.ClickHouse, "clickhouse", cfg.ClickHouse, "ClickHouse URL (clickhouse://host:9000/tollgate); empty logs to a JSON-lines file")
	fs.StringVar(&cfg.UpstreamOpenAI, "upstream-openai", cfg.UpstreamOpenAI, "origin for OpenAI paths (dev data plane)")
	fs.StringVar(&cfg.UpstreamAnthropic, "upstream-anthropic", cfg.UpstreamAnthropic, "origin for Anthropic paths (dev data plane)")
	fs.StringVar(&cfg.SpoolDir, "spool-dir", cfg.SpoolDir, "disk spool for log records (default <data-dir>/spool)")
	fs.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "folder for the embedded defaults' files")
	fs.BoolVar(&cfg.Migrate, "migrate", cfg.Migrate, "run the ClickHouse migration at start")
	fs.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "debug, info, warn or error")
	fs.Var(stringList{&cfg.AllowedTargets}, "allowed-target-origins", "comma list of origins Helicone-Target-URL may name (* for any public https:// origin; list http:// and internal ones exactly)")
	fs.IntVar(&cfg.MaxRequestBody, "max-request-body", cfg.MaxRequestBody, "largest request body in bytes (larger: 413)")
	fs.IntVar(&cfg.MaxLoggedBody, "max-logged-body", cfg.MaxLoggedBody, "bytes of each body kept in the log")
	fs.BoolVar(&cfg.StreamUsage, "stream-usage", cfg.StreamUsage, "add stream_options.include_usage to OpenAI streams")
	fs.StringVar(&cfg.PricesFile, "prices-file", cfg.PricesFile, "YAML file of price overrides (provider: model: {input, output, …})")
	fs.BoolVar(&cfg.AuthRequired, "auth-required", cfg.AuthRequired, "with auth-keys configured, reject requests without Helicone-Auth")
	fs.Var(&cfg.DrainDelay, "drain-delay", "time NOT_SERVING before stopping")
	fs.Var(&cfg.ShutdownTimeout, "shutdown-timeout", "time for in-flight calls and log flushing at shutdown")
	fs.Var(&cfg.RouteTimeout, "route-timeout", "dev data plane: limit for a whole upstream call")
	fs.Var(&cfg.IdleTimeout, "idle-timeout", "dev data plane: limit for silence from the upstream")
	fs.Var(&cfg.MessageTimeout, "message-timeout", "dev data plane: wait for each processor reply")
	fs.BoolVar(&cfg.RateLimitFailClosed, "ratelimit-fail-closed", cfg.RateLimitFailClosed, "reject calls under a rate-limit policy with 503 when Redis is unreachable")
	fs.StringVar(&cfg.Role, "role", cfg.Role, "gateway: the HTTP port also serves the API and dashboard; sidecar: /healthz, /readyz and /metrics only")
	fs.StringVar(&cfg.APIKey, "api-key", cfg.APIKey, "bearer key for the HTTP API (prefer TOLLGATE_API_KEY); empty: loopback clients only")
	fs.IntVar(&cfg.LogBatchSize, "log-batch-size", cfg.LogBatchSize, "ClickHouse: rows per insert")
	fs.Var(&cfg.LogFlushInterval, "log-flush-interval", "ClickHouse: longest wait before a partial batch is inserted")
	fs.IntVar(&cfg.LogQueueSize, "log-queue-size", cfg.LogQueueSize, "ClickHouse: rows held in memory before batches go to the spool")
	fs.Int64Var(&cfg.SpoolMaxBytes, "spool-max-bytes", cfg.SpoolMaxBytes, "ClickHouse: spool cap in bytes; beyond it records are dropped and counted")
	fs.BoolVar(&cfg.FailureModeAllow, "failure-mode-allow", cfg.FailureModeAllow, "dev data plane: continue without the processor when it fails")
	fs.Var(&cfg.RetryBaseInterval, "retry-base-interval", "dev data plane: retry back-off base (Envoy: the route's retry_back_off)")
	fs.Var(&cfg.RetryMaxInterval, "retry-max-interval", "dev data plane: retry back-off cap")
	fs.StringVar(&cfg.PromptsDir, "prompts-dir", cfg.PromptsDir, "read-only folder of prompt YAML files, reloaded on change")
	fs.StringVar(&cfg.EgressPolicy, "egress-policy", cfg.EgressPolicy, "egress policy YAML file, reloaded on change")
	fs.StringVar(&cfg.WorkloadNamespace, "workload-namespace", cfg.WorkloadNamespace, "sidecar mode: the calling pod's namespace")
	fs.StringVar(&cfg.WorkloadServiceAccount, "workload-service-account", cfg.WorkloadServiceAccount, "sidecar mode: the calling pod's service account")
	fs.StringVar(&cfg.WorkloadName, "workload-name", cfg.WorkloadName, "sidecar mode: the calling workload's name")
	fs.StringVar(&cfg.WorkloadLabelsFile, "workload-labels-file", cfg.WorkloadLabelsFile, "sidecar mode: the pod's labels (downward API file)")
	fs.BoolVar(&cfg.Alerts, "alerts", cfg.Alerts, "evaluate alert rules in this process (turn off on all but a few replicas)")
	fs.StringVar(&cfg.AlertRules, "alert-rules", cfg.AlertRules, "YAML file of alert rules (needs ClickHouse)")
	fs.Var(&cfg.AlertInterval, "alert-interval", "how often alert rules are evaluated")
	fs.BoolVar(&cfg.AlertPrivateWebhooks, "alert-private-webhooks", cfg.AlertPrivateWebhooks, "let alert webhooks reach private and loopback addresses")
	fs.StringVar(&cfg.DashboardURL, "dashboard-url", cfg.DashboardURL, "the dashboard's address, sent in alert notifications")
	fs.BoolVar(&cfg.TrustWorkloadHeaders, "trust-workload-headers", cfg.TrustWorkloadHeaders, "gateway mode: take the workload identity from x-tollgate-workload-* headers set by the mesh")

	var envErrs []error
	fs.VisitAll(func(f *flag.Flag) {
		if v := getenv(envName(f.Name)); v != "" && f.Name != "config" {
			if err := fs.Set(f.Name, v); err != nil {
				envErrs = append(envErrs, fmt.Errorf("%s: %w", envName(f.Name), err))
			}
		}
	})
	if err := errors.Join(envErrs...); err != nil {
		return nil, nil, err
	}
	if err := fs.Parse(args); err != nil {
		return nil, nil, err
	}
	if fs.NArg() > 0 {
		return nil, nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return &cfg, fs, cfg.validate()
}

// configPath finds --config before the other flags are defined, because the
// file supplies their defaults.
func configPath(args []string, getenv func(string) string) string {
	for i, a := range args {
		a = strings.TrimLeft(a, "-")
		if v, ok := strings.CutPrefix(a, "config="); ok {
			return v
		}
		if a == "config" && i+1 < len(args) {
			return args[i+1]
		}
	}
	return getenv("TOLLGATE_CONFIG")
}

func envName(flagName string) string {
	return "TOLLGATE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// validate reports every problem at once, each naming its setting.
func (c *Config) validate() error {
	var errs []error
	for name, origin := range map[string]string{"upstream-openai": c.UpstreamOpenAI, "upstream-anthropic": c.UpstreamAnthropic} {
		u, err := url.Parse(origin)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("%s: want an http(s) origin such as https://api.openai.com, got %q", name, origin))
		}
	}
	errs = append(errs, targetOriginErrors(c.AllowedTargets)...)
	if c.Redis != "" {
		if u, err := url.Parse(c.Redis); err != nil || !strings.HasPrefix(u.Scheme, "redis") {
			errs = append(errs, fmt.Errorf("redis: want a redis:// URL, got %q", c.Redis))
		}
	}
	if c.ClickHouse != "" {
		if u, err := url.Parse(c.ClickHouse); err != nil || u.Scheme != "clickhouse" || u.Host == "" {
			errs = append(errs, fmt.Errorf("clickhouse: want clickhouse://host:port/database, got %q", c.ClickHouse))
		}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log-level: want debug, info, warn or error, got %q", c.LogLevel))
	}
	if c.Role != RoleGateway && c.Role != RoleSidecar {
		errs = append(errs, fmt.Errorf("role: want %s or %s, got %q", RoleGateway, RoleSidecar, c.Role))
	}
	if c.MaxRequestBody <= 0 {
		errs = append(errs, fmt.Errorf("max-request-body: must be positive"))
	}
	if c.MaxLoggedBody < 0 {
		errs = append(errs, fmt.Errorf("max-logged-body: must not be negative"))
	}
	for _, d := range []struct {
		name string
		v    Duration
	}{{"route-timeout", c.RouteTimeout}, {"idle-timeout", c.IdleTimeout}, {"message-timeout", c.MessageTimeout}, {"shutdown-timeout", c.ShutdownTimeout},
		{"retry-base-interval", c.RetryBaseInterval}, {"retry-max-interval", c.RetryMaxInterval}, {"alert-interval", c.AlertInterval}} {
		if d.v.Duration <= 0 {
			errs = append(errs, fmt.Errorf("%s: must be positive", d.name))
		}
	}
	if c.LogBatchSize <= 0 || c.LogQueueSize <= 0 || c.SpoolMaxBytes <= 0 || c.LogFlushInterval.Duration <= 0 {
		errs = append(errs, fmt.Errorf("log-batch-size, log-queue-size, spool-max-bytes, log-flush-interval: must be positive"))
	}
	if c.RetryMaxInterval.Duration < c.RetryBaseInterval.Duration {
		errs = append(errs, fmt.Errorf("retry-max-interval: must not be below retry-base-interval"))
	}
	if c.DrainDelay.Duration < 0 {
		errs = append(errs, fmt.Errorf("drain-delay: must not be negative"))
	}
	if _, err := policies.NewAuth(c.AuthKeys, c.AuthRequired); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
