package inject

import (
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Pod injects the sidecars into a pod template or a pod, changing meta and
// spec in place:
//
//   - initContainers: tollgate-bootstrap (writes Envoy's configuration),
//     then the tollgate and envoy native sidecars, in front of the
//     application's own init containers, which therefore already reach the
//     providers through Envoy (but after Istio's, see insertAt);
//   - volumes: Envoy's configuration, tollgate's data folder, the pod's
//     labels (downward API);
//   - every application container (not init containers): OPENAI_BASE_URL
//     and ANTHROPIC_BASE_URL pointing at Envoy, unless the container sets
//     them already (an explicit value may name another OpenAI-compatible
//     service, which the sidecar would misroute) or the pod template has
//     tollgate.io/keep-base-urls: "true";
//   - annotations tollgate.io/status: injected and tollgate.io/template-hash.
//
// It refuses Kubernetes versions without native sidecars (cfg.KubeVersion,
// when known) and pods whose containers use the sidecars' ports.
// It reports changed=false and touches nothing when SkipReason gives a
// reason. Whether the pod asked to be injected is the caller's decision
// (see Requested); the opt-out annotation is honoured here.
func Pod(meta *metav1.ObjectMeta, spec *corev1.PodSpec, w Workload, cfg Config) (changed bool, err error) {
	if err := cfg.Validate(); err != nil {
		return false, err
	}
	reason, err := SkipReason(meta, spec)
	if err != nil || reason != "" {
		return false, err
	}
	if err := CheckKubernetesVersion(cfg.KubeVersion); err != nil {
		return false, err
	}
	if err := portCollisions(spec); err != nil {
		return false, err
	}
	if name := meta.Annotations[AnnotationWorkloadName]; name != "" {
		w.Name = name
	}
	sc := newSidecars(w, cfg)
	at := insertAt(spec.InitContainers)
	spec.InitContainers = slices.Concat(spec.InitContainers[:at:at], sc.initContainers, spec.InitContainers[at:])
	spec.Volumes = append(spec.Volumes, sc.volumes...)
	if !isTrue(meta.Annotations[AnnotationKeepBaseURLs]) {
		for i := range spec.Containers {
			c := &spec.Containers[i]
			for _, v := range baseURLEnv() {
				if envIndex(c.Env, v.Name) < 0 {
					c.Env = append(c.Env, v)
				}
			}
		}
	}
	if meta.Annotations == nil {
		meta.Annotations = map[string]string{}
	}
	meta.Annotations[AnnotationStatus] = StatusInjected
	meta.Annotations[AnnotationTemplateHash] = sc.hash()
	return true, nil
}

// SkipReason says why Pod would leave a pod alone ("" if it would inject),
// or what makes injecting it impossible.
func SkipReason(meta *metav1.ObjectMeta, spec *corev1.PodSpec) (string, error) {
	if OptedOut(meta) {
		return "opted out (" + KeyInject + ": false)", nil
	}
	injected, err := alreadyInjected(meta, spec)
	if err != nil {
		return "", err
	}
	if injected {
		return "already injected", nil
	}
	if spec.HostNetwork {
		// Envoy's loopback ports would be the node's, shared with every
		// other host-network pod.
		return "uses the host network", nil
	}
	if len(spec.Containers) == 0 {
		return "", fmt.Errorf("the pod has no containers")
	}
	return "", nil
}

// alreadyInjected trusts the status annotation only together with the
// containers it stands for; any half-injected or colliding state is an
// error rather than a guess.
func alreadyInjected(meta *metav1.ObjectMeta, spec *corev1.PodSpec) (bool, error) {
	marked := meta.Annotations[AnnotationStatus] == StatusInjected
	var missing, present []string
	for _, name := range []string{BootstrapContainer, ProcessorContainer, EnvoyContainer} {
		if hasContainer(spec.InitContainers, name) {
			present = append(present, name)
		} else {
			missing = append(missing, name)
		}
	}
	switch {
	case marked && len(missing) == 0:
		return true, nil
	case marked:
		return false, fmt.Errorf("marked %s: %s but init containers %q are missing; remove the annotation to inject again",
			AnnotationStatus, StatusInjected, missing)
	case len(present) > 0:
		return false, fmt.Errorf("init containers %q already exist without the %s annotation", present, AnnotationStatus)
	}
	for _, name := range []string{BootstrapContainer, ProcessorContainer, EnvoyContainer} {
		if hasContainer(spec.Containers, name) {
			return false, fmt.Errorf("the pod already has a container named %q", name)
		}
	}
	for _, v := range spec.Volumes {
		switch v.Name {
		case envoyConfigVolume, podInfoVolume, dataVolume:
			return false, fmt.Errorf("the pod already has a volume named %q", v.Name)
		}
	}
	return false, nil
}

func hasContainer(cs []corev1.Container, name string) bool {
	for i := range cs {
		if cs[i].Name == name {
			return true
		}
	}
	return false
}
