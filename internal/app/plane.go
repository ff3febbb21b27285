package app

import (
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/tollgate-dev/tollgate/dataplane"
	"github.com/tollgate-dev/tollgate/envoy"
	"github.com/tollgate-dev/tollgate/provider"
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

// devFallbackChains are the fallback chain routes of `tollgate dev`: one per
// ordered sequence of two or three of the origins dev reaches (the
// generator of `tollgate envoy-chains` makes the same for Envoy), so that
// cross-origin Helicone-Fallbacks work without configuring chains. The
// origins are the providers' public ones as the processor names them,
// served from --upstream-openai and --upstream-anthropic as the plain
// routes are, and every exact origin of --allowed-target-origins. A
// provider upstream with a path prefix is left out: a chain's level is an
// endpoint, and Envoy rewrites no path per level.
func devFallbackChains(cfg *Config, log *slog.Logger) ([]dataplane.FallbackChain, error) {
	var origins []string
	level := map[string]string{}
	add := func(origin, upstream string) {
		if _, dup := level[origin]; dup {
			return
		}
		origins = append(origins, origin)
		level[origin] = upstream
	}
	for _, p := range []struct{ origin, upstream string }{
		{provider.OpenAIOrigin, cfg.UpstreamOpenAI},
		{provider.AnthropicOrigin, cfg.UpstreamAnthropic},
	} {
		u, err := url.Parse(strings.TrimRight(p.upstream, "/"))
		if err != nil || u.Path != "" {
			log.Info("fallback chains leave out a provider whose upstream has a path prefix", "origin", p.origin, "upstream", p.upstream)
			continue
		}
		add(p.origin, strings.TrimRight(p.upstream, "/"))
	}
	for _, o := range cfg.AllowedTargets {
		if o = strings.TrimRight(strings.ToLower(strings.TrimSpace(o)), "/"); o != "*" && o != "" {
			add(o, o)
		}
	}
	seqs, err := envoy.ChainSequences(origins)
	if err != nil {
		return nil, fmt.Errorf("--allowed-target-origins: `tollgate dev` makes a fallback chain route for every sequence of two or three of its origins (the providers' and each exact allowed origin): %w; list fewer origins", err)
	}
	chains := make([]dataplane.FallbackChain, len(seqs))
	for i, seq := range seqs {
		chains[i] = dataplane.FallbackChain{Origins: seq, Levels: make([]string, len(seq))}
		for j, o := range seq {
			chains[i].Levels[j] = level[o]
		}
	}
	return chains, nil
}
