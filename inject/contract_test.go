package inject

import (
	"encoding/json"
	"fmt"
	"testing"

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
	// The ports refused to applications (compat.go) are the ones used.
	if got, want := b.Admin.Address.String(), fmt.Sprintf("127.0.0.1:%d", EnvoyAdminPort); got != want {
		t.Errorf("sidecar.yaml's admin listens on %s, want %s", got, want)
	}
	if ExtProcAddress != fmt.Sprintf("127.0.0.1:%d", ExtProcPort) {
		t.Errorf("ExtProcAddress %s and ExtProcPort %d disagree", ExtProcAddress, ExtProcPort)
	}
	var processor []string
	for _, c := range b.StaticResources.Clusters {
		if c.Name != "tollgate" {
			continue
		}
		for _, e := range c.LoadAssignment.Endpoints {
			for _, lb := range e.LbEndpoints {
				processor = append(processor, lb.Endpoint.Address.String())
			}
		}
	}
	if len(processor) != 1 || processor[0] != ExtProcAddress {
		t.Errorf("sidecar.yaml reaches the processor at %v, the injected tollgate listens on %s", processor, ExtProcAddress)
	}
}

type sockAddr struct {
	SocketAddress struct {
		Address   string `json:"address"`
		PortValue int    `json:"port_value"`
	} `json:"socket_address"`
}

func (a sockAddr) String() string {
	return fmt.Sprintf("%s:%d", a.SocketAddress.Address, a.SocketAddress.PortValue)
}
