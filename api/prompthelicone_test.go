package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/policies/prompt"
	"github.com/tollgate-dev/tollgate/storage/memstore"
)

// sdkVersion is the data of a query route's answer.
type sdkVersion struct {
	Data *struct {
		ID    string `json:"id"`
		S3URL string `json:"s3_url"`
	} `json:"data"`
	Error *string `json:"error"`
}

// replicas are n API handlers over one prompt store, as replicas share
// Redis; o applies to each.
func replicas(t *testing.T, n int, o Options) []http.Handler {
	t.Helper()
	store := memstore.NewPromptStore(memstore.PromptOptions{})
	if _, err := store.PublishPrompt(context.Background(), "support",
		prompt.Template{Model: "gpt-4o", Messages: json.RawMessage(`[{"role":"system","content":"You help {{hc:company:string}}."}]`)}); err != nil {
		t.Fatal(err)
	}
	var hs []http.Handler
	for range n {
		lib, err := prompt.NewLibrary(prompt.LibraryOptions{Store: store})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = lib.Close() })
		o := o
		o.Prompts = lib
		hs = append(hs, New(o))
	}
	return hs
}

// A link one replica issues works on every other: it is signed with a
// key derived from a secret they share, never one of the process.
func TestPromptBodyLinkWorksOnEveryReplica(t *testing.T) {
	for name, o := range map[string]Options{
		"link secret": {PromptLinkSecret: "shared"},
		"api key":     {APIKey: "the-api-key"},
	} {
		t.Run(name, func(t *testing.T) {
			hs := replicas(t, 2, o)
			auth := map[string]string{"Authorization": "Bearer the-api-key"}
			var got sdkVersion
			if rr := do(t, hs[0], "POST", "/v1/prompt-2025/query/production-version", local, auth, `{"promptId": "support"}`, &got); rr.Code != 200 || got.Data == nil {
				t.Fatalf("query: %d %s", rr.Code, rr.Body)
			}
			u, err := url.Parse(got.Data.S3URL)
			if err != nil || u.Path != "/v1/prompt-2025/body/support/1" {
				t.Fatalf("s3_url %q", got.Data.S3URL)
			}
			if rr := do(t, hs[1], "GET", u.RequestURI(), "203.0.113.9:5000", nil, "", nil); rr.Code != 200 || !strings.Contains(rr.Body.String(), "You help") {
				t.Errorf("the other replica: %d %s", rr.Code, rr.Body)
			}
		})
	}
	// A replica with another secret does not take the link.
	a := replicas(t, 1, Options{PromptLinkSecret: "one"})[0]
	b := replicas(t, 1, Options{PromptLinkSecret: "another"})[0]
	var got sdkVersion
	do(t, a, "POST", "/v1/prompt-2025/query/production-version", local, nil, `{"promptId": "support"}`, &got)
	u, _ := url.Parse(got.Data.S3URL)
	if rr := do(t, b, "GET", u.RequestURI(), "203.0.113.9:5000", nil, "", nil); rr.Code == 200 {
		t.Error("a link signed with another secret was served")
	}
}

// Without a shared secret no link is issued (one signed with a key of the
// process would fail on every other replica); the version is still
// answered.
func TestPromptBodyLinkNeedsASharedSecret(t *testing.T) {
	h := replicas(t, 1, Options{})[0]
	var got sdkVersion
	rr := do(t, h, "POST", "/v1/prompt-2025/query/production-version", local, nil, `{"promptId": "support"}`, &got)
	if rr.Code != 200 || got.Data == nil || got.Data.ID != "support@1" || got.Data.S3URL != "" || strings.Contains(rr.Body.String(), "s3_url") {
		t.Errorf("%d %s, want the version without s3_url", rr.Code, rr.Body)
	}
	if rr := do(t, h, "GET", "/v1/prompt-2025/body/support/1?expires=99999999999&sig=x", "203.0.113.9:5000", nil, "", nil); rr.Code == 200 {
		t.Error("a body was served on a made-up signature")
	}
}

// The link is built on the configured public address, not on the Host or
// X-Forwarded-Proto the caller sent.
func TestPromptBodyLinkUsesThePublicURL(t *testing.T) {
	h := replicas(t, 1, Options{PromptLinkSecret: "s", PublicURL: "https://tollgate.example.com/", Auth: tenantKeys(t)})[0]
	headers := map[string]string{"Helicone-Auth": "Bearer sk-helicone-acme", "Host": "evil.example", "X-Forwarded-Proto": "http"}
	var got sdkVersion
	if rr := do(t, h, "POST", "/v1/prompt-2025/query/version", "203.0.113.9:5000", headers, `{"promptVersionId": "support@1"}`, &got); rr.Code != 200 {
		t.Fatalf("%d %s", rr.Code, rr.Body)
	}
	if !strings.HasPrefix(got.Data.S3URL, "https://tollgate.example.com/v1/prompt-2025/body/support/1?") {
		t.Errorf("s3_url %q", got.Data.S3URL)
	}
}

// The SDK routes admit a caller as the other Helicone routes do
// (heliconeCaller): with tenant keys configured, the caller's Helicone key
// must be one of them, wherever it calls from.
func TestPromptSDKRoutesTakeTheCallersKey(t *testing.T) {
	h := replicas(t, 1, Options{PromptLinkSecret: "s", Auth: tenantKeys(t)})[0]
	query := `{"promptId": "support"}`
	if rr := do(t, h, "POST", "/v1/prompt-2025/query/production-version", "203.0.113.9:5000", acmeKey, query, nil); rr.Code != 200 {
		t.Errorf("a tenant's key from afar: %d %s", rr.Code, rr.Body)
	}
	for name, headers := range map[string]map[string]string{
		"unknown Helicone-Auth": {"Helicone-Auth": "Bearer sk-helicone-stranger"},
		"unknown Authorization": {"Authorization": "Bearer sk-helicone-stranger"},
	} {
		rr := do(t, h, "POST", "/v1/prompt-2025/query/production-version", local, headers, query, nil)
		if rr.Code != http.StatusUnauthorized || !strings.Contains(rr.Body.String(), `"data":null`) {
			t.Errorf("%s on loopback: %d %s, want 401", name, rr.Code, rr.Body)
		}
		if rr := do(t, h, "GET", "/v1/prompt-2025/body/support/1", local, headers, "", nil); rr.Code != http.StatusUnauthorized {
			t.Errorf("%s, unsigned body: %d", name, rr.Code)
		}
	}
}

// A tenant's seen versions (its tagged calls) are never served by the SDK
// routes, to it or to anyone.
func TestPromptSDKRoutesServeNoSeenVersion(t *testing.T) {
	store := memstore.NewPromptStore(memstore.PromptOptions{})
	lim := prompt.SeenLimits{MaxPrompts: 10, TTL: time.Hour}
	if _, err := store.RecordSeen(context.Background(), "acme", "private", 0,
		prompt.SumTemplate(prompt.Template{Messages: json.RawMessage(`[{"role":"system","content":"acme's instructions"}]`)}), lim); err != nil {
		t.Fatal(err)
	}
	lib, err := prompt.NewLibrary(prompt.LibraryOptions{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lib.Close() })
	h := New(Options{Prompts: lib, PromptLinkSecret: "s", Auth: tenantKeys(t)})
	for _, key := range []map[string]string{acmeKey, otherKey} {
		rr := do(t, h, "POST", "/v1/prompt-2025/query/production-version", local, key, `{"promptId": "private"}`, nil)
		if rr.Code != http.StatusNotFound || strings.Contains(rr.Body.String(), "instructions") {
			t.Errorf("%v: %d %s", key, rr.Code, rr.Body)
		}
	}
}
