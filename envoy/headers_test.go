package envoy_test

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	mutationv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	streamlogv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	headermutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/header_mutation/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	earlymutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/http/early_header_mutation/header_mutation/v3"
	"google.golang.org/protobuf/encoding/protojson"
)

// identityFromClients says, for each configuration, whether the caller may
// send its workload identity (x-tollgate-workload-*). A sidecar takes its
// identity from its own environment; a gateway receives it from the
// caller's mesh sidecar. A new configuration must be added here.
var identityFromClients = map[string]bool{
	"sidecar.yaml": false,
	"gateway.yaml": true,
}

// Headers a client must never be able to set: they steer the routing and the
// processor.
var internalHeaders = []string{"x-tollgate-upstream", "x-tollgate-upstream-host", linkHeader, "x-tollgate-fallback-chain", "x-tollgate-attempts"}

var workloadHeaders = []string{"x-tollgate-workload-namespace", "x-tollgate-workload-service-account", "x-tollgate-workload-name", "X-Tollgate-Workload-Name"}

// earlyRemovals returns what the connection manager's early header mutation
// removes. It runs before route selection, unlike any HTTP filter: Envoy
// picks and caches the route before the first filter, and a header_mutation
// filter does not clear that cache, so a header removed only by a filter
// has already chosen the route.
func earlyRemovals(t *testing.T, hcm *hcmv3.HttpConnectionManager) []*mutationv3.HeaderMutation {
	t.Helper()
	var out []*mutationv3.HeaderMutation
	for _, ext := range hcm.GetEarlyHeaderMutationExtensions() {
		if !ext.GetTypedConfig().MessageIs(&earlymutationv3.HeaderMutation{}) {
			t.Fatalf("early header mutation %q: only envoy.http.early_header_mutation.header_mutation is checked", ext.GetName())
		}
		out = append(out, unpack[earlymutationv3.HeaderMutation](t, ext.GetTypedConfig()).GetMutations()...)
	}
	return out
}

// TestClientsCannotForgeInternalHeaders: the headers only Tollgate may set
// are removed from the client's request before routing, so a client cannot
// pick the forward-proxy route (an open HTTPS proxy past the allowed
// origins) or feed the processor forged links or identities.
func TestClientsCannotForgeInternalHeaders(t *testing.T) {
	for _, f := range configFiles(t) {
		t.Run(f, func(t *testing.T) {
			fromClients, known := identityFromClients[f]
			if !known {
				t.Fatalf("%s: say in identityFromClients whether its callers may send x-tollgate-workload-*", f)
			}
			hcm := egressManager(t, mustLoad(t, f))
			early := earlyRemovals(t, hcm)
			for _, h := range internalHeaders {
				if !removes(early, h) {
					t.Errorf("%s from a client must be removed by early_header_mutation_extensions, before routing", h)
				}
			}
			// Filters run after routing, but a header they remove still does
			// not reach the provider.
			var filters []*mutationv3.HeaderMutation
			for _, hf := range hcm.GetHttpFilters() {
				if tc := hf.GetTypedConfig(); tc.MessageIs(&headermutationv3.HeaderMutation{}) {
					filters = append(filters, unpack[headermutationv3.HeaderMutation](t, tc).GetMutations().GetRequestMutations()...)
				}
			}
			for _, h := range workloadHeaders {
				if got := removes(early, h); got == fromClients {
					t.Errorf("%s from a client: removed = %v, want %v", h, got, !fromClients)
				}
				// Either way the provider, a third party, never sees it.
				if !removes(early, h) && !removes(filters, h) {
					t.Errorf("%s must be removed before the request leaves", h)
				}
			}
			if removes(early, "x-tollgate-other") || removes(early, "authorization") {
				t.Error("the early header mutation removes more than Tollgate's own headers")
			}
		})
	}
}

// TestRoutesIgnoreClientHeaders: a route that matches on a request header
// must match on one the client cannot send, or a client would choose it.
func TestRoutesIgnoreClientHeaders(t *testing.T) {
	for _, f := range configFiles(t) {
		t.Run(f, func(t *testing.T) {
			hcm := egressManager(t, mustLoad(t, f))
			early := earlyRemovals(t, hcm)
			for _, vh := range hcm.GetRouteConfig().GetVirtualHosts() {
				for _, r := range vh.GetRoutes() {
					for _, hm := range r.GetMatch().GetHeaders() {
						if !removes(early, hm.GetName()) {
							t.Errorf("route %q matches on %s, which a client can send", r.GetName(), hm.GetName())
						}
					}
				}
			}
		})
	}
}

// TestClientEnvoyHeadersIgnored: Envoy's router obeys x-envoy-retry-on,
// x-envoy-max-retries, x-envoy-upstream-rq-timeout-ms and friends on a
// request it calls internal. No request may be: the decision must rest on
// the peer's address (use_remote_address, no trusted X-Forwarded-For hops),
// and internal_address_config must name no address a client connects from.
// An empty cidr_ranges does not do: Envoy then takes RFC 1918 for internal
// (InternalAddressConfig in
// source/extensions/filters/network/http_connection_manager/config.h).
func TestClientEnvoyHeadersIgnored(t *testing.T) {
	peers := []string{"127.0.0.1", "::1", "10.1.2.3", "172.16.0.9", "192.168.1.1", "100.64.0.1", "fd00::1", "203.0.113.7", "2001:db8::1"}
	for _, f := range configFiles(t) {
		t.Run(f, func(t *testing.T) {
			hcm := egressManager(t, mustLoad(t, f))
			if !hcm.GetUseRemoteAddress().GetValue() {
				t.Error("use_remote_address must be true: without it a client's X-Forwarded-For decides whether the request is internal")
			}
			if hcm.GetXffNumTrustedHops() != 0 || len(hcm.GetOriginalIpDetectionExtensions()) != 0 {
				t.Error("no X-Forwarded-For hop may be trusted")
			}
			iac := hcm.GetInternalAddressConfig()
			if iac == nil || len(iac.GetCidrRanges()) == 0 {
				t.Fatal("internal_address_config must list ranges (none means RFC 1918 in some Envoy releases)")
			}
			if iac.GetUnixSockets() {
				t.Error("unix socket peers must not be internal")
			}
			for _, c := range iac.GetCidrRanges() {
				pfx, err := netip.ParsePrefix(c.GetAddressPrefix() + "/" + strconv.Itoa(int(c.GetPrefixLen().GetValue())))
				if err != nil {
					t.Fatalf("cidr %v: %v", c, err)
				}
				for _, p := range peers {
					if pfx.Contains(netip.MustParseAddr(p)) {
						t.Errorf("internal range %v contains %s, a client's address", pfx, p)
					}
				}
			}
		})
	}
}

// removes says whether one of the mutations removes the header.
func removes(ms []*mutationv3.HeaderMutation, header string) bool {
	for _, m := range ms {
		if m.GetRemove() != "" && strings.EqualFold(m.GetRemove(), header) {
			return true
		}
		km := m.GetRemoveOnMatch().GetKeyMatcher()
		if km == nil {
			continue
		}
		name, want := header, km.GetPrefix()
		if km.GetIgnoreCase() {
			name, want = strings.ToLower(name), strings.ToLower(want)
		}
		if want != "" && strings.HasPrefix(name, want) {
			return true
		}
		if e := km.GetExact(); e != "" && (e == header || km.GetIgnoreCase() && strings.EqualFold(e, header)) {
			return true
		}
	}
	return false
}

// TestAccessLogsKeepSecretsOut: no access log of any listener may name a
// credential header (DESIGN.md section 4: secrets are never logged).
func TestAccessLogsKeepSecretsOut(t *testing.T) {
	secrets := []string{"authorization", "x-api-key", "api-key", "helicone-auth", "cookie"}
	for _, f := range configFiles(t) {
		t.Run(f, func(t *testing.T) {
			b := mustLoad(t, f)
			logs := 0
			for name, hcms := range managers(t, b) {
				for _, hcm := range hcms {
					for _, al := range hcm.GetAccessLog() {
						logs++
						format := strings.ToLower(accessLogFormat(t, al))
						for _, s := range secrets {
							if strings.Contains(format, s) {
								t.Errorf("listener %q: access log %q mentions %s", name, al.GetName(), s)
							}
						}
					}
				}
			}
			if logs == 0 {
				t.Error("no access log: a shared Envoy should say what it did")
			}
			if hcm := egressManager(t, b); len(hcm.GetAccessLog()) == 0 {
				t.Error("the egress listener has no access log")
			}
		})
	}
}

// accessLogFormat returns the whole log format of an access log as text.
// Loggers other than stdout are refused, so a new one gets this check too.
func accessLogFormat(t *testing.T, al *accesslogv3.AccessLog) string {
	t.Helper()
	if !al.GetTypedConfig().MessageIs(&streamlogv3.StdoutAccessLog{}) {
		t.Fatalf("access log %q: only stdout access logs are checked; extend accessLogFormat", al.GetName())
	}
	lf := unpack[streamlogv3.StdoutAccessLog](t, al.GetTypedConfig()).GetLogFormat()
	if lf == nil {
		t.Fatalf("access log %q: no log_format; Envoy's default format is not JSON", al.GetName())
	}
	js, err := protojson.Marshal(lf)
	if err != nil {
		t.Fatal(err)
	}
	return string(js)
}

// TestProvidersDoNotSeeExternalAddress: with use_remote_address the
// connection manager adds x-envoy-external-address (the client's IP) to
// every external request before the filters run; the processor leaves it
// alone (it is Envoy's), so every route must remove it before the request
// goes upstream: a provider has no business with the address of the pod
// or host inside the network.
func TestProvidersDoNotSeeExternalAddress(t *testing.T) {
	for _, f := range configFiles(t) {
		t.Run(f, func(t *testing.T) {
			hcm := egressManager(t, mustLoad(t, f))
			if len(hcm.GetRouteConfig().GetVirtualHosts()) == 0 {
				t.Fatal("no virtual hosts")
			}
			for _, vh := range hcm.GetRouteConfig().GetVirtualHosts() {
				for _, r := range vh.GetRoutes() {
					if r.GetRoute() == nil {
						continue // a direct response goes nowhere
					}
					removed := append(slices.Clone(vh.GetRequestHeadersToRemove()), r.GetRequestHeadersToRemove()...)
					if !slices.Contains(removed, "x-envoy-external-address") {
						t.Errorf("route %q of virtual host %q sends x-envoy-external-address to the upstream", r.GetName(), vh.GetName())
					}
				}
			}
		})
	}
}
