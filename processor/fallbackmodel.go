package processor

import (
	"strconv"

	"github.com/tollgate-dev/tollgate/policies/attempts"
	"github.com/tollgate-dev/tollgate/provider"
)

// modelOrigins moves to the other provider's origin every entry that names
// only a model (no target-url) when that model is the other provider's:
// `Helicone-Fallback: [{"model": "claude-sonnet-4-5"}]` on an OpenAI chat
// call falls back to Anthropic, as if the entry named
// https://api.anthropic.com. From there the entry is a translated one like
// any other (crossFormats: a configured key, a chat path, the onCodes guard,
// the egress checks). Which provider a model is comes from the price table
// and the families' prefixes (provider.PriceTable.ModelProvider), never from
// the request.
//
// A call behind a Helicone-Target-URL (an OpenAI-compatible server, a
// proxy, Azure) is not concerned: a "claude-…" name may well be served by
// that target, as it was before. A call to a provider named by its path
// (Groq, Together, Gemini's OpenAI-compatible endpoint) is: its entry is
// moved too, and crossFormats refuses it, since only a call on OpenAI's or
// Anthropic's own API may be translated. origins is changed in place.
func (s *Server) modelOrigins(c *call, plan *attempts.FallbackPlan, origins []string) {
	if c.rec.TargetURL != "" || (c.format != provider.OpenAI && c.format != provider.Anthropic) {
		return
	}
	for i := range origins {
		e := plan.Entry(i)
		if e == nil || e.TargetOrigin != "" {
			continue
		}
		if f := s.prices.ModelProvider(entryModel(e)); f != "" && f != c.format {
			origins[i] = provider.PublicOrigin(f)
		}
	}
}

// entryDest names, in messages, where entry i goes: its target-url, or the
// model that sent it to another provider.
func entryDest(plan *attempts.FallbackPlan, i int, origin string) string {
	if e := plan.Entry(i); e != nil && e.TargetOrigin == "" {
		return "model " + strconv.Quote(entryModel(e)) + " (" + originProvider("", origin) + "'s)"
	}
	return "target-url " + origin
}
