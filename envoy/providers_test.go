package envoy_test

import (
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	egv1a1 "github.com/envoyproxy/gateway/api/v1alpha1"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

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
				if u.RouteRegex != "" {
					checkRegexRoutes(t, routes, byName, u, origin.Host)
				}
			}
		})
	}
}

// checkRegexRoutes: a provider's second route (Gemini's stable
// /v1/models/{model}:{method} calls) is a pair named <name>_v1 matching
// the very expression the processor names the provider by
// (Upstream.RouteRegex), before the OpenAI catch-all whose prefix it
// shares, to the provider's clusters, the path unchanged.
func checkRegexRoutes(t *testing.T, routes []*routev3.Route, byName map[string]int, u provider.Upstream, host string) {
	t.Helper()
	for _, suffix := range []string{"", "_attempts"} {
		name := u.Name + "_v1" + suffix
		i, ok := byName[name]
		if !ok {
			t.Errorf("no route %q for %s's paths matching %s", name, u.Name, u.RouteRegex)
			continue
		}
		if i >= byName["openai"] {
			t.Errorf("route %q comes after the openai catch-all", name)
		}
		r := routes[i]
		if got := r.GetMatch().GetSafeRegex().GetRegex(); got != u.RouteRegex {
			t.Errorf("route %q matches %q, want %s", name, got, u.RouteRegex)
		}
		a := r.GetRoute()
		if a.GetCluster() != u.Name+suffix || a.GetHostRewriteLiteral() != host || a.GetRegexRewrite() != nil || a.GetPrefixRewrite() != "" {
			t.Errorf("route %q: cluster %q host %q, want %s%s and %s, the path unchanged", name, a.GetCluster(), a.GetHostRewriteLiteral(), u.Name, suffix, host)
		}
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

// TestEnvoyGatewayExampleProviders: the Envoy Gateway example routes every
// built-in provider as envoy/*.yaml do: its path prefix to a Backend of its
// name on its origin's host, the OpenAI-compatible ones' prefix replaced
// by "/".
func TestEnvoyGatewayExampleProviders(t *testing.T) {
	backends := map[string]*egv1a1.Backend{}
	var rules []gwapiv1.HTTPRouteRule
	for _, doc := range yamlDocs(t, filepath.Join("examples", "envoy-gateway.yaml")) {
		switch docKind(t, doc) {
		case "Backend":
			b := strictDecode[egv1a1.Backend](t, doc)
			backends[b.Name] = b
		case "HTTPRoute":
			rules = append(rules, strictDecode[gwapiv1.HTTPRoute](t, doc).Spec.Rules...)
		}
	}
	for _, u := range provider.Builtins() {
		host := strings.TrimPrefix(u.Origin, "https://")
		if b := backends[u.Name]; b == nil || b.Spec.Endpoints[0].FQDN == nil || b.Spec.Endpoints[0].FQDN.Hostname != host {
			t.Errorf("no Backend %s on %s", u.Name, host)
		}
		found := false
		for _, r := range rules {
			if len(r.Matches) != 1 || r.Matches[0].Path == nil || r.Matches[0].Path.Value == nil || *r.Matches[0].Path.Value != u.Route {
				continue
			}
			found = true
			if len(r.BackendRefs) != 1 || string(r.BackendRefs[0].Name) != u.Name {
				t.Errorf("rule for %s: backends %+v", u.Route, r.BackendRefs)
			}
			var rw *gwapiv1.HTTPURLRewriteFilter
			for _, f := range r.Filters {
				if f.URLRewrite != nil {
					rw = f.URLRewrite
				}
			}
			stripped := rw != nil && rw.Path != nil && rw.Path.ReplacePrefixMatch != nil && *rw.Path.ReplacePrefixMatch == "/"
			if rw == nil || rw.Hostname == nil || string(*rw.Hostname) != host || stripped != u.StripRoute() {
				t.Errorf("rule for %s: rewrite %+v, want host %s, prefix replaced %v", u.Route, rw, host, u.StripRoute())
			}
		}
		if !found {
			t.Errorf("no rule for %s (%s)", u.Route, u.Name)
		}
		if u.RouteRegex != "" && !hasRegexRule(rules, u, host) {
			t.Errorf("no rule for %s's paths matching %s", u.Name, u.RouteRegex)
		}
	}
}

// hasRegexRule: a rule matches u's second route (Upstream.RouteRegex) with
// the very expression, to u's Backend, the path unchanged.
func hasRegexRule(rules []gwapiv1.HTTPRouteRule, u provider.Upstream, host string) bool {
	for _, r := range rules {
		if len(r.Matches) != 1 || r.Matches[0].Path == nil || r.Matches[0].Path.Type == nil ||
			*r.Matches[0].Path.Type != gwapiv1.PathMatchRegularExpression || *r.Matches[0].Path.Value != u.RouteRegex {
			continue
		}
		for _, f := range r.Filters {
			if f.URLRewrite != nil && (f.URLRewrite.Path != nil || f.URLRewrite.Hostname == nil || string(*f.URLRewrite.Hostname) != host) {
				return false
			}
		}
		return len(r.BackendRefs) == 1 && string(r.BackendRefs[0].Name) == u.Name
	}
	return false
}

// TestRoutesAgreeWithResolve: for a call without routing headers, the
// cluster Envoy's routes pick (the first plain route that matches, by
// Envoy's rules: path_separated_prefix, prefix, safe_regex on the whole
// path without its query) is the provider the processor names
// (provider.Resolve): what is checked, priced and given a key-vault key as
// one provider's goes to that provider. Azure's paths ride OpenAI's route
// unless an origin is named, as the processor's vault check reads them.
func TestRoutesAgreeWithResolve(t *testing.T) {
	paths := []string{
		"/v1/chat/completions", "/v1/responses", "/v1/models", "/v1/models/gpt-4o",
		"/v1/models/ft:gpt-4o-mini:acme::abc123", "/v1/models/gemini-2.5-flash:generateContentX",
		"/v1/messages", "/v1/messages/count_tokens", "/v1/messagesX",
		"/v1beta/models/gemini-2.5-flash:generateContent", "/v1beta/models/gemini-2.5-flash:countTokens",
		"/v1beta/openai/chat/completions",
		"/v1/models/gemini-2.5-flash:generateContent?key=k", "/v1/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
		"/v1/models/gemini-2.5-flash:countTokens", "/v1/models/text-embedding-004:embedContent",
		"/v1/models/text-embedding-004:batchEmbedContents", "/v1/models/a/b:generateContent",
		"/together/v1/chat/completions", "/togetherx/v1/chat/completions", "/groq/openai/v1/chat/completions",
	}
	for _, f := range configFiles(t) {
		t.Run(f, func(t *testing.T) {
			routes := egressManager(t, mustLoad(t, f)).GetRouteConfig().GetVirtualHosts()[0].GetRoutes()
			for _, p := range paths {
				got := ""
				for _, r := range routes {
					if len(r.GetMatch().GetHeaders()) == 0 && envoyMatches(t, r.GetMatch(), p) {
						got = r.GetRoute().GetCluster()
						break
					}
				}
				if name, _, _ := provider.Resolve(p); got != name {
					t.Errorf("%s goes to cluster %q; the processor names it %s", p, got, name)
				}
			}
		})
	}
}

// envoyMatches is an Envoy route match on a path, for the match kinds the
// provider routes use.
func envoyMatches(t *testing.T, m *routev3.RouteMatch, path string) bool {
	t.Helper()
	bare, _, _ := strings.Cut(path, "?")
	switch {
	case m.GetPathSeparatedPrefix() != "":
		rest, ok := strings.CutPrefix(bare, m.GetPathSeparatedPrefix())
		return ok && (rest == "" || rest[0] == '/')
	case m.GetSafeRegex() != nil:
		return regexp.MustCompile(`^(?:` + m.GetSafeRegex().GetRegex() + `)$`).MatchString(bare)
	case m.GetPrefix() != "":
		return strings.HasPrefix(path, m.GetPrefix())
	}
	t.Fatalf("route match %v: not a kind this test reads", m)
	return false
}
