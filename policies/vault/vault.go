// Package vault is Tollgate's key vault: proxy keys handed to applications
// in place of provider keys, as Helicone's vault does. An application sends
// `Authorization: Bearer sk-helicone-proxy-…` (or the key as `x-api-key` /
// `api-key`); the processor swaps in the provider key the proxy key stands
// for in the request-headers phase, so the real key lives only in a
// Kubernetes Secret and in Tollgate's memory: never in the application,
// a log, a metric or ClickHouse. A proxy key also says who is calling: its
// tenant, and its id, which the record keeps and the egress policy can
// select on (per-key limits and budgets).
//
// The vault is one YAML file (a mounted Secret), re-read every 2 s like the
// egress policy; `tollgate vault issue` makes a key and the entry for it.
package vault

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/google/uuid"
	"go.yaml.in/yaml/v3"

	"github.com/tollgate-dev/tollgate/provider"
)

// Prefix starts every proxy key (Helicone's; its worker recognises
// "Bearer sk-helicone-proxy…", worker/src/lib/RequestWrapper.ts).
const Prefix = "sk-helicone-proxy-"

// Key is one vault entry.
type Key struct {
	ID          string // names the key in records and the egress policy; not secret
	Tenant      string // the tenant a call with this key belongs to
	ProviderKey string // the secret sent to the provider instead of the proxy key
	// Provider is the provider the key is for, by its record name: the
	// only provider whose routes it may take (openai, anthropic, gemini,
	// together, groq, one configured with --openai-compatible: a call on
	// that provider's paths or to its registered origin), or azure (only
	// through Origins). The provider key is sent in the header that
	// provider reads (provider.CredentialHeader).
	Provider string
	// Origins are the other origins (scheme://host[:port]) the key may be
	// sent to: Helicone-Target-URL, Helicone-OpenAI-Api-Base and fallback
	// target-urls. A call that would take the key anywhere else is refused.
	Origins []string
	sum     [sha256.Size]byte
}

// AllowsOrigin says whether the provider key may be sent to origin.
func (k *Key) AllowsOrigin(origin string) bool {
	return slices.Contains(k.Origins, strings.TrimRight(strings.ToLower(origin), "/"))
}

// Vault maps proxy keys to provider keys. It is immutable; a nil *Vault
// knows no key.
type Vault struct {
	bySum map[[sha256.Size]byte]*Key
}

// file is the YAML form.
type file struct {
	Keys []struct {
		ID             string   `yaml:"id"`
		Tenant         string   `yaml:"tenant"`
		ProxyKeySHA256 string   `yaml:"proxyKeySHA256"`
		ProviderKey    string   `yaml:"providerKey"`
		Provider       string   `yaml:"provider"`
		Origins        []string `yaml:"origins"`
	} `yaml:"keys"`
}

// Parse reads a vault file. Errors name the entry and field, never a key.
func Parse(data []byte) (*Vault, error) {
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("vault: %w", scrub(err))
	}
	v := &Vault{bySum: make(map[[sha256.Size]byte]*Key, len(f.Keys))}
	ids := make(map[string]bool, len(f.Keys))
	var errs []error
	for i, e := range f.Keys {
		where := fmt.Sprintf("keys[%d]", i)
		if e.ID != "" {
			where += " (" + e.ID + ")"
		}
		k := &Key{ID: strings.TrimSpace(e.ID), Tenant: strings.TrimSpace(e.Tenant), ProviderKey: strings.TrimSpace(e.ProviderKey),
			Provider: strings.ToLower(strings.TrimSpace(e.Provider))}
		badOrigin := ""
		for _, o := range e.Origins {
			norm, ok := origin(o)
			if !ok {
				badOrigin = o
				break
			}
			k.Origins = append(k.Origins, norm)
		}
		sum, err := hex.DecodeString(strings.ToLower(strings.TrimSpace(e.ProxyKeySHA256)))
		switch {
		case k.ID == "":
			errs = append(errs, fmt.Errorf("vault %s: id must not be empty", where))
		case ids[k.ID]:
			errs = append(errs, fmt.Errorf("vault %s: id is used twice", where))
		case k.Tenant == "":
			errs = append(errs, fmt.Errorf("vault %s: tenant must not be empty", where))
		case k.ProviderKey == "":
			errs = append(errs, fmt.Errorf("vault %s: providerKey must not be empty", where))
		case strings.HasPrefix(k.ProviderKey, Prefix):
			errs = append(errs, fmt.Errorf("vault %s: providerKey is a proxy key; it must be the provider's own key", where))
		case !provider.Known(k.Provider):
			errs = append(errs, fmt.Errorf("vault %s: provider must be one of %s", where, strings.Join(provider.KnownNames(), ", "))) // the value is not quoted: it may be a misplaced key
		case badOrigin != "":
			errs = append(errs, fmt.Errorf("vault %s: origins: %q is not an origin such as https://example.openai.azure.com", where, badOrigin))
		case k.Provider == "azure" && len(k.Origins) == 0:
			errs = append(errs, fmt.Errorf("vault %s: an azure key needs origins: the Azure OpenAI resources it may be sent to", where))
		case err != nil || len(sum) != sha256.Size:
			errs = append(errs, fmt.Errorf("vault %s: proxyKeySHA256 must be 64 hex digits (tollgate vault issue prints it)", where))
		default:
			copy(k.sum[:], sum)
			if _, dup := v.bySum[k.sum]; dup {
				errs = append(errs, fmt.Errorf("vault %s: the same proxy key is listed twice", where))
				continue
			}
			ids[k.ID] = true
			v.bySum[k.sum] = k
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return v, nil
}

// scrub keeps YAML decoding errors from quoting the file's content, which
// holds provider keys: only line numbers and what kind of problem survive.
func scrub(err error) error {
	var out []string
	for _, l := range strings.Split(err.Error(), "\n") {
		line := lineRef.FindString(l)
		if line == "" {
			continue
		}
		what := "invalid YAML"
		switch {
		case strings.Contains(l, "cannot unmarshal"):
			what = "wrong type (a list of keys with string fields is expected)"
		case strings.Contains(l, "not found in type"):
			what = "unknown field (id, tenant, proxyKeySHA256 and providerKey are known)"
		}
		out = append(out, line+": "+what)
	}
	if len(out) == 0 {
		return errors.New("invalid YAML")
	}
	return errors.New(strings.Join(out, "; "))
}

var lineRef = regexp.MustCompile(`line \d+`)

// origin normalizes an origin: scheme://host[:port], lowercase, nothing
// after it.
func origin(raw string) (string, bool) {
	u, err := url.Parse(strings.TrimRight(strings.TrimSpace(raw), "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", false
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), true
}

// Len is how many keys the vault holds.
func (v *Vault) Len() int {
	if v == nil {
		return 0
	}
	return len(v.bySum)
}

// IsProxyKey says whether a credential header's value is a proxy key:
// "Bearer sk-helicone-proxy-…" or the bare key.
func IsProxyKey(value string) bool {
	key, _ := splitBearer(value)
	return strings.HasPrefix(key, Prefix)
}

// IsProxyKeyBytes is IsProxyKey of a header's raw bytes, so that the check
// costs a call without a proxy key nothing.
func IsProxyKeyBytes(value []byte) bool {
	v := bytes.TrimLeft(value, " \t")
	if len(v) > 7 && bytes.EqualFold(v[:7], []byte("bearer ")) {
		v = bytes.TrimLeft(v[7:], " \t")
	}
	return bytes.HasPrefix(v, []byte(Prefix))
}

// HasBearer says whether a credential header's value is "Bearer <key>".
func HasBearer(value string) bool {
	_, bearer := splitBearer(value)
	return bearer
}

// splitBearer returns the key of a credential header's value and whether
// it came as "Bearer <key>".
func splitBearer(value string) (key string, bearer bool) {
	v := strings.TrimSpace(value)
	if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
		return strings.TrimSpace(v[7:]), true
	}
	return v, false
}

// Lookup finds the key a credential header's value names; ok is false for
// a value that is not a proxy key or a proxy key the vault does not hold.
func (v *Vault) Lookup(value string) (k *Key, ok bool) {
	raw, _ := splitBearer(value)
	if !strings.HasPrefix(raw, Prefix) || v == nil {
		return nil, false
	}
	sum := sha256.Sum256([]byte(raw))
	// Only the key's SHA-256 is compared: the proxy key is kept nowhere.
	k, ok = v.bySum[sum]
	return k, ok
}

// Issue makes a new proxy key in Helicone's shape — the prefix, four groups
// of seven base32 characters and a UUID, lowercase — and the SHA-256 the
// vault file stores. The key itself is shown once and kept nowhere.
func Issue() (key, sum string, err error) {
	var random [20]byte
	if _, err := rand.Read(random[:]); err != nil {
		return "", "", err
	}
	body := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(random[:]))[:28]
	groups := []string{body[0:7], body[7:14], body[14:21], body[21:28]}
	key = Prefix + strings.Join(groups, "-") + "-" + uuid.NewString()
	s := sha256.Sum256([]byte(key))
	return key, hex.EncodeToString(s[:]), nil
}
