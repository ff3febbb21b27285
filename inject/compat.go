package inject

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// MinKubernetesMinor is the oldest Kubernetes 1.x injection supports:
// native sidecars (init containers with restartPolicy: Always, the
// SidecarContainers feature) are beta and on by default from 1.29
// (KEP-753). Before, the API server drops restartPolicy from an init
// container, and the tollgate one, never exiting, holds the pod in Init
// for ever.
const MinKubernetesMinor = 29

// CheckKubernetesVersion accepts "1.30", "v1.30.2" or "v1.29.3-eks-…" (the
// gitVersion of the API server's /version), refusing versions without
// native sidecars. An empty version is not checked.
func CheckKubernetesVersion(v string) error {
	if v == "" {
		return nil
	}
	m := versionRE.FindStringSubmatch(v)
	if m == nil {
		return fmt.Errorf("kube-version: want a Kubernetes version such as 1.30, got %q", v)
	}
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	if major == 1 && minor < MinKubernetesMinor {
		return fmt.Errorf("Kubernetes %d.%d has no native sidecars (SidecarContainers is on by default from 1.%d); Tollgate's sidecars need Kubernetes 1.%d or later, or use the gateway",
			major, minor, MinKubernetesMinor, MinKubernetesMinor)
	}
	return nil
}

var versionRE = regexp.MustCompile(`^v?(\d+)\.(\d+)`)

// Ports the sidecars take in the pod's network namespace, which every
// container shares: an application listening on one of them, or probing
// it, collides with a sidecar.
var sidecarPorts = map[int32]string{
	ListenerPort:      "envoy's listener",
	EnvoyOpsPort:      "envoy's ops listener (probes, metrics)",
	ProcessorHTTPPort: "tollgate's health and metrics",
	// Not ext_proc nor Envoy's admin: they are Unix sockets (ExtProcSocket,
	// EnvoyAdminSocket), no port at all.
}

// portCollisions refuses a pod whose containers declare, or probe, a port
// the sidecars listen on. The sidecars' ports are fixed (envoy/sidecar.yaml
// is built into the image), so there is nothing to choose instead: the
// error names the container, the port and its user.
func portCollisions(spec *corev1.PodSpec) error {
	var errs []string
	check := func(c *corev1.Container, port int32, what string) {
		if user, ok := sidecarPorts[port]; ok {
			errs = append(errs, fmt.Sprintf("container %q %s port %d, which is %s", c.Name, what, port, user))
		}
	}
	for _, cs := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for i := range cs {
			c := &cs[i]
			for _, p := range c.Ports {
				if p.Protocol == "" || p.Protocol == corev1.ProtocolTCP {
					check(c, p.ContainerPort, "declares")
				}
			}
			for _, pr := range []*corev1.Probe{c.StartupProbe, c.ReadinessProbe, c.LivenessProbe} {
				if port, ok := probePort(c, pr); ok {
					check(c, port, "probes")
				}
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("port collision with the Tollgate sidecars: %s; move the application off ports %s",
			strings.Join(errs, "; "), portList())
	}
	return nil
}

// probePort is the number a probe connects to; a named port resolves
// through the container's own ports (already checked as declared).
func probePort(c *corev1.Container, p *corev1.Probe) (int32, bool) {
	if p == nil {
		return 0, false
	}
	var port intstr.IntOrString
	switch {
	case p.HTTPGet != nil:
		port = p.HTTPGet.Port
	case p.TCPSocket != nil:
		port = p.TCPSocket.Port
	case p.GRPC != nil:
		return p.GRPC.Port, true
	default:
		return 0, false
	}
	if port.Type == intstr.Int {
		return port.IntVal, true
	}
	return 0, false
}

func portList() string {
	var ports []int
	for p := range sidecarPorts {
		ports = append(ports, int(p))
	}
	slices.Sort(ports)
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = strconv.Itoa(p)
	}
	return strings.Join(s, ", ")
}

// Istio's init containers, by the names its injector gives them
// (pkg/kube/inject in istio/istio).
const (
	istioInit       = "istio-init"
	istioValidation = "istio-validation"
	istioProxy      = "istio-proxy"
	istioCoreDump   = "enable-core-dump"
)

// insertAt is where the sidecars go among the pod's init containers: after
// the ones Istio put first. Istio's injector orders them istio-init or
// istio-validation, then istio-proxy when it is a native sidecar, then the
// rest (reorderPod in istio/istio pkg/kube/inject/inject.go), so that every
// later container starts with the traffic redirection in place and the
// mesh proxy up. Tollgate's processor and Envoy call Redis, ClickHouse
// and the providers, so they belong in that "rest", first of it. (Without
// native sidecars Istio puts istio-init last; it stays last.)
// The API server calls mutating webhook configurations in name order
// (k8s.io/apiserver, mutating_webhook_manager.go), so Istio's
// (istio-sidecar-injector, istio-revision-tag-…) has run when Tollgate's
// sees the pod; if Istio injects later, it moves its own containers first.
func insertAt(inits []corev1.Container) int {
	i := 0
	for i < len(inits) {
		switch inits[i].Name {
		case istioInit, istioValidation, istioProxy, istioCoreDump:
			i++
			continue
		}
		break
	}
	return i
}

// Istio's annotation for inbound ports its proxy does not capture.
const istioExcludeInbound = "traffic.sidecar.istio.io/excludeInboundPorts"

// Warnings are what an injected pod may trip over without being wrong
// enough to refuse.
func Warnings(meta *metav1.ObjectMeta, spec *corev1.PodSpec) []string {
	var out []string
	if hasContainer(spec.InitContainers, istioProxy) || hasContainer(spec.Containers, istioProxy) {
		// Under STRICT mTLS the proxy refuses the kubelet's plain-HTTP
		// probes of any port it captures. Istio rewrites the probes it
		// finds when it injects, and its injector runs before this one,
		// so it never sees the sidecars'.
		excluded := map[string]bool{}
		for _, p := range strings.Split(meta.Annotations[istioExcludeInbound], ",") {
			excluded[strings.TrimSpace(p)] = true
		}
		var missing []string
		for _, p := range []int32{ProcessorHTTPPort, EnvoyOpsPort} {
			if !excluded[strconv.Itoa(int(p))] {
				missing = append(missing, strconv.Itoa(int(p)))
			}
		}
		if len(missing) > 0 {
			out = append(out, fmt.Sprintf("Istio sidecar found: under STRICT mTLS the kubelet's probes of the Tollgate sidecars (ports %s) fail unless the pod template has the annotation %s: \"%d,%d\" (they serve health and metrics only)",
				strings.Join(missing, ", "), istioExcludeInbound, ProcessorHTTPPort, EnvoyOpsPort))
		}
	}
	return out
}
