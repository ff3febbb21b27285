package vault

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// vaultFile is a vault holding key for tenant "payments".
func vaultFile(t *testing.T, key string) string {
	t.Helper()
	return "keys:\n- id: checkout-openai\n  tenant: payments\n  provider: openai\n  origins: [\"https://Gateway.Example.com/\"]\n  proxyKeySHA256: " + sha256Hex(key) + "\n  providerKey: sk-real-provider-key\n"
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestIssuedKeysHaveHeliconesShape(t *testing.T) {
	// Helicone generates "sk-helicone-proxy-" + four groups of seven
	// lowercase base32 characters + "-" + a UUID
	// (valhalla/jawn/src/managers/VaultManager.ts, generateApiKey with
	// dashes, lowercased), and its worker recognises the prefix
	// (worker/src/lib/RequestWrapper.ts).
	shape := regexp.MustCompile(`^sk-helicone-proxy-[a-z0-9]{7}-[a-z0-9]{7}-[a-z0-9]{7}-[a-z0-9]{7}-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for range 20 {
		key, sum, err := Issue()
		if err != nil {
			t.Fatal(err)
		}
		if !shape.MatchString(key) {
			t.Fatalf("issued key %q does not have Helicone's shape", key)
		}
		if sum != sha256Hex(key) {
			t.Fatalf("sum %s is not the key's SHA-256", sum)
		}
		if seen[key] {
			t.Fatalf("key issued twice: %s", key)
		}
		seen[key] = true
	}
}

func TestLookupFindsTheProviderKey(t *testing.T) {
	key, _, _ := Issue()
	v, err := Parse([]byte(vaultFile(t, key)))
	if err != nil {
		t.Fatal(err)
	}
	for _, presented := range []string{"Bearer " + key, "bearer  " + key, key} {
		k, ok := v.Lookup(presented)
		bearer := HasBearer(presented)
		if !ok {
			t.Fatalf("Lookup(%q) found nothing", presented)
		}
		if k.ID != "checkout-openai" || k.Tenant != "payments" || k.ProviderKey != "sk-real-provider-key" || k.Provider != "openai" {
			t.Fatalf("Lookup(%q) = %+v", presented, k)
		}
		if bearer != (presented != key) {
			t.Fatalf("Lookup(%q): bearer %v", presented, bearer)
		}
		if !IsProxyKey(presented) || !IsProxyKeyBytes([]byte(presented)) {
			t.Fatalf("IsProxyKey(%q) is false", presented)
		}
	}
	k, _ := v.Lookup(key)
	if !k.AllowsOrigin("https://gateway.example.com") || k.AllowsOrigin("https://api.openai.com") || k.AllowsOrigin("http://gateway.example.com") {
		t.Fatalf("origins %v: AllowsOrigin is wrong", k.Origins)
	}
	other, _, _ := Issue()
	for _, presented := range []string{"Bearer " + other, "Bearer sk-proj-abc", "", Prefix} {
		if _, ok := v.Lookup(presented); ok {
			t.Fatalf("Lookup(%q) found a key", presented)
		}
	}
	if !IsProxyKeyBytes([]byte("Bearer "+other)) || IsProxyKeyBytes([]byte("Bearer sk-proj-abc")) || IsProxyKey("sk-helicone-x") {
		t.Fatal("IsProxyKey does not tell proxy keys from provider keys")
	}
	var none *Vault
	if _, ok := none.Lookup("Bearer " + key); ok {
		t.Fatal("a nil vault found a key")
	}
}

// A key may be stored for any provider Tollgate records: the built-in
// ones routed by path too (gemini, together, groq), not only openai,
// anthropic and azure.
func TestKeysForEveryKnownProvider(t *testing.T) {
	var file strings.Builder
	file.WriteString("keys:\n")
	for _, p := range []string{"openai", "anthropic", "gemini", "together", "groq", "Groq "} {
		_, sum, _ := Issue()
		fmt.Fprintf(&file, "- {id: %q, tenant: t, provider: %q, proxyKeySHA256: %s, providerKey: sk-secret}\n", "k-"+p, p, sum)
	}
	v, err := Parse([]byte(file.String()))
	if err != nil || v.Len() != 6 {
		t.Fatalf("%v, %d keys", err, v.Len())
	}
}

func TestParseErrorsNameTheEntryNeverTheKey(t *testing.T) {
	key, sum, _ := Issue()
	cases := map[string]struct{ file, want string }{
		"no tenant":          {"keys:\n- id: a\n  provider: openai\n  proxyKeySHA256: " + sum + "\n  providerKey: sk-secret-1\n", "keys[0] (a): tenant"},
		"bad sum":            {"keys:\n- id: a\n  tenant: t\n  provider: openai\n  proxyKeySHA256: " + key + "\n  providerKey: sk-secret-1\n", "proxyKeySHA256 must be 64 hex digits"},
		"proxy as real":      {"keys:\n- id: a\n  tenant: t\n  provider: openai\n  proxyKeySHA256: " + sum + "\n  providerKey: " + key + "\n", "providerKey is a proxy key"},
		"duplicate id":       {"keys:\n- {id: a, tenant: t, provider: openai, proxyKeySHA256: " + sum + ", providerKey: sk-secret-1}\n- {id: a, tenant: t, provider: openai, proxyKeySHA256: " + strings.Repeat("0", 64) + ", providerKey: sk-secret-1}\n", "keys[1] (a): id is used twice"},
		"no provider":        {"keys:\n- id: a\n  tenant: t\n  proxyKeySHA256: " + sum + "\n  providerKey: sk-secret-1\n", "provider must be one of anthropic, azure, gemini, groq, openai, together"},
		"unknown provider":   {"keys:\n- id: a\n  tenant: t\n  provider: mistrall\n  proxyKeySHA256: " + sum + "\n  providerKey: sk-secret-1\n", "provider must be one of"},
		"azure, no origins":  {"keys:\n- id: a\n  tenant: t\n  provider: azure\n  proxyKeySHA256: " + sum + "\n  providerKey: sk-secret-1\n", "an azure key needs origins"},
		"origin with a path": {"keys:\n- id: a\n  tenant: t\n  provider: openai\n  origins: [https://x.example/v1]\n  proxyKeySHA256: " + sum + "\n  providerKey: sk-secret-1\n", "is not an origin"},
		"wrong type":         {"keys:\n- id: a\n  tenant: t\n  providerKey: [sk-secret-1]\n", "line 4: wrong type"},
		"unknown field":      {"keys:\n- id: a\n  tenant: t\n  provider_key: sk-secret-1\n", "unknown field"},
		"broken yaml":        {"keys: [sk-secret-1\n", "invalid YAML"},
	}
	for name, c := range cases {
		_, err := Parse([]byte(c.file))
		if err == nil {
			t.Fatalf("%s: parsed", name)
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q does not say %q", name, err, c.want)
		}
		if strings.Contains(err.Error(), "sk-secret-1") || strings.Contains(err.Error(), key) {
			t.Errorf("%s: error quotes a key: %q", name, err)
		}
	}
	if v, err := Parse(nil); err != nil || v.Len() != 0 {
		t.Fatalf("an empty file: %v, %d keys", err, v.Len())
	}
}

func TestWatcherKeepsTheLastGoodVault(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vault.yaml")
	first, _, _ := Issue()
	if err := os.WriteFile(path, []byte(vaultFile(t, first)), 0o600); err != nil {
		t.Fatal(err)
	}
	w, err := Watch(path, 1<<40, nil, nil) // reloads only when the test asks
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if _, ok := w.Current().Lookup(first); !ok {
		t.Fatal("the key of the file is not known")
	}
	if err := os.WriteFile(path, []byte("keys: [broken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := w.Reload(); err == nil {
		t.Fatal("a broken file reloaded")
	}
	if _, ok := w.Current().Lookup(first); !ok {
		t.Fatal("a broken file replaced the last good vault")
	}
	second, _, _ := Issue()
	if err := os.WriteFile(path, []byte(vaultFile(t, second)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := w.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, ok := w.Current().Lookup(first); ok {
		t.Fatal("a key removed from the file is still known")
	}
	if _, ok := w.Current().Lookup(second); !ok {
		t.Fatal("a key added to the file is not known")
	}
	if _, err := Watch(filepath.Join(dir, "missing.yaml"), 0, nil, nil); err == nil {
		t.Fatal("a missing file at start is not an error")
	}
}
