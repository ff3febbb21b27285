package app

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/tollgate-dev/tollgate/mockprovider"
)

// Azure OpenAI through `tollgate dev`'s data plane, called the way
// Helicone's Azure guide calls Helicone (docs/integrations/azure/curl.mdx):
// the deployment in the path, api-version in the query, the resource in
// Helicone-OpenAI-Api-Base and the key in api-key. Helicone sends the call
// to that origin with the request's path and query
// (worker/src/lib/providerCalls/call.ts); here the origin is a second mock
// on loopback, listed exactly in --allowed-target-origins.
func TestDevAzureOpenAI(t *testing.T) {
	azure := mockprovider.New(mockprovider.Options{})
	azureSrv := httptest.NewServer(azure)
	t.Cleanup(azureSrv.Close)
	const key = "azure-secret-key-5f2a9c"
	d := startDev(t, "--allowed-target-origins", azureSrv.URL, "--azure-deployments", "prod-mini=gpt-4o-mini")

	const body = `{"messages":[{"role":"user","content":"Say hi"}]}`
	ids := []string{uuid.NewString(), uuid.NewString()}
	for i, b := range []string{body, `{"stream":true,"messages":[{"role":"user","content":"Say hi"}]}`} {
		c := call{path: "/openai/deployments/prod-mini/chat/completions?api-version=2024-10-21", body: b, headers: map[string]string{
			"helicone-request-id": ids[i], "helicone-openai-api-base": azureSrv.URL, "api-key": key,
		}}
		if resp, out := c.do(t, d); resp.StatusCode != 200 {
			t.Fatalf("call %d: status %d: %s", i, resp.StatusCode, out)
		}
	}
	if n := len(d.mock.Received()); n != 0 {
		t.Fatalf("the OpenAI upstream got %d requests, want 0", n)
	}
	got := azure.Received()
	if len(got) != 2 {
		t.Fatalf("the Azure origin got %d requests, want 2", len(got))
	}
	for _, r := range got {
		if r.Path != "/openai/deployments/prod-mini/chat/completions" || r.Header.Get("api-key") != key ||
			r.Header.Get("helicone-openai-api-base") != "" {
			t.Fatalf("the Azure origin got %s with headers %v", r.Path, r.Header)
		}
	}

	// The mock answers with the deployment as the model, which has no
	// price: the call is priced as the model --azure-deployments names.
	prompt := mockprovider.PromptTokens([]byte(body))
	wantCost := (float64(prompt)*0.15 + float64(mockprovider.CompletionTokens)*0.60) / 1e6
	recs := d.records(t)
	for _, id := range ids {
		r := recs[id]
		if r == nil {
			t.Fatalf("no record for %s", id)
		}
		if r.Status != 200 || r.Provider != "azure" || r.Model != "prod-mini" || r.ResponseModel != "prod-mini" ||
			r.TargetURL != azureSrv.URL || r.PromptTokens != prompt || !sameCost(r.CostUSD, wantCost) {
			t.Errorf("record %+v, want azure, prod-mini, %d prompt tokens, cost %v", *r, prompt, wantCost)
		}
	}
	raw, err := os.ReadFile(filepath.Join(d.dataDir, "requests.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), key) {
		t.Fatal("the log holds the api-key")
	}
}

// An origin the configuration does not allow is refused before any
// upstream is called, with a 403 naming the header.
func TestDevAzureOriginNotAllowed(t *testing.T) {
	azure := mockprovider.New(mockprovider.Options{})
	azureSrv := httptest.NewServer(azure)
	t.Cleanup(azureSrv.Close)
	d := startDev(t, "--allowed-target-origins", "*")
	c := call{path: "/openai/deployments/prod-mini/chat/completions?api-version=2024-10-21", body: chat("gpt-4o-mini"), headers: map[string]string{
		"helicone-request-id": uuid.NewString(), "helicone-openai-api-base": azureSrv.URL, "api-key": "k",
	}}
	resp, out := c.do(t, d)
	if resp.StatusCode != 403 || !strings.Contains(out, "Helicone-OpenAI-Api-Base") || !strings.Contains(out, "target_not_allowed") {
		t.Fatalf("status %d: %s; want a 403 naming Helicone-OpenAI-Api-Base", resp.StatusCode, out)
	}
	if n := len(azure.Received()) + len(d.mock.Received()); n != 0 {
		t.Fatalf("%d upstream requests, want 0", n)
	}
}

// --azure-deployments: deployment=model pairs; a malformed or repeated
// entry is refused with the setting's name.
func TestAzureDeploymentsSetting(t *testing.T) {
	cfg, _, err := loadConfig("serve", []string{"--azure-deployments", "prod-mini=gpt-4o-mini, big = gpt-4o"}, env(nil), false)
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := azureDeployments(cfg.AzureDeployments); len(m) != 2 || m["prod-mini"] != "gpt-4o-mini" || m["big"] != "gpt-4o" {
		t.Fatalf("map %v", m)
	}
	for _, bad := range []string{"prod-mini", "=gpt-4o", "prod=", "a=x,a=y"} {
		_, _, err := loadConfig("serve", []string{"--azure-deployments", bad}, env(nil), false)
		if err == nil || !strings.Contains(err.Error(), "azure-deployments") {
			t.Errorf("%s: error %v, want one naming azure-deployments", bad, err)
		}
	}
}
