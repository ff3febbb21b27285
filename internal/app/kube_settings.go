package app

import (
	"fmt"
	"time"

	"github.com/tollgate-dev/tollgate/inject"
)

// injectSettings are the settings inject and webhook both take as flags
// (webhook also as TOLLGATE_<FLAG> variables). They are fields of
// inject.Config, whose YAML keys (inject/config.go) carry the same names;
// the defaults are inject's, applied when a field is empty.
func injectSettings(c *inject.Config) []setting {
	return []setting{
		str(&c.KubeVersion, "kube-version", "", fmt.Sprintf("the cluster's Kubernetes version (such as 1.30); refused below 1.%d, which lacks native sidecars (webhook: asked of the API server)", inject.MinKubernetesMinor)),
		str(&c.Image, "image", "", "tollgate image of the injected containers (default "+inject.DefaultImage+")"),
		str(&c.EnvoyImage, "envoy-image", "", "Envoy image of the injected sidecar (default "+inject.DefaultEnvoyImage+")"),
		str(&c.Redis, "redis", "", "Redis URL for the injected processor (TOLLGATE_REDIS)"),
		str(&c.ClickHouse, "clickhouse", "", "ClickHouse URL for the injected processor (TOLLGATE_CLICKHOUSE)"),
	}
}

// webhookConfig is what webhook takes besides the injection settings: a
// flag and a TOLLGATE_<FLAG> variable each, no key in the --config file
// (that file holds injection settings only).
type webhookConfig struct {
	listen        string
	tlsCert       string
	tlsKey        string
	logLevel      string
	metricsListen string
	auditInterval time.Duration
}

func (w *webhookConfig) settings() []setting {
	return []setting{
		str(&w.listen, "listen", ":8443", "HTTPS listen address"),
		str(&w.tlsCert, "tls-cert", "", "TLS certificate (PEM); reloaded when the file changes"),
		str(&w.tlsKey, "tls-key", "", "TLS private key (PEM); reloaded when the file changes"),
		str(&w.logLevel, "log-level", "info", "debug, info, warn or error", logLevel),
		str(&w.metricsListen, "metrics-listen", "", "plain-HTTP address for /metrics (the audit of uninjected pods; answers only a Host that is an IP address or localhost); empty: none"),
		timeDuration(&w.auditInterval, "audit-interval", time.Minute, "how often to count opted-in pods running without the sidecars (in a cluster; 0: never)"),
	}
}
