package envoy_test

import (
	"testing"
	"time"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tollgate-dev/tollgate/dataplane"
)

// Envoy's defaults when a field is absent (route_components.proto,
// RouteAction.timeout; http_connection_manager.proto, stream_idle_timeout).
const (
	envoyDefaultRouteTimeout = 15 * time.Second
	envoyDefaultStreamIdle   = 5 * time.Minute
)

// duration reads an optional Envoy duration: absent is def, zero is
// "disabled" (reported as ok false).
func duration(d *durationpb.Duration, def time.Duration) (time.Duration, bool) {
	if d == nil {
		return def, true
	}
	v := d.AsDuration()
	return v, v != 0
}

// TestQuietCallsLastTheRouteTimeout: a non-streamed call sends nothing back
// until the model has finished, which may take minutes. The idle timeout
// that applies to it is the route's idle_timeout, or else the connection
// manager's stream_idle_timeout (Envoy replaces the second by the first
// once the route is picked: ConnectionManagerImpl::ActiveStream::
// refreshIdleTimeout, and RouteAction.idle_timeout in route_components.proto).
// If it were below the route timeout, such a call would be cut with a 408
// before the route timeout the configurations promise. The provider routes'
// values are also the local data plane's defaults, so `tollgate dev`
// behaves as Envoy does.
func TestQuietCallsLastTheRouteTimeout(t *testing.T) {
	for _, f := range configFiles(t) {
		t.Run(f, func(t *testing.T) {
			b := mustLoad(t, f)
			for listener, hcms := range managers(t, b) {
				for _, hcm := range hcms {
					checkRouteTimeouts(t, f+" listener "+listener, hcm)
				}
			}
		})
	}
}

func checkRouteTimeouts(t *testing.T, where string, hcm *hcmv3.HttpConnectionManager) {
	t.Helper()
	hcmIdle, hcmIdleOn := duration(hcm.GetStreamIdleTimeout(), envoyDefaultStreamIdle)
	for _, vh := range hcm.GetRouteConfig().GetVirtualHosts() {
		for _, r := range vh.GetRoutes() {
			ra := r.GetRoute()
			if ra == nil {
				continue // a direct response: nothing upstream to wait for
			}
			timeout, bounded := duration(ra.GetTimeout(), envoyDefaultRouteTimeout)
			if !bounded {
				continue
			}
			idle, idleOn := hcmIdle, hcmIdleOn
			if ra.GetIdleTimeout() != nil {
				idle, idleOn = duration(ra.GetIdleTimeout(), 0)
			}
			name := where + " route " + r.GetName()
			if idleOn && idle < timeout {
				t.Errorf("%s: a quiet call is cut after %v (idle timeout), before the route timeout of %v", name, idle, timeout)
			}
			if ra.GetTimeout() == nil {
				continue // Envoy's default, not a provider route
			}
			if timeout != dataplane.DefaultRouteTimeout {
				t.Errorf("%s: route timeout %v, but the local data plane's default is %v", name, timeout, dataplane.DefaultRouteTimeout)
			}
			if !idleOn || idle != dataplane.DefaultStreamIdleTimeout {
				t.Errorf("%s: idle timeout %v (on: %v), but the local data plane's default is %v", name, idle, idleOn, dataplane.DefaultStreamIdleTimeout)
			}
		}
	}
}
