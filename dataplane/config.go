package dataplane

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"

	"github.com/tollgate-dev/tollgate/dataplane/internal/headers"
)

// UpstreamHeader is the request header the processor sets (with
// clear_route_cache) to send the request to another origin
// (Helicone-Target-URL). Its value is an origin like
// "https://api.together.xyz" or "http://127.0.0.1:9001". The data plane
// re-picks the upstream after each processor reply that sets
// clear_route_cache, and removes this header before the upstream call (the
// Envoy route does the same with request_headers_to_remove). An unparsable
// value is a 400.
const UpstreamHeader = "x-tollgate-upstream"

// FallbackChainHeader is the request header the processor sets (with
// clear_route_cache) to send a call's attempts to several origins: the
// origin of each attempt, in order, separated by single spaces. A route of
// Config.FallbackChains whose origins are exactly these takes the request;
// any other value is a 400 local reply, as the catch-all route in
// envoy/*.yaml answers. The header never reaches the upstream.
const FallbackChainHeader = "x-tollgate-fallback-chain"

// AttemptsHeader is the request header the processor sets (with
// clear_route_cache) on a call whose attempts need the upstream-level
// filter: retries or fallbacks. In envoy/*.yaml it selects the *_attempts
// route of the upstream, whose cluster has the filter; the plain route's
// cluster has none. The data plane models that with
// UpstreamFilterConfig.EveryCluster false. The header never reaches the
// upstream.
const AttemptsHeader = "x-tollgate-attempts"

// EarlyRemovedHeaders are the headers the early header mutation of
// envoy/sidecar.yaml removes from a client's request before routing: the
// ones only the processor may set. For Config.EarlyRemoveHeaders.
var EarlyRemovedHeaders = []string{
	UpstreamHeader, "x-tollgate-upstream-host", "x-tollgate-link", FallbackChainHeader, AttemptsHeader, "x-tollgate-workload-*",
}

// Defaults, mirroring the production Envoy configuration.
const (
	DefaultRouteTimeout = 600 * time.Second
	// The provider routes' idle_timeout, as long as the route timeout: a
	// non-streamed answer is silent until it is complete.
	DefaultStreamIdleTimeout = 600 * time.Second
	DefaultMessageTimeout    = 2 * time.Second
	DefaultMaxRequestBody    = 8 << 20
	DefaultMaxResponseBody   = 32 << 20

	// The route's retry_back_off and rate_limited_retry_back_off.
	DefaultRetryBaseInterval           = time.Second
	DefaultRetryMaxInterval            = 10 * time.Second
	DefaultRateLimitedRetryMaxInterval = 60 * time.Second
)

// DefaultRateLimitedResetHeaders are the provider routes'
// rate_limited_retry_back_off.reset_headers, all in format SECONDS, in
// order: the wait Tollgate's upstream-level filter sets on a response Envoy
// retries under Helicone-Retry-*, then the provider's own.
var DefaultRateLimitedResetHeaders = []string{"x-tollgate-retry-after", "retry-after"}

// Config configures the local data plane.
type Config struct {
	OpenAIUpstream    string            // origin, optionally with a path prefix, e.g. "https://api.openai.com" or "http://127.0.0.1:9000/openai"; the request path is appended
	AnthropicUpstream string            // same, for paths under /v1/messages
	RouteTimeout      time.Duration     // whole upstream call incl. response body, default 600s (Envoy route timeout)
	StreamIdleTimeout time.Duration     // no bytes from upstream (or of the client's body) for this long ends the call, default 600s (the routes' idle_timeout)
	MessageTimeout    time.Duration     // how long to wait for each processor reply (Envoy ext_proc message_timeout), default 2s
	FailureModeAllow  bool              // processor unreachable/erroring: true = continue without it, false = 500 to the client
	MaxRequestBody    int64             // buffer limit for the BUFFERED request body; over it: 413 with a clear message, default 8 MiB
	MaxResponseBody   int64             // buffer limit for a BUFFERED response body; over it: 500 like Envoy, default 32 MiB
	Transport         http.RoundTripper // upstream transport, nil = a tuned http.Transport clone
	Logger            *slog.Logger

	// The connection manager's limits on the client (see downstream.go).
	// RequestTimeout is request_timeout: the whole request, headers and
	// body, must arrive within it (default DefaultRequestTimeout); each
	// read of the body must also come within StreamIdleTimeout. Either
	// missed: 408 and the connection closed. Headers over
	// MaxRequestHeadersKB KiB (default 60) or more than MaxHeadersCount
	// fields (default 100): 431, as max_request_headers_kb and
	// max_headers_count.
	RequestTimeout      time.Duration
	MaxRequestHeadersKB int
	MaxHeadersCount     int

	// AllowEnvoyHeaderMutation is ext_proc's mutation_rules.allow_envoy, for
	// both filters: the processor may set and remove x-envoy-* headers (such
	// as the retry headers). Tollgate's Envoy configs set it. false is
	// Envoy's default: such changes are ignored.
	AllowEnvoyHeaderMutation bool

	// Router retries (see the package documentation). The back-off between
	// attempts is jittered exponential from RetryBaseInterval (default 1s) up
	// to RetryMaxInterval (default 10s, or 10 × RetryBaseInterval when that
	// is more). The first of RateLimitedResetHeaders (default
	// DefaultRateLimitedResetHeaders) on a retried response that names whole
	// seconds not above RateLimitedRetryMaxInterval (default 60s) sets the
	// wait instead: random in [interval, 1.5 × interval).
	RetryBaseInterval           time.Duration
	RetryMaxInterval            time.Duration
	RateLimitedRetryMaxInterval time.Duration
	RateLimitedResetHeaders     []string

	// RetryJitter and RetrySleep replace the router's random source (uniform
	// in [0, n)) and its wait between attempts, so tests can see the waits
	// without waiting; nil = math/rand and a timer that ends with the
	// request.
	RetryJitter func(n int64) int64
	RetrySleep  func(ctx context.Context, d time.Duration) error

	// EarlyRemoveHeaders are request headers the connection manager removes
	// before route selection and before any HTTP filter, as Envoy's
	// early_header_mutation_extensions do: lowercase names, a trailing "*"
	// makes a prefix. Tollgate's configs remove the headers only the
	// processor may set (see EarlyRemovedHeaders); nil removes nothing, and
	// then a client's UpstreamHeader picks the route.
	EarlyRemoveHeaders []string

	// InternalAddresses is the connection manager's internal_address_config
	// (with use_remote_address: the peer's address decides). A request from
	// one of these keeps the x-envoy-* headers Envoy's router obeys (retries,
	// timeouts); any other request loses them before the filters run. nil:
	// no request is internal, Envoy's default and Tollgate's configs.
	InternalAddresses []netip.Prefix

	// ReceivingNamespaces and ForwardingNamespaces are the router-level
	// ext_proc filter's metadata_options (receiving_namespaces.untyped,
	// forwarding_namespaces.untyped): the dynamic metadata namespaces a
	// processor reply may set on the request, and those sent to the
	// processor in every message's metadata_context. nil: none, Envoy's
	// default. Tollgate's configs let the router-level filter receive the
	// processor's link namespace and the upstream-level filter forward it.
	ReceivingNamespaces  []string
	ForwardingNamespaces []string

	// UpstreamFilter is the upstream-level ext_proc filter, run once per
	// attempt on the same gRPC connection; nil = none.
	UpstreamFilter *UpstreamFilterConfig

	// FallbackChains are the fallback chain routes of envoy/*.yaml, picked
	// by FallbackChainHeader (see FallbackChain). Envoy's retry priority
	// previous_priorities (update_frequency 1, on Tollgate's routes) sends
	// retry N to level N; once every level was tried, to level 0 again.
	// Each attempt's Host is its endpoint's (auto_host_rewrite), set when
	// the attempt is sent, after the upstream filter ran.
	FallbackChains []FallbackChain

	// Routes are the provider routes of envoy/*.yaml besides OpenAI's and
	// Anthropic's (Gemini, Together, Groq: provider.Builtins), tried in
	// order after the target-URL routes and before the Anthropic and
	// OpenAI ones.
	Routes []Route
}

// Route is a provider route: requests whose path is Prefix or under it
// (Envoy's path_separated_prefix) go to Upstream (an origin, optionally
// with a path prefix). With StripPrefix the route's Prefix is taken off
// the path first, as the routes' regex_rewrite does in envoy/*.yaml
// (/together/v1/chat/completions reaches /v1/chat/completions).
//
// With Regex the route matches paths that match it as a whole instead,
// query excluded, as an Envoy route's safe_regex (RE2, which Go's regexp
// implements): Gemini's stable /v1/models/{model}:{method} calls, which
// share OpenAI's /v1/models/ prefix. Prefix then only names the route in
// errors, and nothing is stripped.
type Route struct {
	Prefix      string
	Upstream    string
	StripPrefix bool
	Regex       string
}

// FallbackChain is one fallback chain route and its cluster: the route
// matches a FallbackChainHeader of exactly Origins, space-separated, and
// its cluster has one priority level per origin, in order, one endpoint
// each. Levels are those endpoints (scheme://host[:port], no path), one
// per origin; nil means Origins themselves. They differ where the origin a
// client names is served from elsewhere, as `tollgate dev` sends
// https://api.openai.com to --upstream-openai; in Envoy the route's header
// value and the cluster's endpoints are likewise separate.
type FallbackChain struct {
	Origins []string
	Levels  []string
}

// Proxy is the local data plane: an http.Handler that plays Envoy's
// connection manager, ext_proc filter and router for one request at a time.
type Proxy struct {
	cfg        Config
	openai     *upstreamTarget
	anthropic  *upstreamTarget
	routes     []*upstreamTarget            // Config.Routes, each with its match
	chains     map[string][]*upstreamTarget // by FallbackChainHeader value
	client     extprocv3.ExternalProcessorClient
	upstream   upstreamCaller
	rules      headers.Rules
	upFilter   *UpstreamFilterConfig // a copy with defaults filled in; nil = none
	upMetadata metadata.MD
	jitter     func(n int64) int64 // uniform in [0, n), for back-off
	sleep      func(ctx context.Context, d time.Duration) error
	log        *slog.Logger
}

// New returns the proxy. conn is a gRPC client connection to the ext_proc
// server (nil = no processor: plain proxy).
func New(cfg Config, conn grpc.ClientConnInterface) (*Proxy, error) {
	if cfg.RouteTimeout <= 0 {
		cfg.RouteTimeout = DefaultRouteTimeout
	}
	if cfg.StreamIdleTimeout <= 0 {
		cfg.StreamIdleTimeout = DefaultStreamIdleTimeout
	}
	if cfg.MessageTimeout <= 0 {
		cfg.MessageTimeout = DefaultMessageTimeout
	}
	if cfg.MaxRequestBody <= 0 {
		cfg.MaxRequestBody = DefaultMaxRequestBody
	}
	if cfg.MaxResponseBody <= 0 {
		cfg.MaxResponseBody = DefaultMaxResponseBody
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.MaxRequestHeadersKB <= 0 {
		cfg.MaxRequestHeadersKB = DefaultMaxRequestHeadersKB
	}
	if cfg.MaxHeadersCount <= 0 {
		cfg.MaxHeadersCount = DefaultMaxHeadersCount
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Transport == nil {
		cfg.Transport = NewTransport()
	}
	if cfg.RetryBaseInterval <= 0 {
		cfg.RetryBaseInterval = DefaultRetryBaseInterval
	}
	if cfg.RetryMaxInterval <= 0 {
		cfg.RetryMaxInterval = max(DefaultRetryMaxInterval, 10*cfg.RetryBaseInterval)
	}
	if cfg.RetryMaxInterval < cfg.RetryBaseInterval {
		return nil, fmt.Errorf("dataplane: RetryMaxInterval %v is below RetryBaseInterval %v", cfg.RetryMaxInterval, cfg.RetryBaseInterval)
	}
	if cfg.RateLimitedRetryMaxInterval <= 0 {
		cfg.RateLimitedRetryMaxInterval = DefaultRateLimitedRetryMaxInterval
	}
	if cfg.RateLimitedResetHeaders == nil {
		cfg.RateLimitedResetHeaders = DefaultRateLimitedResetHeaders
	}
	if cfg.RetryJitter == nil {
		cfg.RetryJitter = rand.Int64N
	}
	if cfg.RetrySleep == nil {
		cfg.RetrySleep = sleepTimer
	}
	rm := make([]string, len(cfg.EarlyRemoveHeaders))
	for i, n := range cfg.EarlyRemoveHeaders {
		rm[i] = strings.ToLower(n)
	}
	cfg.EarlyRemoveHeaders = rm
	p := &Proxy{
		cfg:    cfg,
		log:    cfg.Logger,
		rules:  headers.Rules{AllowEnvoy: cfg.AllowEnvoyHeaderMutation},
		jitter: cfg.RetryJitter,
		sleep:  cfg.RetrySleep,
	}
	p.upstream = retryingCaller{p: p}
	if f := cfg.UpstreamFilter; f != nil {
		fc := *f
		if fc.MessageTimeout <= 0 {
			fc.MessageTimeout = cfg.MessageTimeout
		}
		p.upFilter = &fc
		p.upMetadata = metadata.New(fc.Metadata)
	}
	var err error
	if cfg.OpenAIUpstream != "" {
		if p.openai, err = parseUpstream(cfg.OpenAIUpstream); err != nil {
			return nil, fmt.Errorf("dataplane: OpenAIUpstream: %w", err)
		}
	}
	if cfg.AnthropicUpstream != "" {
		if p.anthropic, err = parseUpstream(cfg.AnthropicUpstream); err != nil {
			return nil, fmt.Errorf("dataplane: AnthropicUpstream: %w", err)
		}
	}
	for _, r := range cfg.Routes {
		t, err := parseUpstream(r.Upstream)
		if err != nil {
			return nil, fmt.Errorf("dataplane: Routes %s: %w", r.Prefix, err)
		}
		if r.Regex != "" {
			if t.re, err = regexp.Compile(`^(?:` + r.Regex + `)$`); err != nil || r.StripPrefix {
				return nil, fmt.Errorf("dataplane: Routes %s: regex %q: want an RE2 expression and no StripPrefix (%v)", r.Prefix, r.Regex, err)
			}
			p.routes = append(p.routes, t)
			continue
		}
		prefix := strings.TrimRight(r.Prefix, "/")
		if !strings.HasPrefix(prefix, "/") {
			return nil, fmt.Errorf("dataplane: Routes: prefix %q must start with /", r.Prefix)
		}
		t.match = prefix
		t.strip = r.StripPrefix
		p.routes = append(p.routes, t)
	}
	for _, chain := range cfg.FallbackChains {
		if err := p.addChain(chain.Origins, chain.Levels); err != nil {
			return nil, fmt.Errorf("dataplane: FallbackChains: %w", err)
		}
	}
	if conn != nil {
		p.client = extprocv3.NewExternalProcessorClient(conn)
	}
	return p, nil
}

// envoyWindow is Envoy's default HTTP/2 initial stream and connection window
// (http2_protocol_options initial_stream_window_size and
// initial_connection_window_size), which Tollgate's ext_proc cluster keeps.
const envoyWindow = 256 << 20

// KeepaliveInterval and KeepaliveTimeout are the HTTP/2 pings of Tollgate's
// ext_proc cluster (connection_keepalive in envoy/*.yaml): a PING every
// interval, with or without streams, and the connection dropped when the ack
// is later than the timeout. Envoy adds up to 15 % jitter to the interval.
const (
	KeepaliveInterval = 30 * time.Second
	KeepaliveTimeout  = 5 * time.Second
)

// DialOptions are the options for the gRPC connection to the processor that
// make it behave like Envoy's HTTP/2 connection to the ext_proc cluster:
// keepalive pings (KeepaliveInterval), which a processor must tolerate or it
// closes the connection under calls in flight, and fixed flow-control
// windows of Envoy's default size. Without the windows grpc-go
// estimates the bandwidth-delay product: on nearly every DATA frame it
// receives it queues a connection WINDOW_UPDATE and a PING, which the
// processor answers with a PING ack. Envoy sends no such pings; with small
// messages exchanged one at a time they add frames, writes and wake-ups to
// every reply. Add transport credentials and any other options to these.
func DialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithInitialWindowSize(envoyWindow),
		grpc.WithInitialConnWindowSize(envoyWindow),
		// grpc-go pings after KeepaliveInterval without frames from the
		// server, where Envoy pings on its timer whatever the traffic; a
		// quiet connection, the one at risk, sees the same pings.
		grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time: KeepaliveInterval, Timeout: KeepaliveTimeout, PermitWithoutStream: true,
		}),
	}
}

// NewTransport returns the upstream transport New uses when Config.Transport
// is nil: a clone of http.DefaultTransport tuned for one busy proxy.
func NewTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	// Envoy ignores HTTP_PROXY and friends; so do we.
	t.Proxy = nil
	// Envoy's default cluster connect_timeout.
	t.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	// Every call in a benchmark goes to the same one or two hosts.
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 512
	t.IdleConnTimeout = 90 * time.Second
	// Pass content encodings through untouched, as Envoy does; Go would
	// otherwise ask for gzip and decompress behind the processor's back.
	t.DisableCompression = true
	t.ReadBufferSize = 32 << 10
	t.WriteBufferSize = 32 << 10
	return t
}
