// Where a fallback's attempts go: the route or fallback chain of the
// entries' origins, and the checks each entry's origin must pass.

package processor

import (
	"slices"
	"strconv"
	"strings"

	"github.com/tollgate-dev/tollgate/policies/attempts"
	"github.com/tollgate-dev/tollgate/provider"
)

// routeFallbacks decides where each attempt goes. Envoy picks the upstream
// host before the upstream filter runs (router.cc chooses it, then
// upstream_request.cc runs the upstream filters), so an attempt cannot move
// itself to another origin. Entries on one origin keep one route: the
// request's, or the entries' common origin (as with Helicone-Target-URL).
// Entries on several origins take a fallback chain route: the processor
// names the attempts' origins in fallbackChainHeader, which selects a
// cluster with one priority level per attempt, and the routes' retry
// priority (previous_priorities, update_frequency 1) sends retry N to level
// N. Every origin of an entry is checked like Helicone-Target-URL (allowed
// origins, egress policy). An entry on the provider of the other format
// (OpenAI and Anthropic) is translated (translated.go); it may not be the
// first entry, and needs the gateway's key for that provider.
func (s *Server) routeFallbacks(c *call, plan *attempts.FallbackPlan, m *headerMutation) (clearRoute bool, cerr *clientError) {
	rec := c.rec
	route := ownOrigin(c)
	origins := plan.AttemptOrigins(route)
	s.modelOrigins(c, plan, origins) // an entry naming another provider's model goes there
	cross, cerr := s.crossFormats(c, plan, origins)
	if cerr != nil {
		return false, cerr
	}
	c.crossFormat = cross
	for i, o := range origins {
		if o == route {
			continue
		}
		if cerr := s.checkEntryOrigin(c, entryName(c, plan, i), o); cerr != nil {
			return false, cerr
		}
		if cross[i] != "" {
			continue // sent with the gateway's key for that provider
		}
		if c.proxyKeyID != "" && !setsHeader(plan.Entry(i), c.swappedHeader) {
			// The key vault's provider key is for the request's own
			// destination; another origin gets an attempt only if the
			// entry replaces that very header with a key of its own.
			return false, badRequest("invalid_header", "%s target-url %s: this call's provider key comes from the key vault and goes only to %s; give the entry its own key in \"headers\" as %s",
				entryName(c, plan, i), o, route, c.swappedHeader)
		}
	}
	distinct := slices.Compact(slices.Sorted(slices.Values(origins)))
	if c.proxyKeyID != "" && len(distinct) > 1 {
		// On a chain, Envoy passes an attempt to the next priority level
		// when its own origin has no address (docs/envoy.md): an entry on
		// the request's origin would then take the vault's key elsewhere.
		for i := range origins {
			if cross[i] == "" && !setsHeader(plan.Entry(i), c.swappedHeader) {
				return false, badRequest("invalid_header", "%s: with a key-vault key, a fallback across origins needs every entry's own key in \"headers\" as %s (%s has none)",
					fallbackHeaderName(c), c.swappedHeader, entryName(c, plan, i))
			}
		}
	}
	if len(distinct) > 1 && slices.Contains(distinct, "") {
		return false, badRequest("invalid_header", "%s: the entries name several origins, and this path has no provider origin of its own for the others; give every entry a target-url", fallbackHeaderName(c))
	}
	if len(distinct) > 1 {
		m.setHeader(fallbackChainHeader, strings.Join(origins, " "))
		c.chain = origins
		return true, nil
	}
	target := distinct[0]
	if f := otherFormat(c, target); f != "" {
		// A translated entry rides a fallback chain (translated.go); with
		// every attempt on the other provider there is none.
		return false, badRequest("invalid_header", "%s: every entry is on %s's origin; a fallback translated to another provider needs an entry on this request's own provider (%s) before it",
			fallbackHeaderName(c), f, c.format)
	}
	if target == "" || target == route {
		return false, nil
	}
	// Every attempt goes to the entries' one origin: Helicone sends each
	// entry to its own target-url, whatever Helicone-Target-URL says.
	rec.TargetURL, rec.Provider = target, originProvider(c.format, target)
	host := strings.TrimPrefix(strings.TrimPrefix(target, "https://"), "http://")
	m.setHeader(upstreamOriginHeader, target)
	m.setHeader(upstreamHostHeader, host)
	return true, nil
}

// setsHeader reports whether an entry sets the header name.
func setsHeader(e *attempts.FallbackEntry, name string) bool {
	if e == nil {
		return false
	}
	for _, h := range e.Headers {
		if h[0] == name {
			return true
		}
	}
	return false
}

// fallbackChainHeader selects a fallback chain route: the origin of every
// attempt, in order, separated by spaces. Only the processor sets it (the
// configs in envoy/ drop a client's before routing, and the route removes
// it before the upstream); a chain no route serves is Envoy's 400.
const fallbackChainHeader = "x-tollgate-fallback-chain"

// checkEntryOrigin applies to an entry's origin the checks of
// Helicone-Target-URL, naming the entry.
func (s *Server) checkEntryOrigin(c *call, name, origin string) *clientError {
	if origin == provider.PublicOrigin(c.format) {
		return nil
	}
	checked := origin
	if otherFormat(c, origin) == "" { // the other provider's origin is translated to (crossFormats)
		var terr *clientError
		checked, _, terr = targetOrigin(name+" target-url", origin, s.allowedOrigins)
		if terr != nil {
			return terr
		}
	}
	if c.egress != nil {
		if err := c.egress.CheckTargetOrigin(checked); err != nil {
			denied := deniedError(err)
			denied.message = name + " target-url: " + denied.message
			return s.egressDenied(c, denied)
		}
	}
	return nil
}

// entryName names, in messages, the entry of a fallback header that attempt
// i+1 uses, numbered from 0 as the header lists them.
func entryName(c *call, plan *attempts.FallbackPlan, i int) string {
	if plan.OriginalFirst {
		i--
	}
	return fallbackHeaderName(c) + " entry " + strconv.Itoa(i)
}

// originProvider is the record's provider for an origin: the format's name
// for the providers' own origins, else the host (as for Helicone-Target-URL).
func originProvider(format, origin string) string {
	for _, f := range []string{format, provider.OpenAI, provider.Anthropic} {
		if f != "" && origin == provider.PublicOrigin(f) {
			return f
		}
	}
	return strings.TrimPrefix(strings.TrimPrefix(origin, "https://"), "http://")
}

func fallbackHeaderName(c *call) string {
	if c.helicone.Fallback != "" {
		return fallbackName
	}
	return fallbacksName
}

// ownOrigin is where the request itself goes: its Helicone-Target-URL, the
// origin of the provider its path (or the sidecar's metadata) names —
// Groq's for /groq/openai/v1/…, Google's for /v1beta/openai/… — else its
// format's public origin. "" when the named provider's origin is unknown.
func ownOrigin(c *call) string {
	switch {
	case c.rec.TargetURL != "":
		return c.rec.TargetURL
	case c.named == "":
		return provider.PublicOrigin(c.format)
	case provider.PublicOrigin(c.named) != "":
		return provider.PublicOrigin(c.named) // a sidecar naming anthropic on its OpenAI-compatible path
	}
	for _, u := range provider.Registered() {
		if u.Name == c.named {
			return u.Origin
		}
	}
	return ""
}

// onProviderProper reports whether the call goes to OpenAI's or Anthropic's
// own API (its format's public origin, no Helicone-Target-URL, no other
// provider named): only such a call may fall back to the other of the two
// with a translation, the attempts before it being on the client's key for
// that very provider.
func onProviderProper(c *call) bool {
	return c.named == "" && c.rec.TargetURL == "" && provider.PublicOrigin(c.format) != ""
}
