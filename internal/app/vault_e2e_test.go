package app

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// The key vault end to end: `tollgate vault issue` makes a key, the entry
// it prints goes into the --key-vault file with the provider key, and an
// application that sends the proxy key as its OpenAI key is served with the
// provider key swapped in. The provider sees only the real key; the log
// sees neither.
func TestDevKeyVaultSwapsProxyKeys(t *testing.T) {
	var out bytes.Buffer
	if err := Run(t.Context(), []string{"vault", "issue", "--id", "checkout-openai", "--tenant", "payments"}, &out, &out); err != nil {
		t.Fatalf("vault issue: %v\n%s", err, out.String())
	}
	proxyKey := regexp.MustCompile(`sk-helicone-proxy-[a-z0-9-]+`).FindString(out.String())
	if proxyKey == "" {
		t.Fatalf("no key printed:\n%s", out.String())
	}
	const providerKey = "sk-proj-real-provider-key-for-the-test"
	entry := strings.Replace(out.String()[strings.Index(out.String(), "- id:"):], `providerKey: ""`, "providerKey: "+providerKey, 1)
	path := filepath.Join(t.TempDir(), "vault.yaml")
	if err := os.WriteFile(path, []byte("keys:\n"+entry), 0o600); err != nil {
		t.Fatal(err)
	}

	d := startDev(t, "--key-vault", path)
	ok, unknown := uuid.NewString(), uuid.NewString()
	resp, body := call{path: "/v1/chat/completions", body: chat("gpt-4o-mini"), headers: map[string]string{
		"Authorization": "Bearer " + proxyKey, "helicone-request-id": ok}}.do(t, d)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	got := d.mock.Received()
	if len(got) != 1 || got[0].Header.Get("Authorization") != "Bearer "+providerKey {
		t.Fatalf("the provider received %d requests, Authorization %q", len(got), got[0].Header.Get("Authorization"))
	}

	resp, body = call{path: "/v1/chat/completions", body: chat("gpt-4o-mini"), headers: map[string]string{
		"Authorization": "Bearer " + strings.Replace(proxyKey, "sk-helicone-proxy-", "sk-helicone-proxy-x", 1), "helicone-request-id": unknown}}.do(t, d)
	if resp.StatusCode != 401 || !strings.Contains(body, "Proxy key not found") {
		t.Fatalf("an unknown proxy key: status %d, %s", resp.StatusCode, body)
	}
	if n := len(d.mock.Received()); n != 1 {
		t.Fatalf("an unknown proxy key reached the provider (%d requests)", n)
	}

	recs := d.records(t)
	if recs[ok] == nil || recs[ok].Tenant != "payments" || recs[ok].ProxyKeyID != "checkout-openai" || recs[unknown] == nil || recs[unknown].Status != 401 {
		t.Fatalf("records: %+v / %+v", recs[ok], recs[unknown])
	}
	for _, r := range recs {
		js, _ := json.Marshal(r)
		if strings.Contains(string(js), providerKey) || strings.Contains(string(js), proxyKey) {
			t.Fatalf("a key reached the log: %s", js)
		}
	}
	if strings.Contains(d.stderr.String(), providerKey) {
		t.Fatal("the provider key reached the process log")
	}
}
