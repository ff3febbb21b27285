// Package processor is Tollgate's Envoy external processor: one Process loop
// per HTTP request (Envoy opens one gRPC stream per request), a call object
// holding that request's state, and one handler per phase — request
// headers, request body, response headers, response body — each returning
// the mutations Envoy applies.
package processor

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/egress"
	"github.com/tollgate-dev/tollgate/policies/semcache"
	"github.com/tollgate-dev/tollgate/policies/vault"
	"github.com/tollgate-dev/tollgate/provider"
	"github.com/tollgate-dev/tollgate/record"
)

// Options configure a Server. Zero values get the defaults noted.
type Options struct {
	Prices *provider.PriceTable // default provider.DefaultPrices()
	Sink   record.Sink          // default record.Discard
	Auth   *policies.Auth       // default: open (no keys)
	// AllowedTargetOrigins are the origins Helicone-Target-URL may name
	// ("https://api.together.xyz"; "*" allows any).
	AllowedTargetOrigins []string
	// AzureDeployments maps an Azure OpenAI deployment to the model it
	// serves: the price of a call whose response names no priced model.
	AzureDeployments map[string]string
	// ProviderKeys are the gateway's own keys by provider (provider.OpenAI,
	// provider.Anthropic): a fallback entry translated to another provider
	// is sent with that provider's key, never the client's (translated.go).
	// A provider without one takes no translated entry.
	ProviderKeys map[string]string
	// MaxRequestBody: a larger request body is answered with 413. Default 8 MiB.
	MaxRequestBody int
	// MaxLoggedBody: request and response bodies are cut to this many bytes
	// in the log record. Default 1 MiB.
	MaxLoggedBody int
	// DisableStreamUsage stops the processor from adding
	// stream_options.include_usage to OpenAI chat streams (then streamed
	// calls are logged with counted tokens, usage_source "estimated").
	DisableStreamUsage bool
	Gate               Gate    // cache and rate limits; nil: none
	Prompts            Prompts // Helicone-Prompt-Id templates; nil: such requests get 503
	// Screen runs Helicone-Moderations-Enabled and
	// Helicone-LLM-Security-Enabled (nil: such calls go on unchecked,
	// with a warning).
	Screen Screen
	// Semantic is the semantic cache, used with a *gate.Gate (nil: off).
	Semantic *semcache.Cache
	// Egress returns the current egress policy (nil: everything allowed).
	Egress func() *egress.Policy
	// Vault returns the current key vault (nil: none; a proxy key is then
	// refused).
	Vault func() *vault.Vault
	// Workload is the caller's identity in sidecar mode (the pod beside
	// this processor).
	Workload egress.Workload
	// TrustWorkloadHeaders takes the identity from x-tollgate-workload-*
	// request headers instead, in gateway mode behind a mesh that sets them.
	TrustWorkloadHeaders bool
	// Spans exports a span per finished call (nil: none).
	Spans   SpanExporter
	Metrics *Metrics // default: unregistered metrics
	Logger  *slog.Logger
	Now     func() time.Time // injected clock for tests
}

// Server implements Envoy's ExternalProcessor gRPC service.
type Server struct {
	extprocv3.UnimplementedExternalProcessorServer

	prices               *provider.PriceTable
	sink                 record.Sink
	auth                 *policies.Auth
	gate                 Gate
	semantic             *semcache.Cache
	prompts              Prompts
	screen               Screen
	egress               func() *egress.Policy
	vault                func() *vault.Vault
	workload             egress.Workload
	trustWorkloadHeaders bool
	allowedOrigins       map[string]bool
	azureModels          map[string]string
	maxRequestBody       int
	maxLoggedBody        int
	streamUsage          bool
	spans                SpanExporter
	metrics              *Metrics
	log                  *slog.Logger
	now                  func() time.Time
	providerKeys         map[string]string // Options.ProviderKeys
	links                sync.Map          // link key → *attemptLink, for the upstream-level streams
}

// New builds a Server from options.
func New(o Options) *Server {
	s := &Server{
		prices:               o.Prices,
		sink:                 o.Sink,
		auth:                 o.Auth,
		gate:                 o.Gate,
		semantic:             o.Semantic,
		prompts:              o.Prompts,
		screen:               o.Screen,
		egress:               o.Egress,
		vault:                o.Vault,
		workload:             o.Workload,
		trustWorkloadHeaders: o.TrustWorkloadHeaders,
		allowedOrigins:       make(map[string]bool),
		azureModels:          o.AzureDeployments,
		maxRequestBody:       o.MaxRequestBody,
		maxLoggedBody:        o.MaxLoggedBody,
		streamUsage:          !o.DisableStreamUsage,
		spans:                o.Spans,
		metrics:              o.Metrics,
		log:                  o.Logger,
		now:                  o.Now,
		providerKeys:         o.ProviderKeys,
	}
	for _, origin := range o.AllowedTargetOrigins {
		s.allowedOrigins[strings.TrimRight(strings.ToLower(origin), "/")] = true
	}
	if s.prices == nil {
		s.prices = provider.DefaultPrices()
	}
	if s.sink == nil {
		s.sink = record.Discard{}
	}
	if s.auth == nil {
		s.auth, _ = policies.NewAuth(nil, false)
	}
	if s.maxRequestBody <= 0 {
		s.maxRequestBody = 8 << 20
	}
	if s.maxLoggedBody <= 0 {
		s.maxLoggedBody = record.DefaultMaxBody
	}
	if s.metrics == nil {
		s.metrics = NewMetrics(nil)
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// errUnexpectedMessage ends a stream whose message the processor cannot
// answer (a kind it never asked for, or none at all).
var errUnexpectedMessage = errors.New("unexpected ext_proc message")

// Process runs one HTTP request's exchange with Envoy. Whatever way the
// stream ends, the call's record is written exactly once.
func (s *Server) Process(stream extprocv3.ExternalProcessor_ProcessServer) error {
	if isUpstreamFilter(stream.Context()) {
		return s.processAttempt(stream)
	}
	c := s.newCall(stream.Context())
	defer releaseCall(c)
	defer s.offerSpan(c) // spans.go: before the call goes back to the pool
	for {
		req, err := stream.Recv()
		if err != nil {
			s.endEarly(c, stream.Context(), err)
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		resp := s.handle(c, req)
		if resp == nil {
			s.metrics.processorErrors.Inc()
			s.endEarly(c, stream.Context(), errUnexpectedMessage)
			return status.Errorf(codes.InvalidArgument, "tollgate: unexpected ext_proc message %T", req.GetRequest())
		}
		addWarningHeader(c, resp) // warnings.go
		if err := stream.Send(resp); err != nil {
			s.endEarly(c, stream.Context(), err)
			return err
		}
		s.complete(c) // after the last reply: the client does not wait for it
	}
}

func (s *Server) handle(c *call, req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
	switch r := req.GetRequest().(type) {
	case *extprocv3.ProcessingRequest_RequestHeaders:
		return s.onRequestHeaders(c, r.RequestHeaders)
	case *extprocv3.ProcessingRequest_RequestBody:
		return s.onRequestBody(c, r.RequestBody)
	case *extprocv3.ProcessingRequest_ResponseHeaders:
		return s.onResponseHeaders(c, r.ResponseHeaders)
	case *extprocv3.ProcessingRequest_ResponseBody:
		return s.onResponseBody(c, r.ResponseBody)
	case *extprocv3.ProcessingRequest_RequestTrailers:
		// Never asked for: with trailers SKIP a request with trailers
		// still brings its whole body in the BUFFERED body message.
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestTrailers{RequestTrailers: &extprocv3.TrailersResponse{}}}
	case *extprocv3.ProcessingRequest_ResponseTrailers:
		return s.onResponseTrailers(c)
	}
	return nil
}

// endEarly writes the record of a call whose stream ended before its
// response did: -2 when the data plane's deadline passed, -3 when the client
// (or Envoy on its behalf) went away.
//
// A call already logged still completes: a reply that could not be sent
// (the client went away as the last chunk passed) follows a response the
// provider gave in full, and its charge and cache fill are owed all the same.
func (s *Server) endEarly(c *call, ctx context.Context, err error) {
	defer s.complete(c)
	if c.logged {
		return
	}
	if !c.started {
		return // the stream closed before any message: there was no call
	}
	if c.stream != nil {
		s.endStream(c) // keep whatever the stream reported before it was cut
	}
	code := status.Code(err)
	switch {
	case errors.Is(err, errUnexpectedMessage):
		// Process answers it with an error, which Envoy turns into a 500.
		c.rec.Error = "the data plane sent an unexpected ext_proc message"
		s.metrics.endedEarly.WithLabelValues("protocol_error").Inc()
		s.finish(c, http.StatusInternalServerError)
	case errors.Is(err, io.EOF) && c.status != 0 && c.stream == nil:
		// Envoy closed the stream after the response headers, without
		// the body its buffered mode owes: the body went over Envoy's
		// buffer limit, and the client got Envoy's own 500. The provider
		// answered (and bills the prompt); the answer must not be cached
		// or logged as a success. (A stream asked for chunk by chunk that
		// closes before its last chunk was cut, and goes below.)
		s.estimateUsage(c)
		c.rec.Error = "the response body never reached the processor: Envoy ended the stream after the headers (a body over its buffer limit)"
		s.metrics.endedEarly.WithLabelValues("no_body").Inc()
		s.finish(c, http.StatusInternalServerError)
	case code == codes.DeadlineExceeded || deadlinePassed(ctx):
		if c.stream == nil {
			s.estimateUsage(c) // sent, so its prompt is billed (usage.go)
		}
		c.rec.Error = "stream ended by a timeout before the response completed"
		s.metrics.endedEarly.WithLabelValues("timeout").Inc()
		s.finish(c, record.StatusTimeout)
	default:
		if c.stream == nil {
			s.estimateUsage(c)
		}
		c.rec.Error = "client went away before the response completed"
		s.metrics.endedEarly.WithLabelValues("cancelled").Inc()
		s.finish(c, record.StatusClientCancelled)
	}
}

// deadlinePassed tells a timeout from a cancel. gRPC's server may report a
// passed deadline as Canceled (two timers race), so the deadline itself is
// the reliable signal.
func deadlinePassed(ctx context.Context) bool {
	dl, ok := ctx.Deadline()
	return ok && ctx.Err() != nil && !time.Now().Before(dl)
}
