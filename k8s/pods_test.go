package k8s_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/tollgate-dev/tollgate/inject"
)

// tollgatePlaceholder is the one image allowed without a pinned version:
// the project's own, until releases are published (README.md says so).
const tollgatePlaceholder = "ghcr.io/tollgate-dev/tollgate:latest"

// container is a container of a Deployment's or a Job's pod, init or not.
type container struct {
	workload string
	pod      *corev1.PodSpec
	c        *corev1.Container
	init     bool
}

func (c container) String() string { return c.workload + "/" + c.c.Name }

func isTollgate(c *corev1.Container) bool {
	return strings.HasPrefix(c.Image, "ghcr.io/tollgate-dev/tollgate:")
}
func isEnvoy(c *corev1.Container) bool { return strings.HasPrefix(c.Image, "envoyproxy/envoy:") }

// tollgateAndEnvoy finds the Tollgate and Envoy containers of one pod spec
// of base; nil when it has none.
func tollgateAndEnvoy(tr *tree, base string, spec *corev1.PodSpec) (tg, ev *corev1.Container) {
	for _, c := range containers(tr, base) {
		if c.pod == spec && c.c.Name == "tollgate" {
			tg = c.c
		}
		if c.pod == spec && isEnvoy(c.c) {
			ev = c.c
		}
	}
	return tg, ev
}

func containers(tr *tree, base string) []container {
	var out []container
	for _, d := range of[appsv1.Deployment](tr, base) {
		spec := &d.Spec.Template.Spec
		for i := range spec.InitContainers {
			out = append(out, container{d.Name, spec, &spec.InitContainers[i], true})
		}
		for i := range spec.Containers {
			out = append(out, container{d.Name, spec, &spec.Containers[i], false})
		}
	}
	for _, j := range of[batchv1.Job](tr, base) {
		spec := &j.Spec.Template.Spec
		for i := range spec.InitContainers {
			out = append(out, container{j.Name, spec, &spec.InitContainers[i], true})
		}
		for i := range spec.Containers {
			out = append(out, container{j.Name, spec, &spec.Containers[i], false})
		}
	}
	return out
}

// TestNothingRunsAsRoot: every container is non-root, cannot gain
// privileges, has no capabilities and cannot write its image.
func TestNothingRunsAsRoot(t *testing.T) {
	for _, c := range containers(loadTree(t), "") {
		sc, psc := c.c.SecurityContext, c.pod.SecurityContext
		nonRoot := psc != nil && psc.RunAsNonRoot != nil && *psc.RunAsNonRoot
		if sc != nil && sc.RunAsNonRoot != nil {
			nonRoot = *sc.RunAsNonRoot
		}
		if !nonRoot {
			t.Errorf("%s: runAsNonRoot must be true (pod or container)", c)
		}
		uid := int64(-1) // unset: the image's user, which runAsNonRoot checks
		if psc != nil && psc.RunAsUser != nil {
			uid = *psc.RunAsUser
		}
		if sc != nil && sc.RunAsUser != nil {
			uid = *sc.RunAsUser
		}
		if uid == 0 {
			t.Errorf("%s: runs as uid 0", c)
		}
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("%s: allowPrivilegeEscalation must be false", c)
		}
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("%s: readOnlyRootFilesystem must be true", c)
		}
		if sc == nil || sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || len(sc.Capabilities.Add) > 0 {
			t.Errorf("%s: capabilities must drop ALL and add none", c)
		}
		if sc != nil && sc.Privileged != nil && *sc.Privileged {
			t.Errorf("%s: privileged", c)
		}
	}
}

// TestImagesPinned: a tag that names a version (or a digest), except the
// documented Tollgate placeholder.
func TestImagesPinned(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), tollgatePlaceholder) {
		t.Errorf("README.md must document the placeholder image %s", tollgatePlaceholder)
	}
	for _, c := range containers(loadTree(t), "") {
		img := c.c.Image
		if img == tollgatePlaceholder || strings.Contains(img, "@sha256:") {
			continue
		}
		name, tag, ok := strings.Cut(img[strings.LastIndex(img, "/")+1:], ":")
		if !ok || tag == "" || tag == "latest" || !strings.ContainsAny(tag, "0123456789") || strings.HasSuffix(tag, "-latest") {
			t.Errorf("%s: image %q is not pinned to a version (%s)", c, img, name)
		}
	}
}

// TestProbesAndResources: every container of ours that serves (Tollgate,
// Envoy, the webhook) says when it is ready; a regular one also when it is
// alive, a native sidecar when it has started. Every container asks for
// what it needs and has a memory ceiling.
func TestProbesAndResources(t *testing.T) {
	for _, c := range containers(loadTree(t), "") {
		if (isTollgate(c.c) || isEnvoy(c.c)) && len(c.c.Ports) > 0 {
			if c.c.ReadinessProbe == nil {
				t.Errorf("%s: a readiness probe is required", c)
			}
			if !c.init && c.c.LivenessProbe == nil {
				t.Errorf("%s: a liveness probe is required", c)
			}
			if c.init && c.c.StartupProbe == nil {
				t.Errorf("%s: a native sidecar needs a startup probe, or the application starts before it is ready", c)
			}
		}
		r := c.c.Resources
		if r.Requests.Cpu().IsZero() || r.Requests.Memory().IsZero() {
			t.Errorf("%s: cpu and memory requests are required", c)
		}
		if r.Limits.Memory().IsZero() {
			t.Errorf("%s: a memory limit is required", c)
		}
		for _, p := range []*corev1.Probe{c.c.ReadinessProbe, c.c.LivenessProbe, c.c.StartupProbe} {
			if p == nil {
				continue
			}
			if port := probePort(p); port.StrVal != "" && containerPort(c.c, port.StrVal) == 0 {
				t.Errorf("%s: a probe uses port %q, which the container does not declare", c, port.StrVal)
			}
		}
	}
}

// TestNativeSidecars: in the sidecar example Tollgate and Envoy are init
// containers that keep running, after the bootstrap that writes Envoy's
// configuration and in the order the injector promises (Envoy fails
// closed without the processor); the application calls the local Envoy.
func TestNativeSidecars(t *testing.T) {
	tr := loadTree(t)
	var order []string
	for _, c := range containers(tr, "sidecar-example") {
		native := c.c.RestartPolicy != nil && *c.c.RestartPolicy == corev1.ContainerRestartPolicyAlways
		switch {
		case c.init:
			order = append(order, c.c.Name)
			if native != (c.c.Name != inject.BootstrapContainer) {
				t.Errorf("%s: restartPolicy Always is for the sidecars, not the bootstrap", c)
			}
		case native:
			t.Errorf("%s: restartPolicy on a regular container", c)
		default:
			env := map[string]string{}
			for _, e := range c.c.Env {
				env[e.Name] = e.Value
			}
			origin := fmt.Sprintf("http://127.0.0.1:%d", inject.ListenerPort)
			for name, want := range map[string]string{"OPENAI_BASE_URL": origin + "/v1", "ANTHROPIC_BASE_URL": origin} {
				if env[name] != want {
					t.Errorf("%s: %s = %q, want %q", c, name, env[name], want)
				}
			}
		}
	}
	want := []string{inject.BootstrapContainer, inject.ProcessorContainer, inject.EnvoyContainer}
	if strings.Join(order, ",") != strings.Join(want, ",") {
		t.Errorf("init containers %v, want %v", order, want)
	}
}

// TestOneEnvoyVersion: the gateway, the sidecars the injector adds (by
// default too) and the example all run the same Envoy, the one envoy/ is
// written for, and the documentation names it.
func TestOneEnvoyVersion(t *testing.T) {
	tr := loadTree(t)
	images := map[string][]string{}
	for _, c := range containers(tr, "") {
		if isEnvoy(c.c) {
			images[c.c.Image] = append(images[c.c.Image], c.String())
		}
		if len(c.c.Args) > 0 && c.c.Args[0] == "webhook" {
			img := flagValue(c.c.Args, "--envoy-image")
			if img == "" {
				t.Errorf("%s: set --envoy-image; the injector's default is not pinned", c)
			}
			images[img] = append(images[img], c.String()+" --envoy-image")
		}
	}
	var cfg inject.Config
	readStrict(t, "sidecar-example/testdata/inject-config.yaml", &cfg)
	images[cfg.EnvoyImage] = append(images[cfg.EnvoyImage], "sidecar-example/testdata/inject-config.yaml")
	// The injector's default: `tollgate inject` without --envoy-image.
	images[inject.DefaultEnvoyImage] = append(images[inject.DefaultEnvoyImage], "inject.DefaultEnvoyImage")
	var goldenCfg inject.Config
	readStrict(t, "../inject/testdata/config.yaml", &goldenCfg)
	images[goldenCfg.EnvoyImage] = append(images[goldenCfg.EnvoyImage], "inject/testdata/config.yaml")
	if len(images) != 1 {
		t.Errorf("more than one Envoy image: %v", images)
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "`"+inject.DefaultEnvoyImage+"`") {
		t.Errorf("k8s/README.md must name the Envoy image, %s", inject.DefaultEnvoyImage)
	}
	if top, err := os.ReadFile("../README.md"); err != nil || !strings.Contains(string(top), "`"+inject.DefaultEnvoyImage+"`") {
		t.Errorf("README.md must name the Envoy image, %s (%v)", inject.DefaultEnvoyImage, err)
	}
	for img := range images {
		_, tag, _ := strings.Cut(img, ":")
		if !atLeast(tag, 1, 36) {
			t.Errorf("Envoy image %s: the configurations need Envoy 1.36 or later", img)
		}
	}
}

// atLeast reports whether a tag like v1.40.1 names major.minor or later.
func atLeast(tag string, major, minor int) bool {
	var ma, mi int
	if _, err := fmt.Sscanf(tag, "v%d.%d", &ma, &mi); err != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
}
