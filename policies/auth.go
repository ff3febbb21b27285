// Package policies holds what Tollgate decides about a request. This
// package itself decides who a request is for (Auth: the Helicone-Auth key
// and its tenant); each other decision has a package below it:
//
//   - gate: the cache and rate limits, in one store round trip per request;
//   - ratelimit: the rate-limit policy grammar, token buckets and the
//     replies Tollgate makes itself, shared by the gate and the egress policy;
//   - egress: the mesh-wide egress policy file (what each workload may call);
//   - attempts: retries and fallbacks to other models or providers;
//   - prompt: versioned prompt templates;
//   - cachecontrol: the lifetime a request's Cache-Control asks for.
//
// Each is small, pure where it can be, and tested alone; the stores they
// need are interfaces they own (gate.Store, prompt.Store), implemented in
// storage/.
package policies

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// DefaultTenant is the tenant of requests that carry no Helicone-Auth when
// no keys are configured.
const DefaultTenant = "default"

// APIKey is one configured Helicone-Auth key. Only its SHA-256 is kept in
// configuration, so a leaked config file does not leak keys.
type APIKey struct {
	SHA256 string `json:"sha256"` // hex of sha256(key)
	Tenant string `json:"tenant"`
}

// Auth maps Helicone-Auth values to tenants.
type Auth struct {
	tenantByHash map[string]string
	required     bool
}

// ErrUnauthorized is wrapped by every rejection; its message is safe to show
// (it never contains the key).
var ErrUnauthorized = errors.New("unauthorized")

// NewAuth builds the policy. required makes a missing Helicone-Auth a 401
// when keys are configured.
func NewAuth(keys []APIKey, required bool) (*Auth, error) {
	a := &Auth{tenantByHash: make(map[string]string, len(keys)), required: required}
	var errs []error
	for i, k := range keys {
		h := strings.ToLower(strings.TrimSpace(k.SHA256))
		if b, err := hex.DecodeString(h); err != nil || len(b) != sha256.Size {
			errs = append(errs, fmt.Errorf("auth.keys[%d].sha256: want 64 hex digits", i))
			continue
		}
		if k.Tenant == "" {
			errs = append(errs, fmt.Errorf("auth.keys[%d].tenant: must not be empty", i))
			continue
		}
		a.tenantByHash[h] = k.Tenant
	}
	return a, errors.Join(errs...)
}

// HashKey returns the hex SHA-256 of a key, the form configuration stores.
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// Tenant resolves a Helicone-Auth header value ("Bearer <key>" or the bare
// key). With no keys configured every request is accepted: the tenant is
// derived from the key's hash, or DefaultTenant when there is none.
func (a *Auth) Tenant(header string) (string, error) {
	key := strings.TrimSpace(header)
	if len(key) > 7 && strings.EqualFold(key[:7], "bearer ") {
		key = strings.TrimSpace(key[7:])
	}
	if len(a.tenantByHash) == 0 {
		if key == "" {
			return DefaultTenant, nil
		}
		return "key-" + HashKey(key)[:16], nil
	}
	if key == "" {
		if a.required {
			return "", fmt.Errorf("%w: Helicone-Auth header is required", ErrUnauthorized)
		}
		return DefaultTenant, nil
	}
	if tenant, ok := a.tenantByHash[HashKey(key)]; ok {
		return tenant, nil
	}
	return "", fmt.Errorf("%w: Helicone-Auth key is not recognised", ErrUnauthorized)
}

// KeysConfigured reports whether tenants come from configured keys (an
// unknown key is then a 401) rather than from hashing any key.
func (a *Auth) KeysConfigured() bool { return len(a.tenantByHash) > 0 }
