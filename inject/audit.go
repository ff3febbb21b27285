package inject

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
)

// KubeClient reads from the Kubernetes API with the pod's service account:
// the little the injector needs (the server's version, lists of namespaces
// and pods) does not warrant client-go.
type KubeClient struct {
	base      string // https://host:port
	tokenFile string // read per request: bound tokens are rotated by the kubelet
	http      *http.Client
}

// Where the kubelet mounts a pod's service account credentials
// (https://kubernetes.io/docs/tasks/run-application/access-api-from-pod/).
const serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// InClusterClient is a client for the API server the pod runs under, or
// an error when it does not run in a cluster (no KUBERNETES_SERVICE_HOST)
// or has no service account token mounted.
func InClusterClient(getenv func(string) string) (*KubeClient, error) {
	host, port := getenv("KUBERNETES_SERVICE_HOST"), getenv("KUBERNETES_SERVICE_PORT")
	if host == "" || port == "" {
		return nil, errors.New("not in a Kubernetes pod (KUBERNETES_SERVICE_HOST is not set)")
	}
	ca, err := os.ReadFile(serviceAccountDir + "/ca.crt")
	if err != nil {
		return nil, fmt.Errorf("service account: %w (is automountServiceAccountToken off?)", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(ca) {
		return nil, errors.New("service account: no certificate in ca.crt")
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}
	return NewKubeClient("https://"+net.JoinHostPort(host, port), serviceAccountDir+"/token", &http.Client{Transport: tr, Timeout: 30 * time.Second}), nil
}

// NewKubeClient talks to base with the bearer token in tokenFile (none if
// empty).
func NewKubeClient(base, tokenFile string, client *http.Client) *KubeClient {
	return &KubeClient{base: strings.TrimSuffix(base, "/"), tokenFile: tokenFile, http: client}
}

func (k *KubeClient) get(ctx context.Context, path string, query url.Values, out any) error {
	u := k.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if k.tokenFile != "" {
		token, err := os.ReadFile(k.tokenFile)
		if err != nil {
			return fmt.Errorf("service account token: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	}
	resp, err := k.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, strings.TrimSpace(string(b)))
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// ServerVersion is the API server's gitVersion ("v1.30.2"), from /version,
// which every authenticated client may read.
func (k *KubeClient) ServerVersion(ctx context.Context) (string, error) {
	var v struct {
		GitVersion string `json:"gitVersion"`
	}
	if err := k.get(ctx, "/version", nil, &v); err != nil {
		return "", err
	}
	return v.GitVersion, nil
}

// Namespaces the pod webhook never sees (k8s/injector/mutatingwebhook.yaml):
// a pod labeled there is not expected to be injected.
var neverInjected = map[string]bool{"kube-system": true, "kube-node-lease": true}

// Auditor counts running pods that asked for the sidecars and run without
// them. The webhook cannot see those: the API server admitted them without
// calling it (caBundle wrong, injector down under failurePolicy Ignore,
// the pod created before the label or the injector) or they were created
// before their namespace opted in. So it lists what should be injected —
// pods of namespaces labeled tollgate.io/inject=enabled and pods labeled
// so elsewhere — and looks for the tollgate.io/status annotation, every
// Interval. It needs list on namespaces and pods (ClusterRole in
// k8s/injector/rbac.yaml).
type Auditor struct {
	Client   *KubeClient
	Interval time.Duration
	// OwnNamespace is the injector's, which its webhooks skip.
	OwnNamespace string
	Log          *slog.Logger

	uninjected *prometheus.GaugeVec
	errors     prometheus.Counter
	lastRun    prometheus.Gauge
}

// NewAuditor registers the auditor's metrics with reg.
func NewAuditor(client *KubeClient, interval time.Duration, ownNamespace string, reg prometheus.Registerer, log *slog.Logger) *Auditor {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Auditor{Client: client, Interval: interval, OwnNamespace: ownNamespace, Log: log,
		uninjected: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tollgate_injector_uninjected_pods",
			Help: "Running or pending pods that asked for the Tollgate sidecars (their namespace's or their own tollgate.io/inject label) and have none, by namespace, at the last audit.",
		}, []string{"namespace"}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tollgate_injector_audit_errors_total",
			Help: "Audits of injected pods that failed (the Kubernetes API refused or was unreachable).",
		}),
		lastRun: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tollgate_injector_audit_last_success_timestamp_seconds",
			Help: "When the last audit of injected pods succeeded (Unix time).",
		}),
	}
	reg.MustRegister(a.uninjected, a.errors, a.lastRun)
	return a
}

// Run audits at once and then every Interval until ctx ends.
func (a *Auditor) Run(ctx context.Context) {
	t := time.NewTicker(a.Interval)
	defer t.Stop()
	for {
		if err := a.Audit(ctx); err != nil && ctx.Err() == nil {
			a.errors.Inc()
			a.Log.Warn("audit of injected pods failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Audit lists the pods once and sets the gauge.
func (a *Auditor) Audit(ctx context.Context) error {
	var namespaces struct {
		Items []corev1.Namespace `json:"items"`
	}
	if err := a.Client.get(ctx, "/api/v1/namespaces", url.Values{"labelSelector": {KeyInject + "=enabled"}}, &namespaces); err != nil {
		return err
	}
	counts := map[string]int{}
	optedIn := map[string]bool{}
	for _, ns := range namespaces.Items {
		if ns.Name == a.OwnNamespace || neverInjected[ns.Name] {
			continue // the namespace webhook's selector would match, but see mutatingwebhook.yaml
		}
		optedIn[ns.Name] = true
		counts[ns.Name] = 0
		var pods podList
		if err := a.Client.get(ctx, "/api/v1/namespaces/"+url.PathEscape(ns.Name)+"/pods", fromCache, &pods); err != nil {
			return err
		}
		for i := range pods.Items {
			if missing(&pods.Items[i], true) {
				counts[ns.Name]++
			}
		}
	}
	var labeled podList
	if err := a.Client.get(ctx, "/api/v1/pods", url.Values{"labelSelector": {KeyInject + "=enabled"}, "resourceVersion": {"0"}}, &labeled); err != nil {
		return err
	}
	for i := range labeled.Items {
		p := &labeled.Items[i]
		if optedIn[p.Namespace] || p.Namespace == a.OwnNamespace || neverInjected[p.Namespace] {
			continue
		}
		if missing(p, false) {
			counts[p.Namespace]++
		}
	}
	a.uninjected.Reset()
	for ns, n := range counts {
		a.uninjected.WithLabelValues(ns).Set(float64(n))
	}
	a.lastRun.SetToCurrentTime()
	return nil
}

// fromCache: resourceVersion=0 lets the API server answer from its watch
// cache instead of etcd; a list a little stale is fine for a count.
// (https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions)
var fromCache = url.Values{"resourceVersion": {"0"}}

type podList struct {
	Items []corev1.Pod `json:"items"`
}

// missing: the pod asked for the sidecars, could have them, is not done,
// and has none.
func missing(p *corev1.Pod, namespaceSelected bool) bool {
	if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed || p.DeletionTimestamp != nil {
		return false
	}
	if !Requested(&p.ObjectMeta, namespaceSelected) || p.Spec.HostNetwork {
		return false
	}
	return p.Annotations[AnnotationStatus] != StatusInjected || !hasContainer(p.Spec.InitContainers, ProcessorContainer)
}
