package envoy_test

import (
	"strings"
	"testing"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	mutationv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	streamlogv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	headermutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/header_mutation/v3"
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

// Headers a client must never be able to set: they steer the processor.
var internalHeaders = []string{"x-tollgate-upstream", "x-tollgate-upstream-host", linkHeader}

var workloadHeaders = []string{"x-tollgate-workload-namespace", "x-tollgate-workload-service-account", "x-tollgate-workload-name", "X-Tollgate-Workload-Name"}

func TestClientsCannotForgeInternalHeaders(t *testing.T) {
	for _, f := range configFiles(t) {
		t.Run(f, func(t *testing.T) {
			fromClients, known := identityFromClients[f]
			if !known {
				t.Fatalf("%s: say in identityFromClients whether its callers may send x-tollgate-workload-*", f)
			}
			filters := egressManager(t, mustLoad(t, f)).GetHttpFilters()
			// Before the processor: what the client sent, minus what is stripped.
			var beforeProc, afterProc []*mutationv3.HeaderMutation
			seenProc := false
			for _, hf := range filters {
				tc := hf.GetTypedConfig()
				switch {
				case tc.MessageIs(&extprocv3.ExternalProcessor{}):
					seenProc = true
				case tc.MessageIs(&headermutationv3.HeaderMutation{}):
					m := unpack[headermutationv3.HeaderMutation](t, tc).GetMutations().GetRequestMutations()
					if seenProc {
						afterProc = append(afterProc, m...)
					} else {
						beforeProc = append(beforeProc, m...)
					}
				}
			}
			if len(filters) == 0 || !filters[0].GetTypedConfig().MessageIs(&headermutationv3.HeaderMutation{}) {
				t.Error("the first HTTP filter must strip the internal headers, before any other filter reads them")
			}
			for _, h := range internalHeaders {
				if !removes(beforeProc, h) {
					t.Errorf("%s from a client must be removed before ext_proc", h)
				}
			}
			for _, h := range workloadHeaders {
				if got := removes(beforeProc, h); got == fromClients {
					t.Errorf("%s from a client: removed = %v, want %v", h, got, !fromClients)
				}
				// Either way the provider, a third party, never sees it.
				if !removes(beforeProc, h) && !removes(afterProc, h) {
					t.Errorf("%s must be removed before the request leaves", h)
				}
			}
			if removes(beforeProc, "x-tollgate-other") || removes(beforeProc, "authorization") {
				t.Error("the header filter removes more than Tollgate's own headers")
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
