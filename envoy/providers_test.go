package envoy_test

import (
	"net/url"
	"regexp"
	"strings"
	"testing"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/tollgate-dev/tollgate/provider"
)

// TestProvidersRoutedByPath holds the configs to the one provider list
// (provider.Builtins): each entry has a plain route and its *_attempts
// twin (attempts_test.go checks the pair) on its path-separated prefix,
// before the OpenAI catch-all, to a cluster of its name on its origin's
// host; an OpenAI-compatible entry's route takes its name off the path,
// as the dev data plane does (dataplane.Route.StripPrefix), and Gemini's
// keeps its /v1beta paths.
func TestProvidersRoutedByPath(t *testing.T) {
	for _, f := range configFiles(t) {
		t.Run(f, func(t *testing.T) {
			b := mustLoad(t, f)
			routes := egressManager(t, b).GetRouteConfig().GetVirtualHosts()[0].GetRoutes()
			byName := map[string]int{}
			for i, r := range routes {
				byName[r.GetName()] = i
			}
			for _, u := range provider.Builtins() {
				origin, err := url.Parse(u.Origin)
				if err != nil {
					t.Fatal(err)
				}
				for _, name := range []string{u.Name, u.Name + "_attempts"} {
					i, ok := byName[name]
					if !ok {
						t.Errorf("no route %q for provider %s", name, u.Name)
						continue
					}
					if i >= byName["openai"] {
						t.Errorf("route %q comes after the openai catch-all", name)
					}
					r := routes[i]
					if got := r.GetMatch().GetPathSeparatedPrefix(); got != u.Route {
						t.Errorf("route %q matches %q, want %s", name, got, u.Route)
					}
					a := r.GetRoute()
					if a.GetCluster() != name || a.GetHostRewriteLiteral() != origin.Host {
						t.Errorf("route %q: cluster %q host %q, want %s and %s", name, a.GetCluster(), a.GetHostRewriteLiteral(), name, origin.Host)
					}
					checkRewrite(t, name, a, u)
					c := cluster(b, name)
					if c == nil {
						t.Errorf("no cluster %q", name)
						continue
					}
					sa := c.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress()
					if sa.GetAddress() != origin.Host || sa.GetPortValue() != 443 {
						t.Errorf("cluster %q reaches %s:%d, want %s:443", name, sa.GetAddress(), sa.GetPortValue(), origin.Host)
					}
				}
			}
		})
	}
}

// checkRewrite: the route's path rewrite is the provider's (Envoy's RE2
// and Go's regexp agree on this pattern).
func checkRewrite(t *testing.T, name string, a *routev3.RouteAction, u provider.Upstream) {
	t.Helper()
	rw := a.GetRegexRewrite()
	if !u.StripRoute() {
		if rw != nil || a.GetPrefixRewrite() != "" {
			t.Errorf("route %q rewrites the path; %s's paths are its own", name, u.Name)
		}
		return
	}
	if rw == nil {
		t.Errorf("route %q does not take %s off the path", name, u.Route)
		return
	}
	re, err := regexp.Compile(rw.GetPattern().GetRegex())
	if err != nil {
		t.Fatalf("route %q: %v", name, err)
	}
	for in, want := range map[string]string{
		u.Route + u.Prefix + "/chat/completions": u.Prefix + "/chat/completions",
		u.Route:                                  "/",
		u.Route + "x/v1":                         u.Route + "x/v1", // never matched by the route; left alone
	} {
		if got := re.ReplaceAllLiteralString(in, rw.GetSubstitution()); got != want {
			t.Errorf("route %q rewrites %s to %s, want %s", name, in, got, want)
		}
	}
}

// TestAccessLogPathWithoutQuery: Gemini's key= query parameter is a
// credential, so the access log's path leaves the query out.
func TestAccessLogPathWithoutQuery(t *testing.T) {
	for _, f := range configFiles(t) {
		text := readFile(t, f)
		if strings.Contains(text, "%REQ(:PATH)%") || !strings.Contains(text, `path: "%PATH(NQ:ORIG_OR_PATH)%"`) {
			t.Errorf("%s: the access log's path must be %%PATH(NQ:ORIG_OR_PATH)%%, without the query", f)
		}
	}
}
