package inject

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Default images. DefaultImage is a placeholder until releases are
// published: pin it (--image or the config file) in production, since a
// floating tag changes what a restarted pod runs. DefaultEnvoyImage is
// pinned: the Envoy the configurations in envoy/ are validated for (Envoy
// 1.36 or later; the manifests in k8s/ run the same image, a test there
// keeps them equal).
const (
	DefaultImage      = "ghcr.io/tollgate-dev/tollgate:latest"
	DefaultEnvoyImage = "envoyproxy/envoy:v1.40.1"
)

// Config is what gets injected. The zero value is usable: empty fields take
// the defaults. As YAML (`--config`), keys are the names in the json tags.
type Config struct {
	// Image runs `tollgate serve` and `tollgate bootstrap`; its entrypoint
	// must be the tollgate binary.
	Image      string `json:"image,omitempty"`
	EnvoyImage string `json:"envoy-image,omitempty"`
	// ImagePullPolicy of the three containers; empty: Kubernetes' default.
	ImagePullPolicy corev1.PullPolicy `json:"image-pull-policy,omitempty"`
	// Redis and ClickHouse become TOLLGATE_REDIS and TOLLGATE_CLICKHOUSE of
	// the tollgate container. For a URL with a password, leave them empty
	// and set the variable from a Secret in Env instead.
	Redis      string `json:"redis,omitempty"`
	ClickHouse string `json:"clickhouse,omitempty"`
	// Env is added to the tollgate container; an entry named like one of
	// the injected variables replaces it.
	Env []corev1.EnvVar `json:"env,omitempty"`
	// Args are extra flags for `tollgate serve`.
	Args []string `json:"args,omitempty"`
	// KubeVersion is the cluster's Kubernetes version ("1.30"): injection
	// refuses one without native sidecars (CheckKubernetesVersion). Empty:
	// not checked. The webhook asks the API server for it.
	KubeVersion string `json:"kube-version,omitempty"`
	// Resources of the tollgate and envoy containers; set, they replace the
	// defaults whole.
	Resources      *corev1.ResourceRequirements `json:"resources,omitempty"`
	EnvoyResources *corev1.ResourceRequirements `json:"envoy-resources,omitempty"`
}

// Validate reports every problem at once, each naming its setting.
func (c Config) Validate() error {
	var errs []error
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
	switch c.ImagePullPolicy {
	case "", corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
	default:
		errs = append(errs, fmt.Errorf("image-pull-policy: want Always, IfNotPresent or Never, got %q", c.ImagePullPolicy))
	}
	for i, e := range c.Env {
		if e.Name == "" {
			errs = append(errs, fmt.Errorf("env[%d]: name is empty", i))
		}
	}
	if c.KubeVersion != "" && !versionRE.MatchString(c.KubeVersion) {
		errs = append(errs, fmt.Errorf("kube-version: want a Kubernetes version such as 1.30, got %q", c.KubeVersion))
	}
	// A later --role would win over the injected --role=sidecar and open
	// the API to the application.
	for i, a := range c.Args {
		if name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "="); strings.HasPrefix(a, "-") && name == "role" {
			errs = append(errs, fmt.Errorf("args[%d]: %q: injected processors always run with --role=sidecar", i, a))
		}
	}
	errs = append(errs, c.migrateErrors()...)
	return errors.Join(errs...)
}

// migrateErrors refuses settings that would have every injected processor
// migrate the ClickHouse schema: that needs DDL rights, which belong to
// `tollgate migrate` alone (the Job in k8s/migrate), not to every pod of
// the mesh.
func (c Config) migrateErrors() []error {
	var errs []error
	for i, a := range c.Args {
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "migrate" {
			continue
		}
		if on, err := strconv.ParseBool(val); !hasVal || err != nil || on {
			errs = append(errs, fmt.Errorf("args[%d]: %q: injected processors do not migrate the ClickHouse schema; run tollgate migrate (k8s/migrate) instead", i, a))
		}
	}
	for i, e := range c.Env {
		if e.Name != "TOLLGATE_MIGRATE" {
			continue
		}
		if on, err := strconv.ParseBool(e.Value); e.ValueFrom != nil || err != nil || on {
			errs = append(errs, fmt.Errorf("env[%d]: TOLLGATE_MIGRATE: injected processors do not migrate the ClickHouse schema; run tollgate migrate (k8s/migrate) instead", i))
		}
	}
	return errs
}

func (c Config) image() string      { return or(c.Image, DefaultImage) }
func (c Config) envoyImage() string { return or(c.EnvoyImage, DefaultEnvoyImage) }

func (c Config) processorResources() corev1.ResourceRequirements {
	if c.Resources != nil {
		return *c.Resources.DeepCopy()
	}
	return resources("100m", "128Mi", "512Mi")
}

// Envoy holds whole request and response bodies (BUFFERED ext_proc, up to
// 32 MiB each) for every call in flight.
func (c Config) envoyResources() corev1.ResourceRequirements {
	if c.EnvoyResources != nil {
		return *c.EnvoyResources.DeepCopy()
	}
	return resources("100m", "128Mi", "1Gi")
}

// resources requests cpu and memory and caps memory only: a CPU limit
// throttles the proxy in the request path.
func resources(cpu, memory, memoryLimit string) corev1.ResourceRequirements {
	return corev1.ResourceRequirements{
		Requests: corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse(cpu),
			corev1.ResourceMemory: resource.MustParse(memory),
		},
		Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(memoryLimit)},
	}
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
