package envoy_test

import (
	"slices"
	"strings"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"

	"github.com/tollgate-dev/tollgate/processor"
)

// TestAttemptLinkTravelsAsMetadata: the processor ties a call's
// upstream-level streams to its router-level stream through dynamic
// metadata in processor.LinkNamespace, never a header (attempts share one
// request header map, so a header would reach the provider). The
// router-level filter must receive that namespace (ext_proc.cc,
// setDynamicMetadata keeps only receiving_namespaces) and every
// upstream-level filter forward it (addDynamicMetadata sends only
// forwarding_namespaces); upstream filters see the downstream request's
// dynamic metadata (router/upstream_request.cc,
// UpstreamFilterManager::streamInfo).
func TestAttemptLinkTravelsAsMetadata(t *testing.T) {
	for _, f := range configFiles(t) {
		t.Run(f, func(t *testing.T) {
			b := mustLoad(t, f)
			hcm := egressManager(t, b)
			router := routerExtProc(t, hcm)
			if got := router.GetMetadataOptions().GetReceivingNamespaces().GetUntyped(); !slices.Equal(got, []string{processor.LinkNamespace}) {
				t.Errorf("router-level ext_proc receives %v, want [%s]", got, processor.LinkNamespace)
			}
			if got := router.GetMetadataOptions().GetForwardingNamespaces(); got != nil {
				t.Errorf("router-level ext_proc forwards %v: nothing it needs", got)
			}
			for _, c := range attemptClusters(t, b) {
				found := false
				for _, hf := range protocolOptions(t, c).GetHttpFilters() {
					tc := hf.GetTypedConfig()
					if !tc.MessageIs(&extprocv3.ExternalProcessor{}) {
						continue
					}
					found = true
					up := unpack[extprocv3.ExternalProcessor](t, tc)
					if got := up.GetMetadataOptions().GetForwardingNamespaces().GetUntyped(); !slices.Equal(got, []string{processor.LinkNamespace}) {
						t.Errorf("cluster %s: upstream ext_proc forwards %v, want [%s]", c.GetName(), got, processor.LinkNamespace)
					}
				}
				if !found {
					t.Errorf("cluster %s has no upstream ext_proc", c.GetName())
				}
			}
			// No route hands a link header to the upstream filters, and the
			// client's is dropped before routing.
			removed := false
			for _, m := range earlyRemovals(t, hcm) {
				removed = removed || strings.EqualFold(m.GetRemove(), "x-tollgate-link")
			}
			if !removed {
				t.Error("a client's x-tollgate-link is not removed before routing")
			}
		})
	}
}
