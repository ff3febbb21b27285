package processor

import (
	"github.com/tollgate-dev/tollgate/policies/vault"
)

// credentialHeader says whether key carries a provider credential an
// application may replace with a key-vault proxy key: OpenAI's
// Authorization, Anthropic's x-api-key, Azure's api-key. Helicone reads the
// same three (worker/src/lib/RequestWrapper.ts, setAuthorization), though
// it swaps only a "Bearer" Authorization.
func credentialHeader(key string) bool {
	return key == "authorization" || key == "x-api-key" || key == "api-key"
}

// proxyKeyUse is a proxy key found in the request headers.
type proxyKeyUse struct {
	header string // the credential header it came in
	bearer bool   // sent as "Bearer <key>"
	key    *vault.Key
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
	return &proxyKeyUse{header: header, bearer: hasBearer(value), key: k}, nil
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

// swap sets the provider key in the header the proxy key came in, in the
// form the provider expects there.
func (p *proxyKeyUse) swap(m *headerMutation) {
	value := p.key.ProviderKey
	if p.bearer || p.header == "authorization" {
		value = "Bearer " + value
	}
	m.setHeader(p.header, value)
}

func hasBearer(v string) bool {
	for len(v) > 0 && v[0] == ' ' {
		v = v[1:]
	}
	return len(v) > 7 && (v[:7] == "Bearer " || v[:7] == "bearer " || v[:7] == "BEARER ")
}
