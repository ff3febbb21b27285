package app

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/tollgate-dev/tollgate/dataplane"
	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/screen"
	"github.com/tollgate-dev/tollgate/provider"
	"github.com/tollgate-dev/tollgate/storage/chschema"
	"github.com/tollgate-dev/tollgate/webhook"
)

// settings declares every setting of serve, dev and migrate, bound to the
// fields of c: each one's flag, environment variable, YAML key, default,
// help and rules. dev gives the defaults of `tollgate dev`. Errors come out
// in this order; docs/configuration.md lists the settings in it.
func (c *Config) settings(dev bool) []setting {
	drainDelay := 5 * time.Second
	if dev {
		drainDelay = 0 // nothing in front of `dev` to drain
	}
	return []setting{
		str(&c.Listen, "listen", ":10000", "local data plane listen address (dev)"),
		str(&c.GRPCListen, "grpc-listen", ":50051", "ext_proc gRPC listen address, host:port or unix:///path"),
		str(&c.HTTPListen, "http-listen", ":8080", "HTTP listen address for /healthz, /readyz, /metrics and the API; /metrics answers only a Host that is an IP address (a scrape by pod IP), localhost or the host of dashboard-url"),
		str(&c.Redis, "redis", "", "Redis URL (redis://host:6379/0); empty uses an in-process store", redisURL),
		str(&c.ClickHouse, "clickhouse", "", "ClickHouse URL (clickhouse://host:9000/tollgate); empty logs to a JSON-lines file", clickHouseURL),
		str(&c.ClickHouseCluster, "clickhouse-cluster", "", "ClickHouse cluster (a name in the servers' remote_servers): the schema is created ON CLUSTER as replicated tables behind Distributed ones and every read and write goes through them (docs/clickhouse.md); empty: one server",
			func(v string) error {
				if v != "" && !chschema.ValidDatabase(v) {
					return errors.New("use letters, digits and underscores")
				}
				return nil
			}),
		str(&c.UpstreamOpenAI, "upstream-openai", provider.OpenAIOrigin, "origin for OpenAI paths (dev data plane)", httpOrigin),
		str(&c.UpstreamAnthropic, "upstream-anthropic", provider.AnthropicOrigin, "origin for Anthropic paths (dev data plane)", httpOrigin),
		str(&c.UpstreamGemini, "upstream-gemini", "https://generativelanguage.googleapis.com", "origin for Gemini paths, /v1beta/… (dev data plane)", httpOrigin),
		list(&c.OpenAICompatible, "openai-compatible", "comma list of name=origin[/prefix]: OpenAI-compatible providers clients reach at /<name><prefix>/… (mistral=https://api.mistral.ai/v1: /mistral/v1/chat/completions), priced by a section under the name in prices-file; together and groq are built in, an entry of their name points them elsewhere",
			func(v []string) error { _, err := compatibleProviders(v); return err }),
		str(&c.SpoolDir, "spool-dir", "", "disk spool for log records (default <data-dir>/spool)"),
		str(&c.DataDir, "data-dir", "data", "folder for the embedded defaults' files"),
		boolean(&c.Migrate, "migrate", dev, "create or upgrade the ClickHouse schema at start, which needs DDL rights; without it the processor writes no log records until tollgate migrate has run (they wait in the spool; docs/clickhouse.md)"),
		str(&c.LogLevel, "log-level", "info", "debug, info, warn or error", logLevel),
		list(&c.AllowedTargets, "allowed-target-origins", "comma list of origins Helicone-Target-URL and Helicone-OpenAI-Api-Base may name (* for any public https:// origin; list http:// and internal ones exactly)",
			func(v []string) error { return errors.Join(targetOriginErrors(v)...) }),
		list(&c.AzureDeployments, "azure-deployments", "comma list of deployment=model: the model each Azure OpenAI deployment serves, to price calls whose response names no priced model",
			func(v []string) error { _, err := azureDeployments(v); return err }),
		list(&c.ProviderKeys, "provider-key", "comma list of provider=env:VAR or provider=file:/path (openai, anthropic): the gateway's own key for that provider, sent with a Helicone-Fallbacks entry translated to it (an OpenAI call falling back to Anthropic, or the reverse); without one such entries are refused. An operator opt-in: every caller who can reach the gateway may then fall back to that provider on the gateway's key (limit it with --auth-required and the egress policy's provider allow lists)",
			func(v []string) error { _, err := providerKeys(v, false); return err }),
		integer(&c.MaxRequestBody, "max-request-body", 8<<20, "largest request body in bytes (larger: 413)", positive),
		integer(&c.MaxLoggedBody, "max-logged-body", 1<<20, "bytes of each body kept in the log", notNegative),
		boolean(&c.StreamUsage, "stream-usage", true, "add stream_options.include_usage to OpenAI streams"),
		str(&c.PricesFile, "prices-file", "", "YAML file of price overrides (provider: model: {input, output, …})"),
		boolean(&c.AuthRequired, "auth-required", false, "with auth-keys configured, reject requests without Helicone-Auth"),
		duration(&c.DrainDelay, "drain-delay", drainDelay, "time NOT_SERVING before stopping", notNegative),
		duration(&c.ShutdownTimeout, "shutdown-timeout", 30*time.Second, "time for in-flight calls and log flushing at shutdown", positive),
		duration(&c.RouteTimeout, "route-timeout", dataplane.DefaultRouteTimeout, "dev data plane: limit for a whole upstream call", positive),
		duration(&c.IdleTimeout, "idle-timeout", dataplane.DefaultStreamIdleTimeout, "dev data plane: limit for silence from the upstream", positive),
		duration(&c.RequestTimeout, "request-timeout", dataplane.DefaultRequestTimeout, "dev data plane: limit for receiving a whole request, headers and body (Envoy's request_timeout; slower: 408 and the connection closed; each body read must also come within idle-timeout)", positive),
		integer(&c.MaxRequestHeadersKB, "max-request-headers-kb", dataplane.DefaultMaxRequestHeadersKB, "dev data plane: largest request headers in KiB, names and values (Envoy's max_request_headers_kb; larger: 431)", positive,
			func(v int) error {
				if v > 8192 {
					return errors.New("must not be above 8192, Envoy's limit")
				}
				return nil
			}),
		integer(&c.MaxHeadersCount, "max-headers-count", dataplane.DefaultMaxHeadersCount, "dev data plane: most request header fields (Envoy's max_headers_count; more: 431)", positive),
		duration(&c.MessageTimeout, "message-timeout", 2*time.Second, "dev data plane: wait for each processor reply (Envoy's message_timeout; moderation-timeout and llm-security-timeout stay below it)", positive),
		boolean(&c.FailureModeAllow, "failure-mode-allow", false, "dev data plane: continue without the processor when it fails"),
		duration(&c.RetryBaseInterval, "retry-base-interval", time.Second, "dev data plane: retry back-off base (Envoy: the route's retry_back_off)", positive),
		duration(&c.RetryMaxInterval, "retry-max-interval", 10*time.Second, "dev data plane: retry back-off cap", positive,
			func(v time.Duration) error {
				if v < c.RetryBaseInterval.Duration {
					return errors.New("must not be below retry-base-interval")
				}
				return nil
			}),
		str(&c.PromptsDir, "prompts-dir", "", "read-only folder of prompt YAML files, reloaded on change"),
		integer(&c.PromptSeenMaxIDs, "prompt-seen-max-ids", 1000, "Helicone-Prompt-Id: prompt ids per tenant versioned from its tagged calls (seen versions, under 100 bytes each in Redis); past it calls are tagged only; 0 turns seen versioning off", notNegative),
		integer(&c.PromptSeenMaxVersions, "prompt-seen-max-versions", 1000, "Helicone-Prompt-Id: versions made of one tenant's seen prompt; past it calls are tagged only", positive),
		duration(&c.PromptSeenTTL, "prompt-seen-ttl", 30*24*time.Hour, "Helicone-Prompt-Id: how long a seen prompt is kept after its last new version or use (at least 1m: each replica rechecks a prompt in use every 30 s)",
			func(v time.Duration) error {
				if v < time.Minute {
					return errors.New("must be at least 1m")
				}
				return nil
			}),
		str(&c.EgressPolicy, "egress-policy", "", "egress policy YAML file, reloaded on change"),
		str(&c.KeyVault, "key-vault", "", "key vault YAML file (a Secret) of proxy keys and the provider keys they stand for, reloaded on change"),
		str(&c.WorkloadNamespace, "workload-namespace", "", "sidecar mode: the calling pod's namespace"),
		str(&c.WorkloadServiceAccount, "workload-service-account", "", "sidecar mode: the calling pod's service account"),
		str(&c.WorkloadName, "workload-name", "", "sidecar mode: the calling workload's name"),
		str(&c.WorkloadLabelsFile, "workload-labels-file", "", "sidecar mode: the pod's labels (downward API file)"),
		boolean(&c.TrustWorkloadHeaders, "trust-workload-headers", false, "gateway mode: take the workload identity from x-tollgate-workload-* headers set by the mesh"),
		boolean(&c.Alerts, "alerts", true, "evaluate alert rules in this process (turn off on all but a few replicas)"),
		str(&c.AlertRules, "alert-rules", "", "YAML file of alert rules (needs ClickHouse)"),
		duration(&c.AlertInterval, "alert-interval", 30*time.Second, "how often alert rules are evaluated", positive),
		str(&c.DashboardURL, "dashboard-url", "", "the public address of the HTTP port (dashboard and API), e.g. https://tollgate.example.com: sent in alert notifications, and the base of prompt body links (empty: the Host each caller reached)", publicURL),
		boolean(&c.AlertPrivateWebhooks, "alert-private-webhooks", false, "let alert webhooks reach private and loopback addresses"),
		boolean(&c.RateLimitFailClosed, "ratelimit-fail-closed", false, "reject calls under a rate-limit policy with 503 when Redis is unreachable"),
		duration(&c.RedisTimeout, "redis-timeout", 50*time.Millisecond, "limit for each Redis round trip a call waits for: the cache lookup and rate-limit check, a semantic cache hit's read; past it the call goes on uncached and unlimited (fail-open, counted in tollgate_ratelimit_checks_total{result=\"fail_open\"}) or, with ratelimit-fail-closed, is refused with 503. Keep it well below message-timeout", storeTimeout, c.belowMessage),
		duration(&c.RedisWriteTimeout, "redis-write-timeout", 250*time.Millisecond, "limit for each Redis call made after the reply, off the client's path: the cache fill, the rate-limit charge of a cost or token policy, the semantic cache addition; past it the answer is not cached or the charge is lost, counted in tollgate_store_errors_total or tollgate_semantic_cache_store_errors_total", storeTimeout, c.withinShutdown),
		str(&c.ModerationURL, "moderation-url", "", "Helicone-Moderations-Enabled: OpenAI's API base, POST <url>/v1/moderations with the call's own key (empty: upstream-openai)", optionalURL),
		duration(&c.ModerationTimeout, "moderation-timeout", screen.DefaultTimeout, "Helicone-Moderations-Enabled: limit for the moderation call (past it the call is a 500, as Helicone answers a failed moderation); below message-timeout", positive, c.belowMessageTimeout),
		str(&c.LLMSecurityURL, "llm-security-url", "", "Helicone-LLM-Security-Enabled: the prompt-injection classifier's URL, e.g. Prompt Guard behind a text-classification server (docs/headers.md); empty: such calls go on unchecked", optionalURL),
		duration(&c.LLMSecurityTimeout, "llm-security-timeout", screen.DefaultTimeout, "Helicone-LLM-Security-Enabled: limit for the classifier call (past it the call goes on, as at Helicone); below message-timeout", positive, c.belowMessageTimeout),
		number(&c.LLMSecurityThreshold, "llm-security-threshold", screen.DefaultThreshold, "Helicone-LLM-Security-Enabled: a classifier label other than BENIGN, SAFE or LABEL_0 with at least this score blocks the call", unitInterval),
		str(&c.SemanticCacheURL, "semantic-cache-url", "", "Helicone-Cache-Semantic-Enabled: the OpenAI-compatible embeddings API base, POST <url>/v1/embeddings (empty: the semantic cache is off)", optionalURL),
		str(&c.SemanticCacheModel, "semantic-cache-model", "text-embedding-3-small", "semantic cache: the embeddings model"),
		str(&c.SemanticCacheAPIKey, "semantic-cache-api-key", "", "semantic cache: the embeddings endpoint's own key, sent as a bearer token, never logged (prefer TOLLGATE_SEMANTIC_CACHE_API_KEY)"),
		duration(&c.SemanticCacheTimeout, "semantic-cache-timeout", 150*time.Millisecond, "semantic cache: limit for the embeddings call, which the request waits for; past it the call goes on uncached, counted in tollgate_semantic_cache_embeddings_total{result=\"timeout\"}", positive, c.belowMessageTimeout),
		number(&c.SemanticCacheThreshold, "semantic-cache-threshold", 0.95, "semantic cache: the cosine similarity a hit needs when the request sends no Helicone-Cache-Semantic-Threshold", unitInterval),
		integer(&c.SemanticCacheMaxEntries, "semantic-cache-max-entries", 10000, "semantic cache: entries per scope (tenant, provider, model, parameters) in each replica's index; past it the oldest is dropped (about 1.35 KiB each at 256 dimensions, 7.3 KiB at 1536; nearly twice that while a sweep compacts a scope)", positive),
		integer(&c.SemanticCacheDimensions, "semantic-cache-dimensions", 0, "semantic cache: the vector length asked of the embeddings endpoint (sent as dimensions); 0: 256 for a text-embedding-3-* model, else the model's own. Memory and lookup time grow with it", semanticDimensions),
		duration(&c.SemanticCacheMaxTTL, "semantic-cache-max-ttl", 7*24*time.Hour, "semantic cache: the longest an answer is kept (a longer Cache-Control is cut to it); vectors older than it are trimmed from the Redis stream", positive),
		integer(&c.SemanticCacheMaxLog, "semantic-cache-max-log", 100000, "semantic cache: the newest answers kept in the Redis stream replicas rebuild their index from (an approximate cap) and in each replica's index over all scopes (the oldest go first)", positive),
		integer(&c.ScreenMaxInFlight, "screen-max-in-flight", screen.DefaultMaxInFlight, "moderation and classifier calls at once; more wait for a slot within their timeout", positive),
		str(&c.APIKey, "api-key", "", "bearer key for the HTTP API (prefer TOLLGATE_API_KEY); empty: loopback clients only"),
		str(&c.PromptLinkSecret, "prompt-link-secret", "", "without api-key: the secret, the same on every replica, that signs the prompt body links of Helicone's prompt SDK routes (prefer TOLLGATE_PROMPT_LINK_SECRET); neither: no links, except under dev"),
		str(&c.Role, "role", RoleGateway, "gateway: the HTTP port also serves the API and dashboard; sidecar: /healthz, /readyz and /metrics only", role),
		integer(&c.LogBatchSize, "log-batch-size", 5000, "ClickHouse: rows per insert", positive),
		duration(&c.LogFlushInterval, "log-flush-interval", time.Second, "ClickHouse: longest wait before a partial batch is inserted", positive),
		integer(&c.LogQueueSize, "log-queue-size", 100000, "ClickHouse: rows held in memory before batches go to the spool", positive),
		integer64(&c.SpoolMaxBytes, "spool-max-bytes", 1<<30, "ClickHouse: spool cap in bytes; beyond it records are dropped and counted", positive),
		duration(&c.Retention, "retention", 0, "ClickHouse: keep requests, feedback and scores this long, e.g. 90d; 0: forever. On servers before 21.8 (no TTL) whole monthly partitions of requests are dropped once all of the month is older (docs/privacy.md)", notNegative, noneOrADay),
		duration(&c.BodyRetention, "body-retention", 0, "ClickHouse: keep request and response bodies this long, e.g. 30d (at most retention); 0: as long as their rows, or the URL's body_ttl_days, which must agree when both are set", notNegative, noneOrADay),
		duration(&c.LogFsyncInterval, "log-fsync-interval", time.Second, "fsync cadence of the local record log (the write-ahead log in spool-dir/wal, or the JSON-lines file): a call's record is in the file before the call is answered, so a killed process loses none; records lost at a machine crash within the fsync window are the only loss; 0 fsyncs before answering (loses nothing, each call waits for the disk)", notNegative),
		integer(&c.WebhookQueueSize, "webhook-queue-size", 1000, "webhooks: deliveries each destination holds in memory; beyond it they are dropped and counted", positive),
		integer(&c.WebhookWorkers, "webhook-workers", 2, "webhooks: concurrent deliveries per destination", positive),
		duration(&c.WebhookTimeout, "webhook-timeout", 10*time.Second, "webhooks: limit for one delivery attempt", positive),
		integer(&c.WebhookMaxAttempts, "webhook-max-attempts", 5, "webhooks: attempts per delivery (retried on connection errors, timeouts, 5xx and 429)", positive),
		integer(&c.WebhookMaxBody, "webhook-max-body", webhook.DefaultMaxBody, "webhooks: largest request or response body a payload carries, in bytes (larger: a placeholder)", positive),
		str(&c.OTelEndpoint, "otel-endpoint", "", "OpenTelemetry: the OTLP/HTTP receiver (http://collector:4318) of a GenAI span per call; empty: no spans (docs/opentelemetry.md)", otelEndpoint),
		number(&c.OTelSampleRatio, "otel-sample-ratio", 1, "OpenTelemetry: share of calls without a traceparent that get a span; a caller's sampled traceparent always does, an unsampled one never", ratio),
		integer(&c.OTelQueueSize, "otel-queue-size", 2048, "OpenTelemetry: calls waiting to become spans; beyond it they are dropped and counted", positive),
		fileOnly(&c.AuthKeys, "auth-keys", "Helicone-Auth keys as a list of {sha256, tenant}: the key's hex SHA-256 and its tenant",
			func(keys []policies.APIKey) error { _, err := policies.NewAuth(keys, c.AuthRequired); return err }),
		fileOnly(&c.Prices, "prices", "price overrides, provider: model: {input, output, …}, the shape of the embedded table"),
		fileOnly(&c.Webhooks, "webhooks", "webhook destinations for finished calls, a list of {name, url, tenant, secret-file or secret-env, sample-rate, property-filters, include-data, include-bodies} (docs/webhooks.md)",
			webhook.Validate),
	}
}

// Rules of the settings above; the error names the setting.

func httpOrigin(v string) error {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("want an http(s) origin such as https://api.openai.com, got %q", v)
	}
	return nil
}

// publicURL: empty, or an http(s) URL with a host and nothing after its
// path, since links are built by appending to it.
func publicURL(v string) error {
	if v == "" {
		return nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("want an http(s) URL such as https://tollgate.example.com, got %q", v)
	}
	return nil
}

func redisURL(v string) error {
	if v == "" {
		return nil
	}
	if u, err := url.Parse(v); err != nil || !strings.HasPrefix(u.Scheme, "redis") {
		return fmt.Errorf("want a redis:// URL, got %q", v)
	}
	return nil
}

func clickHouseURL(v string) error {
	if v == "" {
		return nil
	}
	if u, err := url.Parse(v); err != nil || u.Scheme != "clickhouse" || u.Host == "" {
		return fmt.Errorf("want clickhouse://host:port/database, got %q", v)
	}
	return nil
}

func role(v string) error {
	if v != RoleGateway && v != RoleSidecar {
		return fmt.Errorf("want %s or %s, got %q", RoleGateway, RoleSidecar, v)
	}
	return nil
}
