package inject

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/tollgate-dev/tollgate/envoy"
)

// TestInjectMatchesSidecarBootstrap: the addresses the injected containers
// and the application's base URLs rely on are the ones envoy/sidecar.yaml
// (what tollgate-bootstrap writes) really uses.
func TestInjectMatchesSidecarBootstrap(t *testing.T) {
	js, err := yaml.YAMLToJSON(envoy.Sidecar)
	if err != nil {
		t.Fatal(err)
	}
	var b struct {
		Admin struct {
			Address sockAddr `json:"address"`
		} `json:"admin"`
		StaticResources struct {
			Listeners []struct {
				Name    string   `json:"name"`
				Address sockAddr `json:"address"`
			} `json:"listeners"`
			Clusters []struct {
				Name           string `json:"name"`
				LoadAssignment struct {
					Endpoints []struct {
						LbEndpoints []struct {
							Endpoint struct {
								Address sockAddr `json:"address"`
							} `json:"endpoint"`
						} `json:"lb_endpoints"`
					} `json:"endpoints"`
				} `json:"load_assignment"`
			} `json:"clusters"`
		} `json:"static_resources"`
	}
	if err := json.Unmarshal(js, &b); err != nil {
		t.Fatal(err)
	}
	listeners := map[string]bool{}
	for _, l := range b.StaticResources.Listeners {
		listeners[l.Address.String()] = true
	}
	for _, want := range []string{fmt.Sprintf("127.0.0.1:%d", ListenerPort), fmt.Sprintf("0.0.0.0:%d", EnvoyOpsPort)} {
		if !listeners[want] {
			t.Errorf("sidecar.yaml has no listener on %s (listeners: %v)", want, listeners)
		}
	}
	// Envoy's admin API is the socket in the volume only envoy mounts, and
	// the ops listener's cluster reaches it there.
	if got, want := b.Admin.Address.String(), "unix://"+EnvoyAdminSocket; got != want {
		t.Errorf("sidecar.yaml's admin listens on %s, want %s", got, want)
	}
	endpoints := func(cluster string) []string {
		var out []string
		for _, c := range b.StaticResources.Clusters {
			if c.Name != cluster {
				continue
			}
			for _, e := range c.LoadAssignment.Endpoints {
				for _, lb := range e.LbEndpoints {
					out = append(out, lb.Endpoint.Address.String())
				}
			}
		}
		return out
	}
	if got := endpoints("envoy_admin"); len(got) != 1 || got[0] != "unix://"+EnvoyAdminSocket {
		t.Errorf("sidecar.yaml's envoy_admin cluster reaches %v, want unix://%s", got, EnvoyAdminSocket)
	}
	if ev := injectedContainer(t, EnvoyContainer); !mountsDir(ev, EnvoyAdminVolume, EnvoyAdminSocket) {
		t.Errorf("envoy does not mount %s where its admin socket %s is (mounts %+v)", EnvoyAdminVolume, EnvoyAdminSocket, ev.VolumeMounts)
	}
	processor := endpoints("tollgate")
	// The injected processor's own --grpc-listen, not just the constant.
	tg := injectedContainer(t, ProcessorContainer)
	listen := flagValue(tg.Args, "--grpc-listen")
	if len(processor) != 1 || processor[0] != listen {
		t.Errorf("sidecar.yaml reaches the processor at %v, the injected tollgate listens on %q", processor, listen)
	}
	// And the socket is inside the volume both sidecars mount.
	for _, name := range []string{ProcessorContainer, EnvoyContainer} {
		c := injectedContainer(t, name)
		if !mountsSocketDir(c, strings.TrimPrefix(listen, "unix://")) {
			t.Errorf("container %s does not mount %s where %s is (mounts %+v)", name, ExtProcVolume, listen, c.VolumeMounts)
		}
	}
}

// TestOnlyTheSidecarsReachExtProc: an application container shares the
// pod's loopback, so ext_proc is a Unix socket in a volume only the
// processor and Envoy mount. No application container, init or not, and
// not the bootstrap container, mounts it; and no loopback port serves it.
func TestOnlyTheSidecarsReachExtProc(t *testing.T) {
	p := appPod()
	if _, err := Pod(&p.ObjectMeta, &p.Spec, Workload{Name: "chat"}, Config{}); err != nil {
		t.Fatal(err)
	}
	var vol *corev1.Volume
	for i := range p.Spec.Volumes {
		if p.Spec.Volumes[i].Name == ExtProcVolume {
			vol = &p.Spec.Volumes[i]
		}
	}
	if vol == nil || vol.EmptyDir == nil {
		t.Fatalf("the injected pod has no emptyDir %s: volumes %+v", ExtProcVolume, p.Spec.Volumes)
	}
	mounted := map[string]bool{}
	for _, cs := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
		for _, c := range cs {
			for _, m := range c.VolumeMounts {
				if m.Name == ExtProcVolume {
					mounted[c.Name] = true
				}
			}
		}
	}
	want := map[string]bool{ProcessorContainer: true, EnvoyContainer: true}
	if len(mounted) != len(want) || !mounted[ProcessorContainer] || !mounted[EnvoyContainer] {
		t.Errorf("%s is mounted into %v, want exactly %v", ExtProcVolume, mounted, want)
	}
	socket, ok := strings.CutPrefix(ExtProcAddress, "unix://")
	if !ok || !strings.HasPrefix(socket, "/") {
		t.Fatalf("the processor listens on %q, want unix:///<path>", ExtProcAddress)
	}
	for _, c := range p.Spec.InitContainers {
		if c.Name == ProcessorContainer {
			if got := flagValue(c.Args, "--grpc-listen"); got != ExtProcAddress {
				t.Errorf("tollgate runs with --grpc-listen %q, want %q", got, ExtProcAddress)
			}
		}
	}
	// The processor and Envoy share a group: the socket is 0660.
	tg, ev := injectedContainer(t, ProcessorContainer), injectedContainer(t, EnvoyContainer)
	if tg.SecurityContext.RunAsGroup == nil || ev.SecurityContext.RunAsGroup == nil || *tg.SecurityContext.RunAsGroup != *ev.SecurityContext.RunAsGroup {
		t.Errorf("tollgate and envoy run in different groups (%v, %v): Envoy could not connect to the 0660 socket", tg.SecurityContext.RunAsGroup, ev.SecurityContext.RunAsGroup)
	}
}

// injectedContainer is the named sidecar of an injected sample pod.
func injectedContainer(t *testing.T, name string) corev1.Container {
	t.Helper()
	p := appPod()
	if _, err := Pod(&p.ObjectMeta, &p.Spec, Workload{Name: "chat"}, Config{}); err != nil {
		t.Fatal(err)
	}
	for _, c := range p.Spec.InitContainers {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no container %s injected", name)
	return corev1.Container{}
}

func flagValue(args []string, name string) string {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}

func mountsSocketDir(c corev1.Container, socket string) bool {
	return mountsDir(c, ExtProcVolume, socket)
}

// mountsDir: c mounts the volume, writable, at a directory holding socket.
func mountsDir(c corev1.Container, volume, socket string) bool {
	for _, m := range c.VolumeMounts {
		if m.Name == volume && strings.HasPrefix(socket, strings.TrimSuffix(m.MountPath, "/")+"/") {
			return volume == ExtProcVolume || !m.ReadOnly
		}
	}
	return false
}

// TestOnlyEnvoyReachesItsAdmin: Envoy's admin API (stop, drain, runtime
// changes, configuration dumps) is a Unix socket in an emptyDir mounted
// into the envoy container only, writable (Envoy binds the socket there):
// not into the processor, the bootstrap container or any application
// container, which share the pod's loopback but not this directory. And no
// loopback port is left for it: 9901 is the application's to use.
func TestOnlyEnvoyReachesItsAdmin(t *testing.T) {
	p := appPod()
	if _, err := Pod(&p.ObjectMeta, &p.Spec, Workload{Name: "chat"}, Config{}); err != nil {
		t.Fatal(err)
	}
	var vol *corev1.Volume
	for i := range p.Spec.Volumes {
		if p.Spec.Volumes[i].Name == EnvoyAdminVolume {
			vol = &p.Spec.Volumes[i]
		}
	}
	if vol == nil || vol.EmptyDir == nil {
		t.Fatalf("the injected pod has no emptyDir %s for Envoy's admin socket: volumes %+v", EnvoyAdminVolume, p.Spec.Volumes)
	}
	var mounted []string
	for _, cs := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
		for _, c := range cs {
			for _, m := range c.VolumeMounts {
				if m.Name == EnvoyAdminVolume || strings.HasPrefix(EnvoyAdminSocket, strings.TrimSuffix(m.MountPath, "/")+"/") {
					mounted = append(mounted, c.Name+":"+m.Name)
				}
			}
		}
	}
	if want := EnvoyContainer + ":" + EnvoyAdminVolume; len(mounted) != 1 || mounted[0] != want {
		t.Errorf("Envoy's admin socket directory is mounted as %v, want exactly %s", mounted, want)
	}
	if _, taken := sidecarPorts[9901]; taken {
		t.Errorf("port 9901 is still refused to applications, but Envoy's admin no longer listens on it")
	}
}

type sockAddr struct {
	SocketAddress *struct {
		Address   string `json:"address"`
		PortValue int    `json:"port_value"`
	} `json:"socket_address"`
	Pipe *struct {
		Path string `json:"path"`
	} `json:"pipe"`
}

// String is host:port, or unix://path for a pipe (as --grpc-listen
// spells it).
func (a sockAddr) String() string {
	switch {
	case a.Pipe != nil:
		return "unix://" + a.Pipe.Path
	case a.SocketAddress != nil:
		return fmt.Sprintf("%s:%d", a.SocketAddress.Address, a.SocketAddress.PortValue)
	}
	return "<none>"
}
