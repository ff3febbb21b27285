package app

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"sigs.k8s.io/yaml"

	"github.com/tollgate-dev/tollgate/envoy"
	"github.com/tollgate-dev/tollgate/inject"
)

// runKube runs the subcommands that bring Tollgate into Kubernetes:
// inject (manifests), webhook (admission) and bootstrap (inside an
// injected pod).
func runKube(ctx context.Context, cmd string, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) error {
	switch cmd {
	case "inject":
		return runInject(args, stdin, stdout, stderr)
	case "webhook":
		return runWebhook(ctx, args, getenv, stderr)
	case "bootstrap":
		return runBootstrap(args, stdout, stderr)
	}
	return fmt.Errorf("unknown command %q", cmd)
}

// runInject is `tollgate inject -f in.yaml [-o out.yaml]`. It reads no
// TOLLGATE_* variables: those of a shell set up for `tollgate dev` (a local
// Redis, say) must not end up in manifests bound for a cluster.
func runInject(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	path := configPath(args, func(string) string { return "" })
	cfg, err := readInjectConfig(path)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("inject", flag.ContinueOnError)
	fs.SetOutput(stderr)
	in := fs.String("f", "", "Kubernetes manifests (YAML, any number of documents); - for standard input")
	out := fs.String("o", "-", "file for the result; - for standard output")
	fs.String("config", path, "YAML file of injection settings (keys: image, envoy-image, image-pull-policy, redis, clickhouse, env, args, resources, envoy-resources, kube-version)")
	defineFlags(fs, injectSettings(&cfg))
	if err := fs.Parse(args); err != nil {
		return usageError(fs, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *in == "" {
		return errors.New("inject: -f is required (- reads standard input)")
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	var data []byte
	if *in == "-" {
		data, err = io.ReadAll(stdin)
	} else {
		data, err = os.ReadFile(*in)
	}
	if err != nil {
		return fmt.Errorf("inject: %w", err)
	}
	result, err := inject.Manifests(data, cfg, func(note string) { fmt.Fprintln(stderr, "tollgate inject:", note) })
	if err != nil {
		return fmt.Errorf("inject: %w", err)
	}
	if *out == "-" {
		_, err = stdout.Write(result)
		return err
	}
	return writeFileAtomic(*out, result)
}

// runWebhook is `tollgate webhook`: the mutating admission webhook over
// TLS until ctx ends. Flags are also TOLLGATE_<FLAG> variables, as for
// serve.
func runWebhook(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	path := configPath(args, getenv)
	cfg, err := readInjectConfig(path)
	if err != nil {
		return err
	}
	var w webhookConfig
	settings := w.settings()
	resetSettings(settings) // not the injection settings: the file gave those
	settings = append(settings, injectSettings(&cfg)...)
	fs := flag.NewFlagSet("webhook", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.String("config", path, "YAML file of injection settings (see tollgate inject -h)")
	defineFlags(fs, settings)
	from := settingSources{}
	if err := settingsFromEnv(fs, settings, getenv, from); err != nil {
		return err
	}
	if err := parseFlags(fs, args, from); err != nil {
		return usageError(fs, err)
	}
	if w.tlsCert == "" || w.tlsKey == "" {
		return errors.New("webhook: --tls-cert and --tls-key are required (the API server calls webhooks over HTTPS only)")
	}
	if err := checkSettings(settings, from); err != nil {
		return err
	}
	log := newLogger(stderr, w.logLevel)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// In a cluster: the API server's version (injection needs native
	// sidecars) and the audit of pods admitted without injection.
	var auditor *inject.Auditor
	if kube, err := inject.InClusterClient(getenv); err != nil {
		log.Info("no Kubernetes API: the cluster's version is not checked and uninjected pods are not counted", "reason", err)
	} else {
		if cfg.KubeVersion == "" {
			vctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			v, err := kube.ServerVersion(vctx)
			cancel()
			if err != nil {
				log.Warn("cannot read the Kubernetes version; injecting without checking it", "err", err)
			} else {
				cfg.KubeVersion = v
				log.Info("kubernetes", "version", v)
			}
		}
		if w.auditInterval > 0 {
			auditor = inject.NewAuditor(kube, w.auditInterval, ownNamespace(getenv), reg, log)
		}
	}
	if err := inject.CheckKubernetesVersion(cfg.KubeVersion); err != nil {
		log.Error("pods that ask for the sidecars will be refused", "err", err)
	}
	handler, err := inject.NewWebhookWithMetrics(cfg, log, reg)
	if err != nil {
		return err
	}
	keyPair, err := inject.LoadKeyPair(w.tlsCert, w.tlsKey)
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", w.listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	readyLine := fmt.Sprintf("tollgate webhook ready listen=%s", lis.Addr())
	var metricsSrv *http.Server
	if w.metricsListen != "" {
		mlis, err := net.Listen("tcp", w.metricsListen)
		if err != nil {
			lis.Close()
			return fmt.Errorf("metrics-listen: %w", err)
		}
		mux := http.NewServeMux()
		// The same Host check as the processor's /metrics: a DNS-rebinding
		// page must not read the audit of uninjected pods.
		mux.Handle("GET /metrics", scrapeHostsOnly("", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})))
		metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		readyLine += fmt.Sprintf(" metrics=%s", mlis.Addr())
		go metricsSrv.Serve(mlis)
		defer metricsSrv.Close()
	}
	if auditor != nil {
		actx, stop := context.WithCancel(ctx)
		defer stop()
		go auditor.Run(actx)
	}
	// The API server gives a webhook at most 30 s; nothing here should
	// take longer, whoever the client is.
	srv := &http.Server{
		Handler:           handler,
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: keyPair.GetCertificate},
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// TLS handshake failures of port scanners and plain-HTTP probes.
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- ignoreClosed(srv.ServeTLS(lis, "", "")) }()
	fmt.Fprintln(stderr, readyLine)
	select {
	case <-ctx.Done():
	case err := <-errc:
		return err
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}

// runBootstrap is `tollgate bootstrap`, the first init container of an
// injected pod: it writes the Envoy sidecar bootstrap built into the binary.
func runBootstrap(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bootstrap", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "-", "file for Envoy's sidecar bootstrap; - for standard output")
	if err := fs.Parse(args); err != nil {
		return usageError(fs, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *out == "-" {
		_, err := stdout.Write(envoy.Sidecar)
		return err
	}
	return writeFileAtomic(*out, envoy.Sidecar)
}

// ownNamespace is the webhook's namespace: POD_NAMESPACE (downward API),
// else the service account's namespace file.
func ownNamespace(getenv func(string) string) string {
	if ns := getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	b, _ := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
	return strings.TrimSpace(string(b))
}

func readInjectConfig(path string) (inject.Config, error) {
	var cfg inject.Config
	if path == "" {
		return cfg, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("--config: %w", err)
	}
	if err := yaml.UnmarshalStrict(data, &cfg); err != nil {
		return cfg, fmt.Errorf("config file %s: %w", path, err)
	}
	return cfg, nil
}

// writeFileAtomic never leaves a half-written file for a reader (Envoy, or
// kubectl apply) to find.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename, a no-op
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
