package processor

import (
	"net/url"
	"strings"

	"github.com/tollgate-dev/tollgate/helicone"
)

// Headers the processor sets for Helicone-Target-URL, with clear_route_cache.
const (
	upstreamOriginHeader = "x-tollgate-upstream"      // origin for the local data plane
	upstreamHostHeader   = "x-tollgate-upstream-host" // host[:port] for Envoy's dynamic forward proxy route
)

// Header names as messages spell them (DESIGN §4), made once.
var (
	targetURLName = helicone.Canonical(helicone.TargetURL)
	fallbackName  = helicone.Canonical(helicone.Fallback)
	fallbacksName = helicone.Canonical(helicone.Fallbacks)
)

// targetOrigin validates Helicone-Target-URL against the allowed origins and
// returns its origin (scheme://host[:port]) and host; path and query of the
// header are ignored, they come from the request. An origin listed exactly
// is allowed; "*" covers only public https:// origins
// (helicone.WildcardRefusal): an http:// origin, or an IP literal that is
// loopback, link-local, private or otherwise internal, must be listed.
func targetOrigin(header, raw string, allowed map[string]bool) (origin, host string, cerr *clientError) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", "", badRequest("invalid_header", "%s must be an absolute http(s) URL, got %q", header, helicone.Truncate(raw, 200))
	}
	origin = strings.ToLower(u.Scheme + "://" + u.Host)
	if allowed[origin] {
		return origin, strings.ToLower(u.Host), nil
	}
	if !allowed["*"] {
		return "", "", &clientError{status: 403, code: "target_not_allowed",
			message: header + " origin " + origin + " is not allowed by this gateway's configuration (allowed-target-origins)"}
	}
	if why := helicone.WildcardRefusal(origin); why != "" {
		return "", "", &clientError{status: 403, code: "target_not_allowed",
			message: header + " origin " + origin + " is not allowed by this gateway's configuration (allowed-target-origins): " + why}
	}
	return origin, strings.ToLower(u.Host), nil
}
