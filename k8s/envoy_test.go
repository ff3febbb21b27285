package k8s_test

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/tollgate-dev/tollgate/envoy"
)

// envoyCopies maps each Envoy bootstrap copied into a base (kustomize
// reads no file outside its folder) to its source in envoy/.
var envoyCopies = map[string][]byte{
	"gateway/envoy.yaml": envoy.Gateway,
}

// TestEnvoyCopiesMatch: the ConfigMaps carry exactly the configurations
// envoy/ tests.
func TestEnvoyCopiesMatch(t *testing.T) {
	tr := loadTree(t)
	for f := range tr.generatorInputs() {
		if strings.HasSuffix(f, "envoy.yaml") && envoyCopies[f] == nil {
			t.Errorf("%s looks like an Envoy bootstrap; add it to envoyCopies", f)
		}
	}
	for f, src := range envoyCopies {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(data, src) {
			t.Errorf("%s differs from its source in envoy/; copy it again", f)
		}
	}
}

// TestPodsMatchTheirEnvoy: in a pod with Envoy and Tollgate, the ports the
// manifests use are the ones the bootstrap defines.
func TestPodsMatchTheirEnvoy(t *testing.T) {
	tr := loadTree(t)
	checked := 0
	for base := range tr.bases {
		for _, d := range of[appsv1.Deployment](tr, base) {
			spec := &d.Spec.Template.Spec
			var ev, tg *corev1.Container
			for _, c := range containers(tr, base) {
				if c.pod != spec {
					continue
				}
				if isEnvoy(c.c) {
					ev = c.c
				}
				if isTollgate(c.c) {
					tg = c.c
				}
			}
			if ev == nil {
				continue
			}
			checked++
			cfg := envoyConfigOf(t, base, spec, ev)
			if tg == nil {
				t.Errorf("%s/%s: Envoy without Tollgate fails every call", base, d.Name)
				continue
			}
			if got, want := flagValue(tg.Args, "--grpc-listen"), cfg.clusterEndpoint(t, "tollgate"); got != want {
				t.Errorf("%s/%s: Tollgate listens for gRPC on %q, Envoy calls %q", base, d.Name, got, want)
			}
			if got, want := int(containerPort(ev, "envoy-ops")), cfg.listenerPort(t, "ops"); got != want {
				t.Errorf("%s/%s: Envoy's envoy-ops port is %d, the ops listener %d", base, d.Name, got, want)
			}
			if p := ev.ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/ready" {
				t.Errorf("%s/%s: Envoy's readiness probe must GET /ready", base, d.Name)
			}
			if llm := containerPort(ev, "llm"); llm != 0 && int(llm) != cfg.listenerPort(t, "llm_egress") {
				t.Errorf("%s/%s: Envoy's llm port is %d, the egress listener %d", base, d.Name, llm, cfg.listenerPort(t, "llm_egress"))
			}
			// Envoy must shed load before the kernel kills it.
			if heap := cfg.heapCap(); heap > 0 && heap >= ev.Resources.Limits.Memory().Value() {
				t.Errorf("%s/%s: Envoy's heap cap %d is not below its memory limit %s", base, d.Name, heap, ev.Resources.Limits.Memory())
			}
		}
	}
	if checked == 0 {
		t.Fatal("no pod with Envoy found")
	}
}

// envoyConfig is a bootstrap read as plain YAML: enough to compare ports,
// without the schema (envoy/ tests that).
type envoyConfig map[string]any

// envoyConfigOf finds the bootstrap a container reads, the file after -c in
// its arguments: in a ConfigMap volume mounted there, or written there by
// `tollgate bootstrap` (envoy.Sidecar) in an init container.
func envoyConfigOf(t *testing.T, base string, spec *corev1.PodSpec, c *corev1.Container) envoyConfig {
	t.Helper()
	path := flagValue(c.Args, "-c")
	var data []byte
	for _, ic := range spec.InitContainers {
		if len(ic.Args) > 0 && ic.Args[0] == "bootstrap" && flagValue(ic.Args, "--out") == path {
			data = envoy.Sidecar
		}
	}
	if cm, key, ok := mountedConfigMap(spec, c, path); ok {
		var err error
		if data, err = os.ReadFile(generatorFile(t, base, cm, key)); err != nil {
			t.Fatal(err)
		}
	}
	if data == nil {
		t.Fatalf("%s/%s: cannot find the bootstrap %q in a ConfigMap volume or a bootstrap container", base, c.Name, path)
	}
	var cfg envoyConfig
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// mountedConfigMap finds the ConfigMap volume a container sees path in,
// and the key path names in it ("" for the mount point itself).
func mountedConfigMap(spec *corev1.PodSpec, c *corev1.Container, path string) (configMap, key string, ok bool) {
	for _, m := range c.VolumeMounts {
		mount := strings.TrimSuffix(m.MountPath, "/")
		key, found := strings.CutPrefix(path, mount+"/")
		if !found {
			if path != mount {
				continue
			}
			key = ""
		}
		for _, v := range spec.Volumes {
			if v.Name == m.Name && v.ConfigMap != nil {
				return v.ConfigMap.Name, key, true
			}
		}
	}
	return "", "", false
}

// generatorFile returns the file a base's generator turns into key.
func generatorFile(t *testing.T, base, configMap, key string) string {
	t.Helper()
	k := loadKustomization(t, base+"/kustomization.yaml")
	for _, g := range k.ConfigMapGenerator {
		if g.Name != configMap {
			continue
		}
		for _, f := range g.Files {
			if f == key || strings.HasSuffix(f, "/"+key) {
				return base + "/" + f
			}
		}
	}
	t.Fatalf("%s: no generator makes %s with key %s", base, configMap, key)
	return ""
}

func (c envoyConfig) clusterEndpoint(t *testing.T, name string) string {
	t.Helper()
	for _, cl := range list(dig(map[string]any(c), "static_resources", "clusters")) {
		if dig(cl, "name") == name {
			addr := dig(cl, "load_assignment", "endpoints", 0, "lb_endpoints", 0, "endpoint", "address")
			// A pipe, spelled as --grpc-listen spells a Unix socket.
			if path, ok := dig(addr, "pipe", "path").(string); ok {
				return "unix://" + path
			}
			sa := dig(addr, "socket_address")
			return net.JoinHostPort(fmt.Sprint(dig(sa, "address")), fmt.Sprint(dig(sa, "port_value")))
		}
	}
	t.Fatalf("no cluster %q", name)
	return ""
}

func (c envoyConfig) listenerPort(t *testing.T, name string) int {
	t.Helper()
	for _, l := range list(dig(map[string]any(c), "static_resources", "listeners")) {
		if dig(l, "name") == name {
			if p, ok := dig(l, "address", "socket_address", "port_value").(float64); ok {
				return int(p)
			}
		}
	}
	t.Fatalf("no listener %q", name)
	return 0
}

// heapCap is the fixed_heap resource monitor's limit, 0 if none.
func (c envoyConfig) heapCap() int64 {
	for _, m := range list(dig(map[string]any(c), "overload_manager", "resource_monitors")) {
		if v, ok := dig(m, "typed_config", "max_heap_size_bytes").(float64); ok {
			return int64(v)
		}
	}
	return 0
}

// dig walks decoded YAML by map keys and list indexes; nil if absent.
func dig(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

// flagValue returns a flag's value from arguments written "--f=v" or
// "--f v"; "" if absent.
func flagValue(args []string, flag string) string {
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v
		}
		if a == flag && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// TestExtProcSocketOnlyInTheSidecars: where Tollgate serves ext_proc on a
// Unix socket (the sidecar pods), the socket's volume is mounted, at the
// same place, into Tollgate and Envoy and into no other container: the
// application shares the pod's loopback, not that directory. Envoy runs in
// Tollgate's group, since the socket is 0660.
func TestExtProcSocketOnlyInTheSidecars(t *testing.T) {
	tr := loadTree(t)
	checked := 0
	for base := range tr.bases {
		for _, d := range of[appsv1.Deployment](tr, base) {
			spec := &d.Spec.Template.Spec
			tg, ev := tollgateAndEnvoy(tr, base, spec)
			if tg == nil {
				continue
			}
			socket, ok := strings.CutPrefix(flagValue(tg.Args, "--grpc-listen"), "unix://")
			if !ok {
				continue
			}
			checked++
			where := func(c *corev1.Container) (vol, dir string) {
				for _, m := range c.VolumeMounts {
					if strings.HasPrefix(socket, strings.TrimSuffix(m.MountPath, "/")+"/") {
						return m.Name, m.MountPath
					}
				}
				return "", ""
			}
			vol, dir := where(tg)
			if vol == "" {
				t.Errorf("%s/%s: Tollgate listens on %s, in no volume it mounts", base, d.Name, socket)
				continue
			}
			if ev == nil {
				t.Errorf("%s/%s: no Envoy beside Tollgate", base, d.Name)
				continue
			}
			if v, p := where(ev); v != vol || p != dir {
				t.Errorf("%s/%s: Envoy must mount %s at %s to reach %s (has %q at %q)", base, d.Name, vol, dir, socket, v, p)
			}
			for _, c := range containers(tr, base) {
				if c.pod != spec || c.c == tg || c.c == ev {
					continue
				}
				for _, m := range c.c.VolumeMounts {
					if m.Name == vol {
						t.Errorf("%s/%s: container %s mounts %s: it could open an ext_proc stream and pose as Envoy", base, d.Name, c.c.Name, vol)
					}
				}
			}
			group := func(c *corev1.Container) *int64 {
				if c.SecurityContext == nil {
					return nil
				}
				return c.SecurityContext.RunAsGroup
			}
			if g1, g2 := group(tg), group(ev); g1 == nil || g2 == nil || *g1 != *g2 {
				t.Errorf("%s/%s: Tollgate and Envoy run in different groups: Envoy cannot connect to the 0660 socket", base, d.Name)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no pod with Tollgate on a Unix socket found")
	}
}

// TestEnvoyAdminOnlyInEnvoy: in a pod where an application shares Envoy's
// loopback (a sidecar pod: Tollgate serves ext_proc on a Unix socket),
// Envoy's admin API (stop, drain, runtime changes, configuration dumps) is
// a Unix socket too, in a volume Envoy mounts writable (it binds the
// socket) and no other container mounts: not Tollgate, not the bootstrap
// container, not the application.
func TestEnvoyAdminOnlyInEnvoy(t *testing.T) {
	tr := loadTree(t)
	checked := 0
	for base := range tr.bases {
		for _, d := range of[appsv1.Deployment](tr, base) {
			spec := &d.Spec.Template.Spec
			tg, ev := tollgateAndEnvoy(tr, base, spec)
			if tg == nil || ev == nil || !strings.HasPrefix(flagValue(tg.Args, "--grpc-listen"), "unix://") {
				continue
			}
			checked++
			cfg := envoyConfigOf(t, base, spec, ev)
			socket, ok := dig(map[string]any(cfg), "admin", "address", "pipe", "path").(string)
			if !ok {
				t.Errorf("%s/%s: Envoy's admin API is not a Unix socket (%v): the application shares this pod's loopback", base, d.Name, dig(map[string]any(cfg), "admin", "address"))
				continue
			}
			if got := cfg.clusterEndpoint(t, "envoy_admin"); got != "unix://"+socket {
				t.Errorf("%s/%s: the ops listener's envoy_admin cluster reaches %s, the admin API is %s", base, d.Name, got, socket)
			}
			vol := ""
			for _, m := range ev.VolumeMounts {
				if strings.HasPrefix(socket, strings.TrimSuffix(m.MountPath, "/")+"/") {
					vol = m.Name
					if m.ReadOnly {
						t.Errorf("%s/%s: Envoy mounts %s read-only and cannot bind its admin socket %s", base, d.Name, m.Name, socket)
					}
				}
			}
			if vol == "" {
				t.Errorf("%s/%s: Envoy's admin socket %s is in no volume Envoy mounts", base, d.Name, socket)
				continue
			}
			for _, v := range spec.Volumes {
				if v.Name == vol && v.EmptyDir == nil {
					t.Errorf("%s/%s: %s holds Envoy's admin socket; want an emptyDir of this pod", base, d.Name, vol)
				}
			}
			for _, c := range containers(tr, base) {
				if c.pod != spec || c.c == ev {
					continue
				}
				for _, m := range c.c.VolumeMounts {
					if m.Name == vol {
						t.Errorf("%s/%s: container %s mounts %s: it could stop, drain or reconfigure Envoy through its admin API", base, d.Name, c.c.Name, vol)
					}
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no sidecar pod (Tollgate on a Unix socket, beside Envoy) found")
	}
}
