package dataplane

import (
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/tollgate-dev/tollgate/dataplane/internal/headers"
)

// externalOnlyHeaders are the x-envoy-* request headers Envoy's connection
// manager removes from a request it does not consider internal
// (source/common/http/conn_manager_utility.cc, cleanInternalHeaders): they
// steer the router (retries, timeouts) and must not be a client's to set.
var externalOnlyHeaders = []string{
	"x-envoy-retriable-status-codes",
	"x-envoy-retriable-header-names",
	"x-envoy-retry-on",
	"x-envoy-retry-grpc-on",
	"x-envoy-max-retries",
	"x-envoy-upstream-alt-stat-name",
	"x-envoy-upstream-rq-timeout-ms",
	"x-envoy-upstream-rq-per-try-timeout-ms",
	"x-envoy-upstream-rq-timeout-alt-response",
	"x-envoy-expected-rq-timeout-ms",
	"x-envoy-force-trace",
	"x-envoy-ip-tags",
	"x-envoy-original-url",
	"x-envoy-hedge-on-per-try-timeout",
}

// edgeOnlyHeaders are removed as well when the request is external and the
// connection manager uses the peer's address (use_remote_address), as
// Tollgate's configs do.
var edgeOnlyHeaders = []string{
	"x-envoy-decorator-operation",
	"x-envoy-downstream-service-cluster",
	"x-envoy-downstream-service-node",
}

// internal says whether a request from remoteAddr (host:port, Go's
// http.Request.RemoteAddr) is internal for the connection manager: with
// use_remote_address, the peer's address decides, and only the ranges of
// internal_address_config count. No ranges: nothing is internal, which is
// Envoy's default since the explicit_internal_address_config change (1.33,
// the runtime guard removed in 1.36).
func (p *Proxy) internal(remoteAddr string) bool {
	if len(p.cfg.InternalAddresses) == 0 {
		return false
	}
	addr, ok := peerIP(remoteAddr)
	if !ok {
		return false
	}
	addr = addr.Unmap()
	for _, pfx := range p.cfg.InternalAddresses {
		if pfx.Contains(addr) {
			return true
		}
	}
	return false
}

// peerIP is the IP address of remoteAddr (host:port, or a bare host); false
// for a peer without one (a Unix socket).
func peerIP(remoteAddr string) (netip.Addr, bool) {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	addr, err := netip.ParseAddr(host)
	return addr, err == nil
}

// externalAddressHeader is what the connection manager, with
// use_remote_address, sets on every external request to the peer's IP
// (conn_manager_utility.cc, mutateRequestHeaders: setEnvoyExternalAddress,
// before any filter), replacing whatever the client sent.
const externalAddressHeader = "x-envoy-external-address"

// cleanRequestHeaders is the part of the connection manager that runs before
// route selection and before any HTTP filter: the early header mutation
// (early_header_mutation_extensions, Config.EarlyRemoveHeaders), the
// removal of Envoy's internal headers from an external request and
// x-envoy-external-address on it. It keeps the regular headers sorted.
func (x *exchange) cleanRequestHeaders(h *headers.List) {
	if rm := x.p.cfg.EarlyRemoveHeaders; len(rm) > 0 {
		*h = deleteMatching(*h, func(key string) bool { return matchesAny(rm, key) })
	}
	// Only the connection manager itself says a request is internal.
	h.Del("x-envoy-internal")
	if x.p.internal(x.r.RemoteAddr) {
		return
	}
	*h = deleteMatching(*h, func(key string) bool {
		return strings.HasPrefix(key, "x-envoy-") && (slices.Contains(externalOnlyHeaders, key) || slices.Contains(edgeOnlyHeaders, key))
	})
	if addr, ok := peerIP(x.r.RemoteAddr); ok {
		h.SetSorted(externalAddressHeader, addr.WithZone("").String())
	}
}

// matchesAny says whether key is one of names, where a name ending in "*" is
// a prefix (remove_on_match with a prefix matcher).
func matchesAny(names []string, key string) bool {
	for _, n := range names {
		if p, ok := strings.CutSuffix(n, "*"); ok {
			if strings.HasPrefix(key, p) {
				return true
			}
		} else if key == n {
			return true
		}
	}
	return false
}

func deleteMatching(h headers.List, drop func(key string) bool) headers.List {
	out := h[:0]
	for _, e := range h {
		if !headers.IsPseudo(e.Key) && drop(e.Key) {
			continue
		}
		out = append(out, e)
	}
	return out
}
