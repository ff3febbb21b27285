package app

import (
	"strings"

	"github.com/tollgate-dev/tollgate/dataplane"
)

// earlyRemovals is what the data plane of `tollgate dev` strips from a
// client's request before routing, as the early header mutation of the
// Envoy configs does: envoy/sidecar.yaml's list, or envoy/gateway.yaml's
// (x-tollgate-workload-* kept) when a trusted mesh sets the workload
// headers.
func earlyRemovals(cfg *Config) []string {
	if !cfg.TrustWorkloadHeaders {
		return dataplane.EarlyRemovedHeaders
	}
	var out []string
	for _, h := range dataplane.EarlyRemovedHeaders {
		if !strings.HasPrefix(h, "x-tollgate-workload-") {
			out = append(out, h)
		}
	}
	return out
}
