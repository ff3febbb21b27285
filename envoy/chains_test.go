package envoy_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/tollgate-dev/tollgate/envoy"
)

// The shipped chains: the routes and clusters of envoy/*.yaml, each a
// sequence of origins in order. OpenAI ⇄ Anthropic serve the fallbacks
// translated to the other provider (docs/fallback-translation.md).
var (
	shippedChain     = []string{"https://api.openai.com", "https://api.together.xyz"}
	translatedChains = []string{"https://api.openai.com", "https://api.anthropic.com"}
)

// withChains returns a configuration's text with its fallback chain routes
// and clusters replaced by routes and clusters.
func withChains(t *testing.T, config, routes, clusters string) string {
	t.Helper()
	cut := func(s, from, to, with string) string {
		i := strings.Index(s, from)
		j := strings.Index(s, to)
		if i < 0 || j < i {
			t.Fatalf("the configuration has no %q before %q", from, to)
		}
		if strings.HasPrefix(from, "\n") {
			i++
		}
		return s[:i] + with + s[j:]
	}
	config = cut(config, "              - name: fallback_openai_together\n", "              # A sequence no chain route serves.\n", routes)
	return cut(config, "\n  - name: fallback_openai_together\n", "\n  # Any other OpenAI-compatible origin", clusters)
}

// TestShippedChainIsGenerated: envoy/*.yaml carry exactly what
// `tollgate envoy-chains` writes: for OpenAI and Together, the first order
// of the generator's two (the configurations ship one); for OpenAI and
// Anthropic, both orders, since a translated fallback goes either way.
func TestShippedChainIsGenerated(t *testing.T) {
	routes, clusters, err := envoy.ChainConfig(shippedChain)
	if err != nil {
		t.Fatal(err)
	}
	first := func(s, item string) string {
		if i := strings.Index(s, "\n"+item); i >= 0 {
			return s[:i+1]
		}
		return s
	}
	routes, clusters = first(routes, "              - name: "), first(clusters, "  - name: ")
	xRoutes, xClusters, err := envoy.ChainConfig(translatedChains)
	if err != nil {
		t.Fatal(err)
	}
	routes, clusters = routes+xRoutes, clusters+xClusters
	for _, f := range configFiles(t) {
		t.Run(f, func(t *testing.T) {
			want := mustLoad(t, f)
			got, err := load([]byte(withChains(t, readFile(t, f), routes, clusters)))
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got, want) {
				t.Errorf("the generated chains %v and both orders of %v differ from the shipped ones", shippedChain, translatedChains)
			}
		})
	}
}

// TestShippedTranslatedChains: every configuration serves both orders of
// OpenAI and Anthropic, before the catch-all that answers an unknown
// sequence with a 400, on a cluster whose priority levels are the two
// origins in that order, each with its own TLS name.
func TestShippedTranslatedChains(t *testing.T) {
	for _, f := range configFiles(t) {
		t.Run(f, func(t *testing.T) {
			b := mustLoad(t, f)
			chains := chainRoutes(t, egressManager(t, b).GetRouteConfig().GetVirtualHosts()[0].GetRoutes())
			byValue := map[string]string{}
			for _, r := range chains[:len(chains)-1] { // the last one is fallback_chain_unknown
				byValue[r.GetMatch().GetHeaders()[0].GetStringMatch().GetExact()] = r.GetRoute().GetCluster()
			}
			for _, want := range []struct{ name, first, second string }{
				{"fallback_openai_anthropic", "api.openai.com", "api.anthropic.com"},
				{"fallback_anthropic_openai", "api.anthropic.com", "api.openai.com"},
			} {
				name := byValue["https://"+want.first+" https://"+want.second]
				c := cluster(b, name)
				if name != want.name || c == nil {
					t.Fatalf("chain %s then %s: route to cluster %q, want %s", want.first, want.second, name, want.name)
				}
				var levels, sockets []string
				for _, le := range c.GetLoadAssignment().GetEndpoints() {
					levels = append(levels, le.GetLbEndpoints()[0].GetEndpoint().GetHostname())
				}
				for _, m := range c.GetTransportSocketMatches() {
					sockets = append(sockets, m.GetName())
				}
				if strings.Join(levels, " ") != want.first+" "+want.second || len(sockets) != 2 {
					t.Errorf("cluster %s: levels %v, TLS matches %v", name, levels, sockets)
				}
			}
		})
	}
}

// TestGeneratedChainsValidate: the generator's routes and clusters for
// several origins (https:// on the default and another port, and plain
// http://) load into every configuration and pass Envoy's validation and
// the chain properties TestFallbackChainRoutes checks on the shipped ones:
// one route per sequence of two or three, each on a cluster whose priority
// levels are its origins in order.
func TestGeneratedChainsValidate(t *testing.T) {
	routes, clusters, err := envoy.ChainConfig(exampleOrigins)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range configFiles(t) {
		t.Run(f, func(t *testing.T) {
			b, err := load([]byte(withChains(t, readFile(t, f), routes, clusters)))
			if err != nil {
				t.Fatal(err)
			}
			vh := egressManager(t, b).GetRouteConfig().GetVirtualHosts()[0]
			chains := chainRoutes(t, vh.GetRoutes())
			if n := len(chains) - 1; n != 4*3+4*3*2 {
				t.Fatalf("%d chain routes, want 36", n)
			}
			seen := map[string]bool{}
			for _, r := range chains[:len(chains)-1] {
				value := r.GetMatch().GetHeaders()[0].GetStringMatch().GetExact()
				seen[value] = true
				c := cluster(b, r.GetRoute().GetCluster())
				if c == nil || !r.GetRoute().GetAutoHostRewrite().GetValue() {
					t.Fatalf("route %q: want a cluster and auto_host_rewrite", r.GetName())
				}
				var levels []string
				for i, le := range c.GetLoadAssignment().GetEndpoints() {
					ep := le.GetLbEndpoints()[0].GetEndpoint()
					if int(le.GetPriority()) != i || len(le.GetLbEndpoints()) != 1 {
						t.Errorf("cluster %q: level %d has priority %d and %d endpoints", c.GetName(), i, le.GetPriority(), len(le.GetLbEndpoints()))
					}
					scheme := "https://"
					if strings.HasPrefix(ep.GetHostname(), "vllm.models.svc") {
						scheme = "http://"
					}
					levels = append(levels, scheme+ep.GetHostname())
				}
				if got := strings.Join(levels, " "); got != value {
					t.Errorf("route %q matches %q, its cluster's levels are %q", r.GetName(), value, got)
				}
			}
			if len(seen) != 36 || !seen["http://vllm.models.svc:8000 https://api.openai.com https://vllm.example:8443"] {
				t.Errorf("sequences %v", seen)
			}
		})
	}
}

// exampleOrigins are the origins of testdata/chains.yaml.
var exampleOrigins = []string{"https://api.openai.com", "https://api.together.xyz", "https://vllm.example:8443", "http://vllm.models.svc:8000"}

// testdata/chains.yaml is the generator's output for exampleOrigins, so
// that envoy/oldest, which cannot import this module without raising its
// go-control-plane to ours, validates the same text against Envoy 1.36's
// schema. Regenerate it with
// go run ./cmd/tollgate envoy-chains --origins <exampleOrigins> > envoy/testdata/chains.yaml
func TestChainExampleIsCurrent(t *testing.T) {
	want, err := envoy.ChainFragments(exampleOrigins)
	if err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join("testdata", "chains.yaml")); got != want {
		t.Errorf("testdata/chains.yaml is not the generator's output for %s; regenerate it", strings.Join(exampleOrigins, ","))
	}
}

func TestChainConfigRefuses(t *testing.T) {
	many := make([]string, envoy.MaxChainOrigins+1)
	for i := range many {
		many[i] = "https://o" + string(rune('a'+i)) + ".example"
	}
	for _, origins := range [][]string{
		many,
		{"https://api.openai.com", "https://api.openai.com/"},
		{"https://api.openai.com/v1", "https://api.together.xyz"},
		{"ftp://x", "https://api.together.xyz"},
		{"https://x.a-b.example", "https://x.a.b.example"},
	} {
		if _, _, err := envoy.ChainConfig(origins); err == nil {
			t.Errorf("%v accepted", origins)
		}
	}
}

func readFile(t *testing.T, f string) string {
	t.Helper()
	data, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
