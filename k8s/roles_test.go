package k8s_test

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// lastFlag is the value of --name=value or --name value in args ("" if absent); the
// last one wins, as for Go's flag package.
func lastFlag(args []string, name string) string {
	var v string
	for i, a := range args {
		n, val, ok := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || n != name {
			continue
		}
		if !ok && i+1 < len(args) {
			val = args[i+1]
		}
		v = val
	}
	return v
}

// TestProcessorRoles (DESIGN.md section 2, Roles): a tollgate beside an
// application (an init container, i.e. a native sidecar) serves health and
// metrics only; the gateway serves the API and the dashboard, and only
// behind a key from a Secret the pod cannot start without.
func TestProcessorRoles(t *testing.T) {
	var gateways, sidecars int
	for _, c := range containers(loadTree(t), "") {
		if !isTollgate(c.c) || len(c.c.Args) == 0 || c.c.Args[0] != "serve" {
			continue
		}
		role := lastFlag(c.c.Args, "role")
		if c.init {
			sidecars++
			if role != "sidecar" {
				t.Errorf("%s: a sidecar processor must run with --role=sidecar, got %q", c, role)
			}
			continue
		}
		gateways++
		if role != "gateway" {
			t.Errorf("%s: want --role=gateway spelled out, got %q", c, role)
		}
		if !keyFromSecret(c.c.Env, "TOLLGATE_API_KEY") {
			t.Errorf("%s: serves the API to other pods; TOLLGATE_API_KEY must come from a required Secret", c)
		}
	}
	if gateways == 0 || sidecars == 0 {
		t.Fatalf("found %d gateway and %d sidecar processors", gateways, sidecars)
	}
}

func keyFromSecret(env []corev1.EnvVar, name string) bool {
	for _, e := range env {
		if e.Name == name {
			r := e.ValueFrom
			return r != nil && r.SecretKeyRef != nil && (r.SecretKeyRef.Optional == nil || !*r.SecretKeyRef.Optional)
		}
	}
	return false
}
