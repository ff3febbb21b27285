package app

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/provider"
	"github.com/tollgate-dev/tollgate/storage/chschema"
	"github.com/tollgate-dev/tollgate/webhook"
)

// Config is every setting of `tollgate serve`, `dev` and `migrate`. Each
// field is declared once, in Config.settings (config_settings.go), which
// gives its flag, its environment variable TOLLGATE_<FLAG>, its key in the
// YAML file given by --config, its default and its rules.
// Precedence: flag, then environment, then file, then default.
type Config struct {
	Listen            string // local data plane (dev only)
	GRPCListen        string // ext_proc server; host:port or unix:///path
	HTTPListen        string // health, metrics, API
	Redis             string // redis://…; empty = in-process store
	ClickHouse        string // clickhouse://host:9000/db; empty = JSON-lines file
	ClickHouseCluster string // ClickHouse cluster name (remote_servers); "" = one server
	UpstreamOpenAI    string // origin (+ optional path prefix) for OpenAI paths
	UpstreamAnthropic string // origin (+ optional path prefix) for Anthropic paths
	SpoolDir          string // disk spool for records ClickHouse could not take
	DataDir           string // embedded defaults keep their files here
	Migrate           bool   // run the ClickHouse migration at start
	LogLevel          string // debug, info, warn, error
	AllowedTargets    []string
	AzureDeployments  []string // deployment=model: the model each Azure OpenAI deployment serves
	ProviderKeys      []string // provider=env:VAR|file:/path: the gateway's key for translated fallbacks
	MaxRequestBody    int      // bytes; larger requests get 413
	MaxLoggedBody     int      // bytes of each body kept in the log
	StreamUsage       bool     // add stream_options.include_usage to OpenAI streams
	PricesFile        string   // YAML price overrides, same shape as the embedded table
	AuthRequired      bool     // with keys configured, a missing Helicone-Auth is a 401
	DrainDelay        Duration // NOT_SERVING before stopping, so Envoy moves away first
	ShutdownTimeout   Duration // for in-flight calls and flushing logs
	RouteTimeout      Duration // data plane: whole upstream call
	IdleTimeout       Duration // data plane: silence from the upstream
	MessageTimeout    Duration // data plane: wait for each processor reply
	FailureModeAllow  bool
	// The dev data plane's limits on the client, as the connection
	// manager in envoy/ has them (request_timeout, max_request_headers_kb,
	// common_http_protocol_options.max_headers_count).
	RequestTimeout      Duration
	MaxRequestHeadersKB int
	MaxHeadersCount     int
	// The dev data plane's retry back-off, as the route's retry_back_off in
	// envoy/ (Helicone's defaults: 1 s base, 10 s cap).
	RetryBaseInterval Duration
	RetryMaxInterval  Duration
	// PromptsDir is a read-only folder of prompt YAML files (a ConfigMap),
	// reloaded on change; empty: prompts come from the store only.
	PromptsDir string
	// Seen prompt versions, Helicone's automatic versioning of tagged
	// calls (prompt.LibraryOptions): per tenant at most PromptSeenMaxIDs
	// ids (0: seen versioning off), of PromptSeenMaxVersions versions
	// each, kept PromptSeenTTL after their last use.
	PromptSeenMaxIDs      int
	PromptSeenMaxVersions int
	PromptSeenTTL         Duration
	// EgressPolicy is the mesh-wide policy file, reloaded on change; empty:
	// everything allowed.
	EgressPolicy string
	// KeyVault is the key vault file (a Secret): proxy keys and the
	// provider keys they stand for, reloaded on change.
	KeyVault string
	// The pre-call checks Helicone-Moderations-Enabled and
	// Helicone-LLM-Security-Enabled ask for (screen.go): OpenAI's API base
	// for moderation (empty: UpstreamOpenAI), the classifier's URL (empty:
	// none), each one's timeout, the classifier's score threshold, and the
	// checks that may run at once.
	ModerationURL        string
	ModerationTimeout    Duration
	LLMSecurityURL       string
	LLMSecurityTimeout   Duration
	LLMSecurityThreshold float64
	ScreenMaxInFlight    int
	// The calling workload's identity in sidecar mode (the injector sets
	// these from the pod); the labels file is a downward API volume.
	WorkloadNamespace      string
	WorkloadServiceAccount string
	WorkloadName           string
	WorkloadLabelsFile     string
	// TrustWorkloadHeaders: in gateway mode, read the workload identity from
	// the x-tollgate-workload-* request headers a trusted mesh sets.
	TrustWorkloadHeaders bool
	// Alerts (need ClickHouse): a YAML rules file (read-only rules; more
	// through the API), how often rules are evaluated, and the dashboard's
	// address sent in each notification.
	Alerts        bool
	AlertRules    string
	AlertInterval Duration
	DashboardURL  string
	// AlertPrivateWebhooks lets alert webhooks reach private, loopback and
	// link-local addresses (refused by default: the API could probe them).
	AlertPrivateWebhooks bool
	// RateLimitFailClosed refuses calls under a rate-limit policy (503) when
	// Redis is unreachable; the default lets them through, counted.
	RateLimitFailClosed bool
	// RedisTimeout bounds each store round trip a call waits for (the
	// cache lookup and rate-limit check, a semantic hit's read);
	// RedisWriteTimeout each one made after the reply (cache fill,
	// rate-limit charge, semantic addition).
	RedisTimeout      Duration
	RedisWriteTimeout Duration
	// APIKey protects the HTTP API (feedback, logging, queries); empty:
	// loopback clients only.
	APIKey string
	// PromptLinkSecret signs prompt body links when APIKey is empty; it
	// must be the same on every replica (api.Options.PromptLinkSecret).
	PromptLinkSecret string
	// Role is "gateway" (the HTTP port serves the API and the dashboard
	// too) or "sidecar" (health and metrics only: the application shares
	// the sidecar's loopback and must not reach every tenant's logs).
	Role string
	// UpstreamGemini is the origin of Gemini's paths (/v1beta/…) in the
	// dev data plane.
	UpstreamGemini string
	// OpenAICompatible: name=origin[/prefix] OpenAI-compatible providers
	// routed at /name/… (with provider.Builtins: the one provider list).
	OpenAICompatible []string

	// ClickHouse writer: rows per insert, longest wait before an insert,
	// rows held in memory before batches go to the spool, and the spool's
	// cap (beyond it records are dropped, counted and logged).
	LogBatchSize     int
	LogFlushInterval Duration
	LogQueueSize     int
	SpoolMaxBytes    int64
	// LogFsyncInterval: the fsync cadence of the local record log (the
	// ClickHouse writer's write-ahead log, or the JSON-lines file); 0
	// fsyncs each group write before the calls in it are answered.
	LogFsyncInterval Duration
	// Retention (docs/privacy.md): how long rows of requests, feedback and
	// scores are kept, and their bodies (0: forever, as long as the rows).
	Retention     Duration
	BodyRetention Duration

	// Webhooks (docs/webhooks.md): each destination's queue and concurrent
	// deliveries, the limit of one attempt, the attempts of a delivery, and
	// the largest body a payload carries.
	WebhookQueueSize   int
	WebhookWorkers     int
	WebhookTimeout     Duration
	WebhookMaxAttempts int
	WebhookMaxBody     int

	// OpenTelemetry (docs/opentelemetry.md): the OTLP/HTTP receiver of a
	// span per call (empty: off), the share of calls without a sampled
	// parent that get one, and the calls waiting to become spans.
	OTelEndpoint    string
	OTelSampleRatio float64
	OTelQueueSize   int

	// Semantic cache (docs/semantic-cache.md): the OpenAI-compatible
	// embeddings endpoint (empty: off), its model and key, the limit of one
	// embeddings call, the default similarity, and the bounds of the index
	// per scope and of the log of additions in Redis.
	SemanticCacheURL        string
	SemanticCacheModel      string
	SemanticCacheAPIKey     string
	SemanticCacheTimeout    Duration
	SemanticCacheThreshold  float64
	SemanticCacheMaxEntries int
	SemanticCacheMaxLog     int
	SemanticCacheDimensions int
	SemanticCacheMaxTTL     Duration

	// File-only settings.
	AuthKeys []policies.APIKey                    // hashed Helicone-Auth keys and their tenants
	Prices   map[string]map[string]provider.Price // provider -> model -> price overrides
	Webhooks []webhook.Destination                // where finished calls are posted
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
	v, err := parseDuration(s) // housekeeping.go: days too ("90d")
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

// loadConfig builds the configuration for a subcommand from its arguments,
// the environment (getenv) and the optional YAML file.
func loadConfig(name string, args []string, getenv func(string) string, dev bool) (*Config, *flag.FlagSet, error) {
	cfg := new(Config)
	settings := cfg.settings(dev)
	resetSettings(settings)
	from := settingSources{}
	path := configPath(args, getenv)
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, nil, fmt.Errorf("--config: %w", err)
		}
		if err := readSettingsFile(settings, data, path, from); err != nil {
			return nil, nil, fmt.Errorf("config file %s: %w", path, err)
		}
	}
	// The file's values are the flags' defaults, so -h shows them.
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.String("config", path, "YAML configuration file (keys are the flag names)")
	defineFlags(fs, settings)
	if err := settingsFromEnv(fs, settings, getenv, from); err != nil {
		return nil, nil, err
	}
	if err := parseFlags(fs, args, from); err != nil {
		return nil, nil, err
	}
	if err := checkSettings(settings, from); err != nil {
		return cfg, fs, err
	}
	// The cluster travels in the URL (?cluster=NAME), so every user of
	// --clickhouse (migrate, the log writer, the API) works on it.
	u, err := chschema.WithCluster(cfg.ClickHouse, cfg.ClickHouseCluster)
	if err != nil {
		return cfg, fs, fmt.Errorf("--clickhouse-cluster: %w", err)
	}
	cfg.ClickHouse = u
	return cfg, fs, nil
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
