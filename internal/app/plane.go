package app

import (
	"fmt"
	"net/url"
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

// targetOriginErrors checks --allowed-target-origins: "*" or an origin,
// http:// or https://, with no path, query or user info (errors do not name
// the setting; checkSettings does). Anything else would never match a
// Helicone-Target-URL and fail every call naming it with a 403 that blames
// the caller. http:// is fine: envoy/ routes such origins to
// a plain-HTTP forward proxy. "*" covers public https:// origins only
// (helicone.WildcardRefusal): an http:// origin, or one whose host is a
// loopback, link-local, private or otherwise internal address, is allowed
// only when listed exactly.
func targetOriginErrors(origins []string) []error {
	var errs []error
	for _, o := range origins {
		if o == "*" {
			continue
		}
		u, err := url.Parse(strings.TrimRight(o, "/"))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			errs = append(errs, fmt.Errorf("want * or an origin such as https://api.together.xyz or http://vllm.models.svc:8000 (scheme, host, optional port), got %q", o))
		}
	}
	return errs
}
