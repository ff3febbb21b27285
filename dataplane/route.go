package dataplane

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/tollgate-dev/tollgate/dataplane/internal/headers"
)

// anthropicPrefix is the route's path prefix for Anthropic; like an Envoy
// prefix match it also matches /v1/messages/count_tokens and the like.
const anthropicPrefix = "/v1/messages"

// upstreamTarget is an origin plus an optional path prefix that the request
// path is appended to.
type upstreamTarget struct {
	base   string // scheme://host[:port][/prefix] without a trailing slash
	host   string
	scheme string
	prefix string // escaped path prefix without a trailing slash, "" for none

	// A provider route's (Config.Routes): the path-separated prefix it
	// matches, and whether it is taken off the path before the upstream's
	// prefix goes in front.
	match string
	strip bool
	re    *regexp.Regexp // a regex route's (Route.Regex), matched instead of match
}

// matches is Envoy's path_separated_prefix: the path is match or
// continues with a '/'.
// A regex route's expression must match the whole path (the caller has
// taken the query off), as Envoy's safe_regex.
func (t *upstreamTarget) matches(path string) bool {
	if t.re != nil {
		return t.re.MatchString(path)
	}
	rest, ok := strings.CutPrefix(path, t.match)
	return ok && (rest == "" || rest[0] == '/')
}

// upstreamPath is the path the upstream gets: a stripping route's prefix
// taken off ("/" when nothing is left), the upstream's own prefix in front.
func (t *upstreamTarget) upstreamPath(path string) string {
	if t.strip {
		path = strings.TrimPrefix(path, t.match)
		if path == "" || path[0] == '?' {
			path = "/" + path
		}
	}
	return t.prefix + path
}

// origin is scheme://host[:port]; the router's :path (prefix included) is
// appended to it.
func (t *upstreamTarget) origin() string { return t.scheme + "://" + t.host }

// parseUpstream accepts "http(s)://host[:port][/prefix]" and nothing else: no
// user info, query or fragment, so a typo fails loudly instead of routing
// somewhere odd.
func parseUpstream(raw string) (*upstreamTarget, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("upstream %q: scheme must be http or https", raw)
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return nil, fmt.Errorf("upstream %q: want scheme://host[:port][/prefix]", raw)
	}
	prefix := strings.TrimRight(u.EscapedPath(), "/")
	return &upstreamTarget{base: u.Scheme + "://" + u.Host + prefix, host: u.Host, scheme: u.Scheme, prefix: prefix}, nil
}

// route is the result of route selection. Like Envoy, a request that matches
// no usable route still runs the request-path filters; the router then answers
// with the local reply stored here.
type route struct {
	target *upstreamTarget
	chain  []*upstreamTarget // a fallback chain's priority levels; target is level 0
	status int
	detail string
	// filtered: the route's cluster has the upstream filter
	// (Config.UpstreamFilter): a chain route, an *_attempts route
	// (AttemptsHeader), or any route with UpstreamFilterConfig.EveryCluster.
	filtered bool
	// dropAttemptCount: a plain route of envoy/*.yaml (neither a chain nor
	// an *_attempts route, and no UpstreamFilterConfig.EveryCluster)
	// removes x-envoy-attempt-count itself (request_headers_to_remove),
	// with or without an upstream filter configured. The router sets the
	// count, over a client's, before it applies the route's removals
	// (router.cc, Filter::decodeHeaders), and again on each retry, after
	// them; so only the first attempt's goes.
	dropAttemptCount bool
}

// addChain adds a fallback chain route (Config.FallbackChains): the route
// for the header value origins, whose levels are levels (nil: origins).
func (p *Proxy) addChain(origins, levels []string) error {
	if levels == nil {
		levels = origins
	}
	if len(origins) < 2 || len(levels) != len(origins) {
		return fmt.Errorf("chain %v (levels %v): want two origins or more, one level each", origins, levels)
	}
	chain := make([]*upstreamTarget, len(levels))
	for i, o := range levels {
		t, err := parseUpstream(o)
		if err != nil {
			return err
		}
		if t.prefix != "" {
			return fmt.Errorf("chain origin %q: no path prefix (the request's path goes to every level)", o)
		}
		chain[i] = t
	}
	if p.chains == nil {
		p.chains = map[string][]*upstreamTarget{}
	}
	p.chains[strings.Join(origins, " ")] = chain
	return nil
}

// pickRoute is this data plane's route table: FallbackChainHeader wins,
// then UpstreamHeader, then the path prefix; AttemptsHeader picks the
// *_attempts twin of the last two (see route.filtered). It is run when the
// request arrives and again after every processor reply that sets
// clear_route_cache, as Envoy does; a header change without
// clear_route_cache leaves the cached route alone.
func (p *Proxy) pickRoute(h headers.List) route {
	r := p.pickTarget(h)
	switch {
	case r.target == nil:
	case p.upFilter != nil && p.upFilter.EveryCluster:
		r.filtered = true
	case r.chain != nil || h.Has(AttemptsHeader):
		// A chain or *_attempts route: its cluster has the filter, and
		// the count stays for it.
		r.filtered = p.upFilter != nil
	default:
		r.dropAttemptCount = true
	}
	return r
}

func (p *Proxy) pickTarget(h headers.List) route {
	// The fallback chain routes come first in envoy/*.yaml, then their
	// catch-all (direct_response 400), then the target-URL routes.
	if v, ok := h.Get(FallbackChainHeader); ok {
		chain, found := p.chains[v]
		if !found {
			return route{status: http.StatusBadRequest, detail: "no fallback chain route serves these origins"}
		}
		return route{target: chain[0], chain: chain}
	}
	if v, ok := h.Get(UpstreamHeader); ok {
		t, err := parseUpstream(v)
		if err != nil {
			return route{status: http.StatusBadRequest, detail: "invalid " + UpstreamHeader + " header: " + err.Error()}
		}
		return route{target: t}
	}
	path, _ := h.Get(":path")
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	for _, r := range p.routes {
		if r.matches(path) {
			return route{target: r}
		}
	}
	t := p.openai
	if strings.HasPrefix(path, anthropicPrefix) {
		t = p.anthropic
	}
	if t == nil {
		return route{status: http.StatusNotFound, detail: "no upstream configured for this route"}
	}
	return route{target: t}
}
