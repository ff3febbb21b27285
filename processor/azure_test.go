package processor

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tidwall/gjson"

	"github.com/tollgate-dev/tollgate/record"
)

// Azure OpenAI through Helicone-OpenAI-Api-Base, the way Helicone's Azure
// guide calls it (docs/integrations/azure/curl.mdx): the deployment in the
// path, api-version in the query, the resource's origin in the header and
// the key in api-key.
const (
	azureOrigin = "https://myres.openai.azure.com"
	azurePath   = "/openai/deployments/prod-mini/chat/completions?api-version=2024-10-21"
	azureKey    = "azure-key-0123456789abcdef"
)

func newAzureServer(t *testing.T, mutate ...func(*Options)) (*Server, *record.Memory) {
	return newTestServer(t, append([]func(*Options){func(o *Options) {
		o.AllowedTargetOrigins = []string{azureOrigin, "https://api.together.xyz"}
	}}, mutate...)...)
}

func azureHeaders(kv ...string) []string {
	return append([]string{":method", "POST", ":path", azurePath, "content-type", "application/json",
		"api-key", azureKey, "helicone-openai-api-base", azureOrigin + "/"}, kv...)
}

// Helicone sends the call to the origin of Helicone-OpenAI-Api-Base with the
// request's own path and query (worker/src/lib/providerCalls/call.ts,
// callProvider); it records the body's model, else one read from the path
// (worker/src/lib/dbLogger/DBLoggable.ts, getModelFromRequest: /engines/…
// and models/…; Tollgate reads the Azure deployment there too), and prices
// the response's model before the request's (DBLoggable.ts, log).
func TestAzureAPIBaseRoutesAndRecords(t *testing.T) {
	s, sink := newAzureServer(t)
	const body = `{"messages":[{"role":"user","content":"Say hi"}]}`
	replies, err := run(s, nil,
		reqHeaders(false, azureHeaders("helicone-request-id", requestID)...),
		reqBody(body),
		respHeaders(false, ":status", "200", "content-type", "application/json"),
		respBody(chatResponse, true))
	if err != nil {
		t.Fatal(err)
	}
	cr := replies[0].GetRequestHeaders().GetResponse()
	got := setHeaders(cr)
	if got[upstreamOriginHeader] != azureOrigin || got[upstreamHostHeader] != "myres.openai.azure.com" || !cr.GetClearRouteCache() {
		t.Fatalf("set %v, clear_route_cache %v; want the Azure origin", got, cr.GetClearRouteCache())
	}
	if _, ok := got[":path"]; ok || removed(cr, "api-key") || !removed(cr, "helicone-openai-api-base") {
		t.Fatalf("path rewritten, api-key removed or the Helicone header kept: %v", cr)
	}
	r := *sink.Records()[0]
	r.CreatedAt = time.Time{}
	want := record.Record{
		RequestID: requestID, Tenant: r.Tenant, Provider: "azure", Model: "prod-mini", ResponseModel: "gpt-4o-mini-2024-07-18",
		Method: "POST", Path: "/openai/deployments/prod-mini/chat/completions", TargetURL: azureOrigin, Status: 200, Attempts: 1,
		PromptTokens: 1200, CompletionTokens: 300, CachedTokens: 200, ReasoningTokens: 50,
		CostUSD: chatCost, UsageSource: record.UsageProvider, LatencyMs: 20, TTFTMs: 10, RequestBody: body, ResponseBody: chatResponse,
	}
	if d := cmp.Diff(want, r, approxCost); d != "" {
		t.Fatalf("record (-want +got):\n%s", d)
	}
	line, _ := json.Marshal(sink.Records()[0])
	if strings.Contains(string(line), azureKey) {
		t.Fatalf("record leaks the api-key: %s", line)
	}
}

// The body's model, when sent, is the model as requested.
func TestAzureBodyModelRecorded(t *testing.T) {
	s, sink := newAzureServer(t)
	run(s, nil, reqHeaders(false, azureHeaders()...), reqBody(chatBody),
		respHeaders(false, ":status", "200", "content-type", "application/json"), respBody(chatResponse, true))
	if r := sink.Records()[0]; r.Model != "gpt-4o-mini" || r.Provider != "azure" {
		t.Fatalf("model %q provider %q", r.Model, r.Provider)
	}
}

// Both headers: Helicone takes Helicone-OpenAI-Api-Base first
// (worker/src/lib/HeliconeProxyRequest/mapper.ts, getApiBase:
// openaiBaseUrl ?? targetBaseUrl), and so does Tollgate; the one that
// loses is not checked, the one that wins must be allowed.
func TestAzureAPIBaseWinsOverTargetURL(t *testing.T) {
	s, _ := newAzureServer(t)
	replies, _ := run(s, nil, reqHeaders(true, azureHeaders("helicone-target-url", "https://api.together.xyz")...))
	if got := setHeaders(replies[0].GetRequestHeaders().GetResponse())[upstreamOriginHeader]; got != azureOrigin {
		t.Fatalf("upstream %q, want %s", got, azureOrigin)
	}
	s, _ = newTestServer(t) // allows api.together.xyz only
	replies, _ = run(s, nil, reqHeaders(true, azureHeaders("helicone-target-url", "https://api.together.xyz")...))
	if imm := replies[0].GetImmediateResponse(); imm == nil || imm.GetStatus().GetCode() != 403 {
		t.Fatalf("got %v, want a 403 for the Api-Base origin", replies[0])
	}
}

// Helicone answers an origin it does not approve with an error naming the
// API base (mapper.ts, getApiBase: approvedDomains); Tollgate's approved
// origins are --allowed-target-origins, "*" with its limits, and the egress
// policy's targetOrigins. The 403 names the header.
func TestAzureAPIBaseNotAllowed(t *testing.T) {
	for _, tc := range []struct {
		name    string
		allowed []string
		policy  string
		base    string
		code    string
		want    []string
	}{
		{"unlisted", []string{"https://api.together.xyz"}, "", azureOrigin, "target_not_allowed",
			[]string{"Helicone-OpenAI-Api-Base", azureOrigin, "allowed-target-origins"}},
		{"wildcard loopback", []string{"*"}, "", "http://127.0.0.1:9901", "target_not_allowed",
			[]string{"Helicone-OpenAI-Api-Base", "https:// origins only"}},
		{"not a URL", []string{"*"}, "", "myres.openai.azure.com", "invalid_header",
			[]string{"Helicone-OpenAI-Api-Base", "absolute http(s) URL"}},
		{"egress policy", []string{"*"}, "defaults:\n  allow: {targetOrigins: [\"https://other.openai.azure.com\"]}\n", azureOrigin, "egress_denied",
			[]string{"target origin", azureOrigin}},
	} {
		s, sink := newTestServer(t, func(o *Options) {
			o.AllowedTargetOrigins = tc.allowed
			if tc.policy != "" {
				o.Egress = mustPolicy(t, tc.policy)
			}
		})
		h := azureHeaders()
		h[len(h)-1] = tc.base
		replies, _ := run(s, nil, reqHeaders(true, h...))
		imm := replies[0].GetImmediateResponse()
		if imm == nil || imm.GetStatus().GetCode()/100 != 4 {
			t.Errorf("%s: got %v, want a refusal", tc.name, replies[0])
			continue
		}
		msg := gjson.GetBytes(imm.GetBody(), "error.message").String()
		for _, w := range tc.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: message %q lacks %q", tc.name, msg, w)
			}
		}
		if code := gjson.GetBytes(imm.GetBody(), "error.code").String(); code != tc.code {
			t.Errorf("%s: code %q, want %q", tc.name, code, tc.code)
		}
		if r := sink.Records()[0]; strings.Contains(r.Error, azureKey) {
			t.Errorf("%s: the record's error holds the api-key", tc.name)
		}
	}
}

// Pricing: the response's model first (DBLoggable.ts, log: model_override
// ?? response model ?? request model), then the configured deployment map
// (Azure names deployments as its users please: "prod-mini" has no price),
// then the model as requested.
func TestAzureDeploymentMapPrices(t *testing.T) {
	noModel := strings.Replace(chatResponse, `"model":"gpt-4o-mini-2024-07-18",`, `"model":"prod-mini",`, 1)
	for _, tc := range []struct {
		name     string
		deploy   map[string]string
		response string
		cost     float64
	}{
		{"map", map[string]string{"prod-mini": "gpt-4o-mini"}, noModel, chatCost},
		{"no map", nil, noModel, 0},
		{"response model first", map[string]string{"prod-mini": "gpt-4o"}, chatResponse, chatCost},
	} {
		s, sink := newAzureServer(t, func(o *Options) { o.AzureDeployments = tc.deploy })
		run(s, nil, reqHeaders(false, azureHeaders()...), reqBody(`{"messages":[]}`),
			respHeaders(false, ":status", "200", "content-type", "application/json"), respBody(tc.response, true))
		if got := sink.Records()[0].CostUSD; !cmp.Equal(got, tc.cost, approxCost) {
			t.Errorf("%s: cost %v, want %v", tc.name, got, tc.cost)
		}
	}
	// Helicone-Model-Override prices the call whatever answered (DBLoggable.ts,
	// log: model_override first).
	s, sink := newAzureServer(t, func(o *Options) { o.AzureDeployments = map[string]string{"prod-mini": "gpt-4o"} })
	run(s, nil, reqHeaders(false, azureHeaders("helicone-model-override", "gpt-4o-mini")...), reqBody(`{"messages":[]}`),
		respHeaders(false, ":status", "200", "content-type", "application/json"), respBody(noModel, true))
	if got := sink.Records()[0].CostUSD; !cmp.Equal(got, chatCost, approxCost) {
		t.Errorf("override: cost %v, want %v", got, chatCost)
	}
	// Azure's v1 API names the deployment in the body.
	s, sink = newAzureServer(t, func(o *Options) { o.AzureDeployments = map[string]string{"prod-mini": "gpt-4o-mini"} })
	run(s, nil, reqHeaders(false, ":method", "POST", ":path", "/openai/v1/chat/completions", "helicone-openai-api-base", azureOrigin),
		reqBody(`{"model":"prod-mini","messages":[]}`),
		respHeaders(false, ":status", "200", "content-type", "application/json"), respBody(noModel, true))
	if r := sink.Records()[0]; !cmp.Equal(r.CostUSD, chatCost, approxCost) || r.Provider != "azure" {
		t.Errorf("v1 API: cost %v provider %q", r.CostUSD, r.Provider)
	}
}

// Azure chat streams report usage only when asked, like OpenAI's.
func TestAzureStreamAsksForUsage(t *testing.T) {
	s, _ := newAzureServer(t)
	replies, _ := run(s, nil, reqHeaders(false, azureHeaders()...), reqBody(`{"stream":true,"messages":[]}`))
	body := replies[1].GetRequestBody().GetResponse().GetBodyMutation().GetBody()
	if !gjson.GetBytes(body, "stream_options.include_usage").Bool() {
		t.Fatalf("body %s, want stream_options.include_usage", body)
	}
}

// An egress policy's model rule holds for the model the deployment serves:
// Azure ignores the body's model, so naming an allowed one in the body must
// not buy a call to a deployment of another model.
func TestAzureEgressChecksTheDeploymentsModel(t *testing.T) {
	const policy = "defaults:\n  allow: {models: [\"gpt-4o-mini\"]}\n"
	for _, tc := range []struct {
		name   string
		deploy map[string]string
		allow  bool
	}{
		{"mapped to an allowed model", map[string]string{"prod-mini": "gpt-4o-mini"}, true},
		{"mapped to another model", map[string]string{"prod-mini": "gpt-4o"}, false},
		{"unmapped", nil, false},
	} {
		s, _ := newAzureServer(t, func(o *Options) { o.Egress = mustPolicy(t, policy); o.AzureDeployments = tc.deploy })
		replies, _ := run(s, nil, reqHeaders(false, azureHeaders()...), reqBody(chatBody)) // the body names gpt-4o-mini
		imm := replies[1].GetImmediateResponse()
		if tc.allow != (imm == nil) {
			t.Errorf("%s: allowed %v, want %v (%v)", tc.name, imm == nil, tc.allow, replies[1])
		}
	}
}

// Azure's v1 API (/openai/v1/…) names the deployment in the body's model,
// not in the path. The egress model rule checks the model that deployment
// serves, as --azure-deployments maps it for pricing, not the deployment's
// name.
func TestAzureV1EgressChecksTheMappedModel(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy string
		deploy map[string]string
		allow  bool
	}{
		{"mapped to an allowed model", `["gpt-4o-mini"]`, map[string]string{"prod-mini": "gpt-4o-mini"}, true},
		{"mapped to another model", `["gpt-4o-mini"]`, map[string]string{"prod-mini": "gpt-4o"}, false},
		// A rule listing the deployment's name does not let through the
		// model the map says it serves.
		{"the deployment's name listed", `["prod-mini"]`, map[string]string{"prod-mini": "gpt-4o"}, false},
		{"unmapped, its name listed", `["prod-mini"]`, nil, true},
		{"unmapped", `["gpt-4o-mini"]`, nil, false},
	} {
		s, _ := newAzureServer(t, func(o *Options) {
			o.Egress = mustPolicy(t, "defaults:\n  allow: {models: "+tc.policy+"}\n")
			o.AzureDeployments = tc.deploy
		})
		replies, _ := run(s, nil, reqHeaders(false, ":method", "POST", ":path", "/openai/v1/chat/completions", "content-type", "application/json",
			"api-key", azureKey, "helicone-openai-api-base", azureOrigin), reqBody(`{"model":"prod-mini","messages":[]}`))
		imm := replies[1].GetImmediateResponse()
		if tc.allow != (imm == nil) {
			t.Errorf("%s: allowed %v, want %v (%v)", tc.name, imm == nil, tc.allow, replies[1])
		}
	}
}
