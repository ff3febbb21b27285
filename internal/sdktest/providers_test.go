package sdktest

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/tollgate-dev/tollgate/mockprovider"
)

// variants are the four calls of each provider: text or a forced tool
// call, whole or streamed.
var variants = []struct{ stream, tools bool }{{false, false}, {true, false}, {false, true}, {true, true}}

// call runs one scenario per variant through d, each under its own
// Helicone-Request-Id, and checks what the SDK saw; up is the mock that
// must have received the calls (its last len(variants) requests). It
// returns the request ids and the wants, for checkRecords.
func callVariants(t *testing.T, base scenario, up *mockprovider.Server, w want) ([]string, []want) {
	t.Helper()
	ids := make([]string, len(variants))
	wants := make([]want, len(variants))
	for i, v := range variants {
		s := base
		s.stream, s.tools = v.stream, v.tools
		ids[i] = uuid.NewString()
		s.headers = map[string]string{"Helicone-Request-Id": ids[i]}
		for k, v := range base.headers {
			s.headers[k] = v
		}
		name := fmt.Sprintf("%s %s stream=%v tools=%v", s.script, w.provider, v.stream, v.tools)
		r := s.run(t)
		got := up.Received()
		if len(got) == 0 {
			t.Fatalf("%s: the upstream received nothing", name)
		}
		wants[i] = w
		wants[i].stream, wants[i].tools = v.stream, v.tools
		wants[i].prompt = mockprovider.PromptTokens(got[len(got)-1].Body)
		checkResult(t, name, r, wants[i])
	}
	return ids, wants
}

func checkRecords(t *testing.T, d *dev, ids []string, wants []want) {
	t.Helper()
	recs := d.records(t)
	for i, id := range ids {
		checkRecord(t, fmt.Sprintf("%s stream=%v tools=%v", wants[i].provider, wants[i].stream, wants[i].tools), recs[id], wants[i])
	}
}

// The OpenAI SDK's chat completions and the Anthropic SDK's messages
// through the data plane: text and tool calls, whole and streamed, decoded
// by the SDKs themselves; the records name the provider, model, tokens and
// cost.
func TestSDKOpenAIAndAnthropic(t *testing.T) {
	d := startDev(t)
	ids, wants := callVariants(t, scenario{script: "chat.mjs", baseURL: d.base("/v1"), model: "gpt-4o-mini"},
		d.mock, want{provider: "openai", model: "gpt-4o-mini"})
	aIDs, aWants := callVariants(t, scenario{script: "messages.mjs", baseURL: d.base(""), model: "claude-sonnet-4-5"},
		d.mock, want{provider: "anthropic", model: "claude-sonnet-4-5"})
	checkRecords(t, d, append(ids, aIDs...), append(wants, aWants...))
}

// The OpenAI SDK's AzureOpenAI client: the deployment in the path,
// api-version in the query, the key in api-key, the resource named by
// Helicone-OpenAI-Api-Base (a second mock, allowed by
// --allowed-target-origins). The call is recorded as azure and priced as
// the model --azure-deployments names for the deployment.
func TestSDKAzure(t *testing.T) {
	azure := mockprovider.New(mockprovider.Options{})
	azureSrv := httptest.NewServer(azure)
	t.Cleanup(azureSrv.Close)
	const key = "azure-sdk-key-2b7e41"
	d := startDev(t, "--allowed-target-origins", azureSrv.URL, "--azure-deployments", "prod-mini=gpt-4o-mini")
	ids, wants := callVariants(t, scenario{script: "chat.mjs", baseURL: d.base(""), model: "prod-mini",
		headers: map[string]string{"Helicone-OpenAI-Api-Base": azureSrv.URL},
		env:     []string{"SDKTEST_AZURE_DEPLOYMENT=prod-mini", "SDKTEST_AZURE_API_VERSION=2024-10-21", "SDKTEST_API_KEY=" + key},
	}, azure, want{provider: "azure", model: "prod-mini", priceModel: "gpt-4o-mini"})
	if n := len(d.mock.Received()); n != 0 {
		t.Errorf("the OpenAI upstream got %d requests, want 0", n)
	}
	for _, r := range azure.Received() {
		if r.Path != "/openai/deployments/prod-mini/chat/completions" || r.Header.Get("api-key") != key {
			t.Errorf("the Azure origin got %s with api-key %q", r.Path, r.Header.Get("api-key"))
		}
	}
	checkRecords(t, d, ids, wants)
}

// The OpenAI SDK against Gemini's OpenAI-compatible endpoint
// (/v1beta/openai) and against Together, an OpenAI-compatible provider
// reached at /together/v1; each upstream a mock of its own.
func TestSDKGeminiAndTogether(t *testing.T) {
	gemini := mockprovider.New(mockprovider.Options{})
	geminiSrv := httptest.NewServer(gemini)
	t.Cleanup(geminiSrv.Close)
	together := mockprovider.New(mockprovider.Options{})
	togetherSrv := httptest.NewServer(together)
	t.Cleanup(togetherSrv.Close)
	// Named by "localhost": the entry joins the process-wide provider
	// list, and no 127.0.0.1 origin may be read as together's.
	origin := strings.Replace(togetherSrv.URL, "127.0.0.1", "localhost", 1)
	d := startDev(t, "--upstream-gemini", geminiSrv.URL, "--openai-compatible", "together="+origin+"/v1")

	ids, wants := callVariants(t, scenario{script: "chat.mjs", baseURL: d.base("/v1beta/openai"), model: "gemini-2.0-flash"},
		gemini, want{provider: "gemini", model: "gemini-2.0-flash"})
	const llama = "meta-llama/Llama-3.3-70B-Instruct-Turbo"
	tIDs, tWants := callVariants(t, scenario{script: "chat.mjs", baseURL: d.base("/together/v1"), model: llama},
		together, want{provider: "together", model: llama})
	for _, r := range gemini.Received() {
		if r.Path != "/v1beta/openai/chat/completions" {
			t.Errorf("the Gemini upstream got %s", r.Path)
		}
	}
	for _, r := range together.Received() {
		if r.Path != "/v1/chat/completions" {
			t.Errorf("the Together upstream got %s", r.Path)
		}
	}
	if n := len(d.mock.Received()); n != 0 {
		t.Errorf("the OpenAI upstream got %d requests, want 0", n)
	}
	checkRecords(t, d, append(ids, tIDs...), append(wants, tWants...))
}
