package processor

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/tollgate-dev/tollgate/policies/vault"
	"github.com/tollgate-dev/tollgate/provider"
)

// credentialHeader says whether key carries a provider credential an
// application may replace with a key-vault proxy key. Helicone reads
// Authorization, x-api-key and api-key (worker/src/lib/RequestWrapper.ts,
// setAuthorization), though it swaps only a "Bearer" Authorization.
func credentialHeader(key string) bool {
	return slices.Contains(provider.CredentialHeaders[:], key)
}

// proxyKeyUse is a proxy key found in the request headers.
type proxyKeyUse struct {
	header string // the credential header it came in
	bearer bool   // sent as "Bearer <key>"
	key    *vault.Key
	// pathWithoutKey is :path without the key= parameter, for a key that
	// came in the query (header == queryKeyHeader).
	pathWithoutKey string
}

// lookupProxyKey resolves a proxy key sent in a credential header. A proxy
// key is either swapped or refused: one the vault does not hold (or a
// gateway without a vault) is a 401, as Helicone answers "Proxy key not
// found", and it never reaches the provider.
func (s *Server) lookupProxyKey(header, value string) (*proxyKeyUse, *clientError) {
	var v *vault.Vault
	if s.vault != nil {
		v = s.vault()
	}
	k, ok := v.Lookup(value)
	if !ok {
		msg := "Proxy key not found: the key in " + header + " is not in this gateway's key vault"
		if v == nil {
			msg = "Proxy key not found: this gateway has no key vault (--key-vault)"
		}
		return nil, &clientError{status: 401, code: "unauthorized", message: msg}
	}
	return &proxyKeyUse{header: header, bearer: vault.HasBearer(value), key: k}, nil
}

// tenantWithProxyKey is the tenant of a call made with a proxy key. The key
// says it (Helicone: a proxy key authenticates its organization without
// Helicone-Auth). A Helicone-Auth key configured for another tenant is a
// 401: the call must not be billed to one tenant with another's provider
// key. With no Helicone-Auth keys configured, Helicone-Auth is only a label
// and the proxy key's tenant stands.
func (s *Server) tenantWithProxyKey(p *proxyKeyUse, auth string) (string, *clientError) {
	if auth == "" || !s.auth.KeysConfigured() {
		return p.key.Tenant, nil
	}
	t, err := s.auth.Tenant(auth)
	if err != nil {
		return "", &clientError{status: 401, code: "unauthorized", message: err.Error()}
	}
	if t != p.key.Tenant {
		return "", &clientError{status: 401, code: "unauthorized",
			message: "the proxy key in " + p.header + " belongs to another tenant than the Helicone-Auth key"}
	}
	return t, nil
}

// destinationError refuses a call that would take the provider key
// anywhere but where the vault entry says it may go: its provider's own
// routes (a call on that provider's paths, not re-routed, or sent to the
// provider's registered origin), or an origin the entry lists
// (Helicone-Target-URL, Helicone-OpenAI-Api-Base). The provider is the
// one the call is recorded as (gemini, together, groq …), not the wire
// format: an OpenAI key must not reach Together because Together's route
// speaks OpenAI's format. Without this, a client holding a proxy key
// could name its own server as the target and receive the real key. (A
// Helicone-Fallbacks entry on another origin must bring its own key:
// planAttempts.)
func (p *proxyKeyUse) destinationError(c *call) *clientError {
	k := p.key
	refuse := func(where string) *clientError {
		return &clientError{status: 403, code: "target_not_allowed",
			message: "the proxy key " + k.ID + " may not be sent to " + where + " (its vault entry allows provider " + k.Provider + " and the origins it lists)"}
	}
	if c.rec.TargetURL != "" {
		if u, ok := provider.ByOrigin(c.rec.TargetURL); ok && u.Name == k.Provider {
			return nil // the provider's own origin, by configuration
		}
		if !k.AllowsOrigin(c.rec.TargetURL) {
			return refuse(c.rec.TargetURL)
		}
	} else if route := routeProvider(c); k.Provider != route {
		where := "the " + route + " route"
		if route == "" {
			where = "a path of no known provider"
		}
		return refuse(where)
	}
	return nil
}

// routeProvider is the provider a call's path routes it to: the one its
// path names (gemini, together, groq, configured ones), else its format's.
// Azure's paths without a named origin take OpenAI's route.
func routeProvider(c *call) string {
	if c.named != "" {
		return c.named
	}
	return c.format
}

// queryKeyHeader stands for the key= query parameter as the place a proxy
// key came in: Gemini's REST examples send the key there.
const queryKeyHeader = "the key= query parameter"

// proxyKeyInQuery finds a proxy key in the key= query parameter of a
// request's path and returns it with the path without that parameter; n
// is how many key= parameters held one (every one is taken out; more than
// one is refused, as two proxy keys in headers are). Names and values are
// read percent-decoded and the name in any case (k%65y=, KEY=,
// key=sk%2Dhelicone-proxy-…), as a server may read them, so that no
// spelling of a proxy key reaches the provider unswapped. err (a 400) is
// for what cannot be read one way only: a proxy key in a parameter that
// is not valid percent-encoding, in a parameter other than key=, or
// beside another key= value. A call without a proxy key costs a substring
// search or two.
func proxyKeyInQuery(path string) (key, rest string, n int, err error) {
	base, query, found := strings.Cut(path, "?")
	if !found || (!strings.Contains(query, vault.Prefix) && !strings.Contains(query, "%")) {
		return "", "", 0, nil // a proxy key spelt otherwise needs a percent-escape
	}
	var kept []string
	others := 0 // key= parameters without a proxy key
	for _, param := range strings.Split(query, "&") {
		rawName, rawValue, _ := strings.Cut(param, "=")
		name, okName := lenientUnescape(rawName)
		value, okValue := lenientUnescape(rawValue)
		isKey := strings.EqualFold(name, "key")
		switch {
		case !vault.IsProxyKey(value):
			if isKey {
				others++
			}
			kept = append(kept, param)
			continue
		case !okName || !okValue:
			return "", "", 0, fmt.Errorf("the query parameter %q holds a key-vault proxy key in invalid percent-encoding", clipParam(rawName))
		case !isKey:
			return "", "", 0, fmt.Errorf("the query parameter %q holds a key-vault proxy key; only key= takes one", clipParam(name))
		}
		if n++; n == 1 {
			key = value
		}
	}
	if n == 0 {
		return "", "", 0, nil
	}
	if others > 0 {
		return "", "", 0, errors.New("the key= query parameter is given a key-vault proxy key and another value; send one")
	}
	if len(kept) == 0 {
		return key, base, n, nil
	}
	return key, base + "?" + strings.Join(kept, "&"), n, nil
}

// lenientUnescape percent-decodes s as a query component ('+' is a space),
// leaving an invalid escape as it is; ok is false when there was one.
func lenientUnescape(s string) (out string, ok bool) {
	if !strings.ContainsAny(s, "%+") {
		return s, true
	}
	if v, err := url.QueryUnescape(s); err == nil {
		return v, true
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '+':
			b.WriteByte(' ')
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			v, _ := strconv.ParseUint(s[i+1:i+3], 16, 8)
			b.WriteByte(byte(v))
			i += 2
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// clipParam keeps a parameter's name short in a message.
func clipParam(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// swap sets the provider key where the call's provider reads it
// (provider.CredentialHeader: Authorization as a Bearer for OpenAI and the
// OpenAI-compatible APIs, x-api-key for Anthropic, api-key for Azure,
// x-goog-api-key for Gemini's native API), and removes the proxy key from
// where it came: another header, or the key= query parameter, taken out
// of the path. The provider is the key's, which destinationError holds to
// the call's; an Azure call's is Azure (an openai key whose entry lists an
// Azure resource). Fallback entries restore what m sets (attempts.go,
// forwardedHeader).
func (p *proxyKeyUse) swap(c *call, m *headerMutation) {
	name := p.key.Provider
	if c.azure {
		name = provider.Azure
	}
	header, bearer := provider.CredentialHeader(name, c.format)
	value := p.key.ProviderKey
	if bearer {
		value = "Bearer " + value
	}
	m.setHeader(header, value)
	switch {
	case p.header == queryKeyHeader:
		m.setHeader(":path", p.pathWithoutKey)
	case p.header != header:
		m.removeHeader(p.header)
	}
	c.proxyKeyID, c.rec.ProxyKeyID = p.key.ID, p.key.ID
	c.swappedHeader, c.swappedValue = header, value
}

// isProxyKeyHeader says whether a credential header holds a proxy key,
// reading Envoy's raw bytes: no allocation for the usual provider key.
func isProxyKeyHeader(h *corev3.HeaderValue) bool {
	if raw := h.GetRawValue(); len(raw) > 0 {
		return vault.IsProxyKeyBytes(raw)
	}
	return vault.IsProxyKey(h.GetValue())
}
