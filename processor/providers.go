package processor

import (
	"google.golang.org/grpc/metadata"

	"github.com/tollgate-dev/tollgate/provider"
)

// ProviderMetadata is the gRPC metadata an Envoy configuration sends with a
// call's ext_proc stream to name the provider whose origin the call goes
// to, when the Host, not the path, picks it: a mesh sidecar's per-virtual-
// host ExtProcPerRoute (grpc_initial_metadata), as the Istio example sets
// "together" on api.together.xyz:80. It names openai, anthropic or a
// registered provider (provider.ResolveOn: gemini, together, groq,
// configured ones), whose own paths the call then is read by (Groq's
// /openai/v1/chat/completions, not Azure's look-alike; Anthropic's
// OpenAI-compatible /v1/chat/completions), and which its record, price,
// egress check and key-vault binding name. Envoy's configuration sets it,
// never a client.
const ProviderMetadata = "x-tollgate-provider"

// noteProvider reads the path's provider, format and endpoint
// (provider.Resolve): Gemini's native paths, its OpenAI-compatible one and
// the OpenAI-compatible providers routed by path (Together, Groq, those
// configured) name their provider in the record, which prices the call
// and is what the egress policy checks. On a Gemini generate path the
// model is the path's (c.deployment, read like an Azure deployment's until
// the body names one, which Gemini's bodies do not).
func noteProvider(c *call, path string) {
	var name string
	name, c.format, c.endpoint = provider.Resolve(path)
	if on := metadata.ValueFromIncomingContext(c.ctx, ProviderMetadata); len(on) == 1 {
		if format, ep, ok := provider.ResolveOn(on[0], path); ok {
			name, c.format, c.endpoint = on[0], format, ep
		}
	}
	c.rec.Provider = name
	if name != c.format {
		c.named = name
	}
	if model, _, ok := provider.GeminiPath(path); ok {
		c.deployment = model
		c.rec.Model = model
	}
}

// noteTargetProvider names the provider a Helicone-Target-URL (or
// Helicone-OpenAI-Api-Base) origin is, when it is one of the providers
// routed by path (https://api.together.xyz: together), so that the call is
// priced and checked as that provider's; "" and false for any other
// origin, which is recorded by its host.
func noteTargetProvider(c *call, origin string) (string, bool) {
	u, ok := provider.ByOrigin(origin)
	if !ok {
		return "", false
	}
	if u.Name != c.format {
		c.named = u.Name
	}
	return u.Name, true
}

// priceProvider is the provider a call is priced and checked under: the
// named one (gemini, together, …), else its format's (openai, anthropic;
// Azure is priced as OpenAI, through its deployment map).
func (c *call) priceProvider() string {
	if x := answeredCross(c); x != nil { // another provider answered (translated.go)
		return x.format
	}
	return routeProvider(c)
}

// streamsByPath says whether the endpoint streams whatever the body says:
// Gemini's streamGenerateContent.
func streamsByPath(ep provider.Endpoint) bool {
	return ep == provider.EndpointStreamGenerateContent
}
