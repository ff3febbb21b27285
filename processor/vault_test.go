package processor

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"slices"
	"strings"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/tidwall/gjson"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/vault"
)

const (
	testProxyKey    = "sk-helicone-proxy-abcdefg-hijklmn-opqrstu-vwxyz23-0b5c7a4e-2d7b-4f4e-9b1a-1c2d3e4f5a6b"
	testProviderKey = "sk-proj-the-real-provider-key"
)

func testVault(t *testing.T) func(*Options) {
	t.Helper()
	sum := sha256.Sum256([]byte(testProxyKey))
	v, err := vault.Parse([]byte("keys:\n- id: checkout-openai\n  tenant: payments\n  provider: openai\n  origins: [https://api.together.xyz]\n  proxyKeySHA256: " +
		hex.EncodeToString(sum[:]) + "\n  providerKey: " + testProviderKey + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	return func(o *Options) { o.Vault = func() *vault.Vault { return v } }
}

// setValue is the value a reply sets for key, "" when it sets none.
func setValue(r *extprocv3.CommonResponse, key string) string {
	for _, h := range r.GetHeaderMutation().GetSetHeaders() {
		if h.GetHeader().GetKey() == key {
			return string(h.GetHeader().GetRawValue())
		}
	}
	return ""
}

// A proxy key in a credential header is swapped for the provider key it
// stands for, in the header the key's provider reads (OpenAI's
// Authorization, as a Bearer; the header it came in is removed), and the
// call belongs to the
// key's tenant without Helicone-Auth (Helicone: worker/src/lib/
// RequestWrapper.ts, setAuthorization, sets "Authorization: Bearer
// <provider key>"; the proxy key authenticates its organization,
// bearerProxy). Neither key is in the record.
func TestProxyKeySwappedForTheProviderKey(t *testing.T) {
	for _, tc := range []struct{ header, sent, want string }{
		{"authorization", "Bearer " + testProxyKey, "Bearer " + testProviderKey},
		{"x-api-key", testProxyKey, "Bearer " + testProviderKey}, // Anthropic's SDK: the bare key
		{"api-key", testProxyKey, "Bearer " + testProviderKey},   // Azure's
	} {
		t.Run(tc.header, func(t *testing.T) {
			s, sink := newTestServer(t, testVault(t))
			replies, err := run(s, nil,
				reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions", tc.header, tc.sent),
				reqBody(chatBody),
				respHeaders(false, ":status", "200"), respBody(chatResponse, true))
			if err != nil {
				t.Fatal(err)
			}
			cr := replies[0].GetRequestHeaders().GetResponse()
			if got := setValue(cr, "authorization"); got != tc.want {
				t.Fatalf("authorization set to %q, want %q", got, tc.want)
			}
			if tc.header != "authorization" && !slices.Contains(cr.GetHeaderMutation().GetRemoveHeaders(), tc.header) {
				t.Fatalf("%s, which held the proxy key, is not removed", tc.header)
			}
			recs := sink.Records()
			if len(recs) != 1 || recs[0].Tenant != "payments" || recs[0].Status != 200 || recs[0].ProxyKeyID != "checkout-openai" {
				t.Fatalf("records %+v", recs)
			}
			js, _ := json.Marshal(recs[0])
			if strings.Contains(string(js), testProviderKey) || strings.Contains(string(js), testProxyKey) {
				t.Fatalf("a key reached the record: %s", js)
			}
		})
	}
}

// A proxy key the vault does not hold is refused before any provider sees
// it, with Helicone's message (worker/src/lib/RequestWrapper.ts: "Proxy
// key not found"); so is any proxy key at a gateway without a vault.
func TestUnknownProxyKeyIsRefused(t *testing.T) {
	other := strings.Replace(testProxyKey, "abcdefg", "zzzzzzz", 1)
	for name, opts := range map[string][]func(*Options){"unknown key": {testVault(t)}, "no vault": nil} {
		t.Run(name, func(t *testing.T) {
			s, sink := newTestServer(t, opts...)
			replies, _ := run(s, nil, reqHeaders(false, ":path", "/v1/chat/completions", "authorization", "Bearer "+other))
			imm := replies[len(replies)-1].GetImmediateResponse()
			if imm == nil || imm.GetStatus().GetCode() != 401 {
				t.Fatalf("want a 401, got %v", replies[len(replies)-1])
			}
			if msg := gjson.GetBytes(imm.GetBody(), "error.message").String(); !strings.HasPrefix(msg, "Proxy key not found") {
				t.Fatalf("message %q", msg)
			}
			if recs := sink.Records(); len(recs) != 1 || recs[0].Status != 401 || strings.Contains(recs[0].Error, other) {
				t.Fatalf("records %+v", recs)
			}
		})
	}
}

// With Helicone-Auth keys configured, a Helicone-Auth key of another tenant
// cannot ride on a proxy key: the call would be billed to one tenant with
// another's provider key.
func TestProxyKeyOfAnotherTenantIsRefused(t *testing.T) {
	withKeys := func(o *Options) {
		o.Auth, _ = policies.NewAuth([]policies.APIKey{
			{SHA256: policies.HashKey("acme-key"), Tenant: "acme"},
			{SHA256: policies.HashKey("payments-key"), Tenant: "payments"},
		}, true)
	}
	for auth, want := range map[string]int{"Bearer acme-key": 401, "Bearer payments-key": 0, "": 0} {
		s, sink := newTestServer(t, testVault(t), withKeys)
		kv := []string{":method", "POST", ":path", "/v1/chat/completions", "authorization", "Bearer " + testProxyKey}
		if auth != "" {
			kv = append(kv, "helicone-auth", auth)
		}
		replies, _ := run(s, nil, reqHeaders(false, kv...), reqBody(chatBody), respHeaders(false, ":status", "200"), respBody(chatResponse, true))
		imm := replies[0].GetImmediateResponse()
		switch {
		case want == 401 && (imm == nil || imm.GetStatus().GetCode() != 401):
			t.Errorf("Helicone-Auth %q: want a 401, got %v", auth, replies[len(replies)-1])
		case want == 0 && imm != nil:
			t.Errorf("Helicone-Auth %q: refused: %s", auth, imm.GetBody())
		case want == 0 && (len(sink.Records()) != 1 || sink.Records()[0].Tenant != "payments"):
			t.Errorf("Helicone-Auth %q: records %+v", auth, sink.Records())
		}
	}
}

// The provider key goes only where its vault entry says: its provider's own
// route, or an origin the entry lists. Naming another target would hand the
// real key to whoever runs it.
func TestProxyKeyStaysWithItsDestinations(t *testing.T) {
	for _, tc := range []struct {
		name   string
		kv     []string
		status int
	}{
		{"a listed origin", []string{":path", "/v1/chat/completions", "helicone-target-url", "https://api.together.xyz"}, 0},
		{"an origin not listed", []string{":path", "/v1/chat/completions", "helicone-target-url", "https://collector.example"}, 403},
		{"Azure base not listed", []string{":path", "/openai/deployments/d/chat/completions", "helicone-openai-api-base", "https://collector.example"}, 403},
		{"another provider's route", []string{":path", "/v1/messages"}, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, sink := newTestServer(t, testVault(t), func(o *Options) {
				o.AllowedTargetOrigins = []string{"https://api.together.xyz", "https://collector.example"}
			})
			kv := append([]string{":method", "POST", "authorization", "Bearer " + testProxyKey}, tc.kv...)
			replies, _ := run(s, nil, reqHeaders(false, kv...), reqBody(chatBody), respHeaders(false, ":status", "200"), respBody(chatResponse, true))
			imm := replies[0].GetImmediateResponse()
			if tc.status == 0 {
				if imm != nil {
					t.Fatalf("refused: %s", imm.GetBody())
				}
				if got := setValue(replies[0].GetRequestHeaders().GetResponse(), "authorization"); got != "Bearer "+testProviderKey {
					t.Fatalf("authorization %q", got)
				}
				return
			}
			if imm == nil || int(imm.GetStatus().GetCode()) != tc.status || !strings.Contains(string(imm.GetBody()), "checkout-openai may not be sent") {
				t.Fatalf("want a %d naming the key, got %v", tc.status, replies[0])
			}
			if strings.Contains(string(imm.GetBody()), testProviderKey) || len(sink.Records()) != 1 {
				t.Fatalf("body %s, records %d", imm.GetBody(), len(sink.Records()))
			}
		})
	}
}

// Two proxy keys in one request (Authorization and x-api-key): one would be
// swapped and the other sent on as it is, so the call is refused.
func TestTwoProxyKeysAreRefused(t *testing.T) {
	s, _ := newTestServer(t, testVault(t))
	replies, _ := run(s, nil, reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions",
		"authorization", "Bearer "+testProxyKey, "x-api-key", testProxyKey))
	imm := replies[0].GetImmediateResponse()
	if imm == nil || imm.GetStatus().GetCode() != 400 || !strings.Contains(string(imm.GetBody()), "both hold a key-vault proxy key") {
		t.Fatalf("want a 400, got %v", replies[0])
	}
}

// Looking for a proxy key costs a call with an ordinary provider key no
// allocation.
func TestProxyKeyCheckDoesNotAllocate(t *testing.T) {
	h := &corev3.HeaderValue{Key: "authorization", RawValue: []byte("Bearer sk-proj-an-ordinary-provider-key")}
	if n := testing.AllocsPerRun(100, func() { isProxyKeyHeader(h) }); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}

// A fallback entry on another origin gets an attempt only when it replaces
// the very header the vault's key went into: an entry that sets some other
// credential header would send the real key along (review finding: the
// OpenAI key reaching api.together.xyz under x-api-key: junk). On a chain,
// every entry must bring its own key, because Envoy passes an attempt to
// the next level's origin when its own has no address.
func TestFallbackEntriesCannotCarryTheVaultKeyAway(t *testing.T) {
	for _, tc := range []struct {
		name, fallbacks string
		ok              bool
	}{
		{"another credential header", `[{"target-url": "https://api.openai.com"}, {"target-url": "https://api.together.xyz", "headers": {"x-api-key": "junk"}}]`, false},
		{"one other origin, another header", `[{"target-url": "https://api.together.xyz", "headers": {"x-api-key": "junk"}}]`, false},
		{"chain, first entry on the vault key", `[{"target-url": "https://api.openai.com"}, {"target-url": "https://api.together.xyz", "headers": {"Authorization": "Bearer sk-together"}}]`, false},
		{"chain, every entry its own key", `[{"target-url": "https://api.openai.com", "headers": {"authorization": "Bearer sk-a"}}, {"target-url": "https://api.together.xyz", "headers": {"Authorization": "Bearer sk-together"}}]`, true},
		{"one other origin, the same header", `[{"target-url": "https://api.together.xyz", "headers": {"authorization": "Bearer sk-together"}}]`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newTestServer(t, testVault(t))
			replies, _ := run(s, nil, reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions",
				"authorization", "Bearer "+testProxyKey, "helicone-fallbacks", tc.fallbacks), reqBody(chatBody))
			ir := replies[0].GetImmediateResponse()
			if tc.ok && ir != nil {
				t.Fatalf("refused: %s", ir.GetBody())
			}
			if !tc.ok && (ir == nil || ir.GetStatus().GetCode() != 400 || !strings.Contains(string(ir.GetBody()), "authorization")) {
				t.Fatalf("want a 400 naming the authorization header, got %v", replies[0])
			}
		})
	}
}
