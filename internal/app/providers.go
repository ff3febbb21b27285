package app

import (
	"errors"
	"fmt"

	"github.com/tollgate-dev/tollgate/dataplane"
	"github.com/tollgate-dev/tollgate/provider"
)

// compatibleProviders reads --openai-compatible, name=origin[/prefix]
// entries, into the provider list (provider.Builtins plus these): the one
// list the processor, the egress policy, prices and the dev data plane's
// routes read. A name given twice is an error.
func compatibleProviders(entries []string) (provider.Upstreams, error) {
	var extra []provider.Upstream
	seen := map[string]bool{}
	var errs []error
	for _, e := range entries {
		u, err := provider.ParseCompatible(e)
		switch {
		case err != nil:
			errs = append(errs, err)
		case seen[u.Name]:
			errs = append(errs, fmt.Errorf("provider %q is listed twice", u.Name))
		default:
			seen[u.Name] = true
			extra = append(extra, u)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return provider.WithCompatible(extra), nil
}

// devProviderRoutes are the dev data plane's routes for the providers
// routed by path, as envoy/*.yaml has one per built-in entry: Gemini's
// /v1beta (and its stable /v1/models/{model}:{method} calls, a regex
// route) to --upstream-gemini, each OpenAI-compatible provider's /<name>
// to its origin with the name taken off the path.
func devProviderRoutes(cfg *Config, list provider.Upstreams) []dataplane.Route {
	routes := make([]dataplane.Route, 0, len(list))
	for _, u := range list {
		origin := u.Origin
		if u.Name == provider.Gemini && cfg.UpstreamGemini != "" {
			origin = cfg.UpstreamGemini
		}
		routes = append(routes, dataplane.Route{Prefix: u.Route, Upstream: origin, StripPrefix: u.StripRoute()})
		if u.RouteRegex != "" {
			routes = append(routes, dataplane.Route{Prefix: u.Route, Upstream: origin, Regex: u.RouteRegex})
		}
	}
	return routes
}
