package app

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"

	"github.com/tollgate-dev/tollgate/dataplane"
	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/prompt"
	"github.com/tollgate-dev/tollgate/processor"
	"github.com/tollgate-dev/tollgate/provider"
)

const maxGRPCMessage = 64 << 20

// serve runs the processor (and, for dev, the local data plane) until ctx
// ends, then drains: NOT_SERVING, wait, stop taking calls, finish in-flight
// ones, flush the log.
func serve(ctx context.Context, cfg *Config, dev bool, stderr io.Writer) (err error) {
	log := newLogger(stderr, cfg.LogLevel)
	tuneMemory("/", os.Getenv, log) // the runtime read GOMEMLIMIT and GOGC from the real environment too
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	prices, err := loadPrices(cfg)
	if err != nil {
		return err
	}
	azureMap, _ := azureDeployments(cfg.AzureDeployments) // checked with the settings
	provKeys, err := providerKeys(cfg.ProviderKeys, true)
	if err != nil {
		return fmt.Errorf("--provider-key: %w", err)
	}
	// The provider list the processor and egress policies read
	// (checked with the settings).
	providers, _ := compatibleProviders(cfg.OpenAICompatible)
	provider.Register(providers)
	auth, err := policies.NewAuth(cfg.AuthKeys, cfg.AuthRequired)
	if err != nil {
		return err
	}
	// The sink outlives ctx: it must flush after the last call drains.
	sinkCtx, stopSink := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSink()
	sink, err := openSink(sinkCtx, cfg, reg, log)
	if err != nil {
		return err
	}
	schemaBehind := sinkSchemaBehind(sink) // before withWebhooks wraps it
	if sink, err = withWebhooks(sink, cfg, reg, log); err != nil {
		return err
	}
	gate, promptStore, gateStore, err := openGate(cfg, reg, log)
	if err != nil {
		return err
	}
	defer gateStore.Close()
	semantic, semanticStore, err := openSemantic(ctx, cfg, reg, log)
	if err != nil {
		return err
	}
	defer semanticStore.Close()
	prompts, err := prompt.NewLibrary(promptLibraryOptions(cfg, promptStore, reg, log))
	if err != nil {
		return fmt.Errorf("prompts-dir: %w", err)
	}
	defer prompts.Close()
	egress, err := openEgressPolicy(cfg, reg, log)
	if err != nil {
		return err
	}
	defer egress.Close()
	keyVault, err := openVault(cfg, reg, log)
	if err != nil {
		return err
	}
	defer keyVault.Stop()
	workload, err := sidecarWorkload(cfg)
	if err != nil {
		return err
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout.Duration)
		defer cancel()
		if cerr := sink.Close(closeCtx); cerr != nil {
			err = errors.Join(err, fmt.Errorf("closing the log sink: %w", cerr))
		}
	}()

	checks, err := newScreen(cfg, reg)
	if err != nil {
		return err
	}
	spanExporter, err := openSpans(cfg, reg, log) // otel.go
	if err != nil {
		return err
	}
	var spans processor.SpanExporter // a nil *Exporter must stay a nil interface
	if spanExporter != nil {
		spans = spanExporter
		defer func() { // after the last call drained, before the log closes
			closeCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout.Duration)
			defer cancel()
			if cerr := spanExporter.Close(closeCtx); cerr != nil {
				log.Warn("flushing spans at shutdown", "err", cerr)
			}
		}()
	}
	proc := processor.New(processor.Options{
		Prices:               prices,
		Sink:                 sink,
		Auth:                 auth,
		Gate:                 gate,
		Semantic:             semantic,
		Prompts:              prompts,
		Screen:               checks,
		Spans:                spans,
		Egress:               egress.Current,
		Vault:                keyVault.Current,
		Workload:             workload,
		TrustWorkloadHeaders: cfg.TrustWorkloadHeaders,
		AllowedTargetOrigins: cfg.AllowedTargets,
		AzureDeployments:     azureMap,
		ProviderKeys:         provKeys,
		MaxRequestBody:       cfg.MaxRequestBody,
		MaxLoggedBody:        cfg.MaxLoggedBody,
		DisableStreamUsage:   !cfg.StreamUsage,
		Metrics:              processor.NewMetrics(reg),
		Logger:               log,
	})

	// From the first listener on, each step that opens or starts something
	// pushes how to undo it. On the way out they run in reverse: after a
	// failed step they stop what had started (servers, listeners, their
	// goroutines); after the drain below they are no-ops but for the API's
	// ClickHouse connection and alert evaluator, which close last.
	var undo undoStack
	defer undo.run()

	grpcLis, err := listen(cfg.GRPCListen)
	if err != nil {
		return fmt.Errorf("grpc-listen: %w", err)
	}
	undo.push(func() { grpcLis.Close() })
	grpcServer := grpc.NewServer(grpcServerOptions(processorKeepalive)...)
	extprocv3.RegisterExternalProcessorServer(grpcServer, proc)
	healthServer := health.NewServer()
	healthpb.RegisterHealthServer(grpcServer, healthServer)
	healthServer.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)

	var ready atomic.Bool
	ready.Store(true)
	httpLis, err := net.Listen("tcp", cfg.HTTPListen)
	if err != nil {
		return fmt.Errorf("http-listen: %w", err)
	}
	undo.push(func() { httpLis.Close() })
	// A sidecar builds no API at all: no query connection, no alert
	// evaluator, nothing its application could reach.
	var restAPI http.Handler
	if cfg.Role != RoleSidecar {
		ch, err := openAPIClickHouse(cfg, prices)
		if err != nil {
			return err
		}
		undo.push(func() { ch.Close() })
		mgr, err := newAlerts(cfg, ch, reg, log)
		if err != nil {
			return err
		}
		if mgr != nil {
			mgr.Start()                       // evaluates every --alert-interval
			undo.push(func() { mgr.Close() }) // before ch closes: it queries until it stops
		}
		stopJobs, err := startHousekeeping(cfg, ch, gateStore, reg, log) // erasure and retention (housekeeping.go)
		if err != nil {
			return err
		}
		undo.push(stopJobs) // before ch closes
		apiCfg := cfg
		if dev && cfg.APIKey == "" && cfg.PromptLinkSecret == "" {
			// dev is one process: a secret of its own signs the prompt
			// body links that it alone serves.
			c := *cfg
			c.PromptLinkSecret = rand.Text()
			apiCfg = &c
		}
		restAPI = newAPI(apiCfg, sink, ch, mgr, auth, prices, prompts, log)
	}
	httpServer := &http.Server{Handler: apiHandler(cfg, reg, &ready, schemaBehind, restAPI), ReadHeaderTimeout: 10 * time.Second}

	// The servers' goroutines are gone once every server has stopped.
	var serving sync.WaitGroup
	undo.push(serving.Wait)
	errc := make(chan error, 3)
	serving.Go(func() { errc <- grpcServer.Serve(grpcLis) })
	undo.push(grpcServer.Stop)
	serving.Go(func() { errc <- ignoreClosed(httpServer.Serve(httpLis)) })
	undo.push(func() { httpServer.Close() })

	var planeServer *http.Server
	var planeConn *grpc.ClientConn
	var planeLis net.Listener
	if dev {
		// Windows and keepalive pings as Envoy's ext_proc cluster has them
		// (dataplane.DialOptions).
		dial := append(dataplane.DialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxGRPCMessage), grpc.MaxCallSendMsgSize(maxGRPCMessage)))
		planeConn, err = grpc.NewClient(dialTarget(grpcLis), dial...)
		if err != nil {
			return fmt.Errorf("dialing the processor: %w", err)
		}
		undo.push(func() { planeConn.Close() })
		planeCfg, err := devPlaneConfig(cfg, log)
		if err != nil {
			return err
		}
		plane, err := dataplane.New(planeCfg, planeConn)
		if err != nil {
			return fmt.Errorf("local data plane: %w", err)
		}
		planeLis, err = net.Listen("tcp", cfg.Listen)
		if err != nil {
			return fmt.Errorf("listen: %w", err)
		}
		undo.push(func() { planeLis.Close() })
		planeServer = &http.Server{Handler: plane, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: plane.MaxHeaderBytes()}
		serving.Go(func() { errc <- ignoreClosed(planeServer.Serve(planeLis)) })
		undo.push(func() { planeServer.Close() })
	}

	readyLine := fmt.Sprintf("tollgate ready grpc=%s http=%s", addrString(grpcLis), httpLis.Addr())
	if dev {
		readyLine += fmt.Sprintf(" listen=%s", planeLis.Addr())
	}
	fmt.Fprintln(stderr, readyLine)

	select {
	case <-ctx.Done():
	case err := <-errc:
		if err != nil {
			log.Error("server failed", "err", err)
		}
	}
	return shutdown(cfg, log, &ready, healthServer, planeServer, planeConn, grpcServer, httpServer)
}

// undoStack holds what to close or stop if serve returns, last first.
type undoStack []func()

func (u *undoStack) push(f func()) { *u = append(*u, f) }

func (u *undoStack) run() {
	for i := len(*u) - 1; i >= 0; i-- {
		(*u)[i]()
	}
	*u = nil
}

// grpcKeepalive is the processor's side of HTTP/2 keepalive.
type grpcKeepalive struct {
	// minPing is the shortest gap between a client's pings the server
	// tolerates; closer pings are strikes, and after two grpc-go sends
	// GOAWAY too_many_pings and closes the connection, open streams and all.
	minPing time.Duration
	// idle and timeout are the server's own pings: one after idle without
	// any frame from the client, and the connection is dropped when its ack
	// takes longer than timeout.
	idle, timeout time.Duration
}

// processorKeepalive accepts the pings Envoy's tollgate cluster sends
// (connection_keepalive in envoy/*.yaml: every 30 s plus up to 15 % jitter,
// whether or not a stream is open; KeepaliveSettings in Envoy's
// api/envoy/config/core/v3/protocol.proto). grpc-go's default policy (one
// ping per 5 minutes, none without a stream) answers them with GOAWAY after
// about two minutes, and Envoy's ext_proc then fails every call still on the
// connection. TestProcessorKeepaliveAcceptsEnvoyPings ties minPing to the
// configs. The peer is on loopback or in the same cluster: a ping after a
// quiet minute is cheap and finds a hung peer long before TCP would.
var processorKeepalive = grpcKeepalive{minPing: 10 * time.Second, idle: time.Minute, timeout: 20 * time.Second}

// grpcServerOptions are the processor's gRPC server options, for serve, dev
// and the tests alike.
func grpcServerOptions(ka grpcKeepalive) []grpc.ServerOption {
	return []grpc.ServerOption{
		// Envoy buffers bodies up to its limit (32 MiB in envoy/) and sends
		// them in one message; gRPC's default 4 MiB would refuse large
		// prompts.
		grpc.MaxRecvMsgSize(maxGRPCMessage), grpc.MaxSendMsgSize(maxGRPCMessage),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: ka.minPing, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: ka.idle, Timeout: ka.timeout}),
	}
}

func shutdown(cfg *Config, log *slog.Logger, ready *atomic.Bool, hs *health.Server,
	plane *http.Server, planeConn *grpc.ClientConn, grpcServer *grpc.Server, httpServer *http.Server) error {
	log.Info("draining", "delay", cfg.DrainDelay.Duration)
	ready.Store(false)
	hs.Shutdown() // every service NOT_SERVING: Envoy's health check moves traffic away
	time.Sleep(cfg.DrainDelay.Duration)

	ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout.Duration)
	defer cancel()
	var errs []error
	if plane != nil {
		errs = append(errs, plane.Shutdown(ctx))
		planeConn.Close()
	}
	stopped := make(chan struct{})
	go func() { grpcServer.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-ctx.Done():
		log.Warn("in-flight ext_proc streams did not finish in time; stopping them")
		grpcServer.Stop()
	}
	errs = append(errs, httpServer.Shutdown(ctx))
	log.Info("stopped")
	return errors.Join(errs...)
}

func ignoreClosed(err error) error {
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func loadPrices(cfg *Config) (*provider.PriceTable, error) {
	prices := provider.DefaultPrices()
	if cfg.PricesFile != "" {
		data, err := os.ReadFile(cfg.PricesFile)
		if err != nil {
			return nil, fmt.Errorf("prices-file: %w", err)
		}
		over, err := provider.LoadPrices(data)
		if err != nil {
			return nil, fmt.Errorf("prices-file %s: %w", cfg.PricesFile, err)
		}
		prices = prices.WithOverrides(over)
	}
	if len(cfg.Prices) > 0 {
		prices = prices.WithOverrides(cfg.Prices)
	}
	return prices, nil
}

// devPlaneConfig is the local data plane of `tollgate dev`: Envoy with the
// configs in envoy/, as far as the data plane models them.
func devPlaneConfig(cfg *Config, log *slog.Logger) (dataplane.Config, error) {
	chains, err := devFallbackChains(cfg, log)
	if err != nil {
		return dataplane.Config{}, err
	}
	providers, err := compatibleProviders(cfg.OpenAICompatible)
	if err != nil {
		return dataplane.Config{}, fmt.Errorf("openai-compatible: %w", err)
	}
	return dataplane.Config{
		OpenAIUpstream:    cfg.UpstreamOpenAI,
		AnthropicUpstream: cfg.UpstreamAnthropic,
		RouteTimeout:      cfg.RouteTimeout.Duration,
		StreamIdleTimeout: cfg.IdleTimeout.Duration,
		MessageTimeout:    cfg.MessageTimeout.Duration,
		// As envoy/'s connection manager: request_timeout, and the header
		// limits.
		RequestTimeout:      cfg.RequestTimeout.Duration,
		MaxRequestHeadersKB: cfg.MaxRequestHeadersKB,
		MaxHeadersCount:     cfg.MaxHeadersCount,
		FailureModeAllow:    cfg.FailureModeAllow,
		MaxRequestBody:      int64(cfg.MaxRequestBody),
		// As the configs in envoy/: the processor may set Envoy's retry
		// headers, the route's retry back-off, and the upstream-level
		// filter that rewrites each attempt for fallback.
		AllowEnvoyHeaderMutation: true,
		RetryBaseInterval:        cfg.RetryBaseInterval.Duration,
		RetryMaxInterval:         cfg.RetryMaxInterval.Duration,
		// As envoy/: client-sent internal headers go before routing,
		// and no request is internal (InternalAddresses nil), so a
		// client's x-envoy-* headers never reach the router.
		EarlyRemoveHeaders: earlyRemovals(cfg),
		// As envoy/: the router-level filter takes the link to the
		// request's attempts into the dynamic metadata, and the
		// upstream-level filter forwards it to the processor.
		ReceivingNamespaces: []string{processor.LinkNamespace},
		UpstreamFilter: &dataplane.UpstreamFilterConfig{
			Metadata:             map[string]string{processor.FilterLevelMetadata: processor.FilterLevelUpstream},
			FailureModeAllow:     cfg.FailureModeAllow,
			ForwardingNamespaces: []string{processor.LinkNamespace},
		},
		// As envoy/*.yaml's chain routes, for every origin dev reaches.
		FallbackChains: chains,
		// As envoy/*.yaml's provider routes (Gemini, Together, Groq), and
		// one for each configured OpenAI-compatible provider.
		Routes: devProviderRoutes(cfg, providers),
		Logger: log,
	}, nil
}
