package api

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/tollgate-dev/tollgate/record"
)

// withMeta puts meta (raw JSON) into a manual-logger payload's
// providerRequest.meta.
func withMeta(t *testing.T, body, meta string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatal(err)
	}
	m["providerRequest"].(map[string]any)["meta"] = json.RawMessage(meta)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func oneRecord(t *testing.T, mem *record.Memory) *record.Record {
	t.Helper()
	recs := mem.Records()
	if len(recs) != 1 {
		t.Fatalf("%d records", len(recs))
	}
	return recs[0]
}

// TestManualLoggerMeta: providerRequest.meta holds Helicone-* headers, and
// Helicone applies them like the request's own
// (worker/src/lib/managers/AsyncLogManager.ts: new HeliconeHeaders over
// mergeHeaders(meta, request headers)), the request's headers winning for a
// name in both. Before, Tollgate parsed meta and dropped it. Helicone
// authenticates a log with the call's own key (requestWrapper.auth() there),
// so a Helicone-Auth in meta does not pick the tenant.
func TestManualLoggerMeta(t *testing.T) {
	auth := twoTenantAuth(t)
	mem := record.NewMemory()
	h := New(Options{Sink: mem, Auth: auth, Now: fixedClock(t0)})
	id := uuid.NewString()
	start := t0.UnixMilli()
	body := withMeta(t, manualBody(openAIReq, openAIResp, "", "", start, start+10, nil), `{
		"Helicone-Request-Id": "`+id+`",
		"Helicone-User-Id": "meta-user",
		"Helicone-Session-Id": "s-1", "Helicone-Session-Path": "/a/b", "Helicone-Session-Name": "trip",
		"Helicone-Property-Team": "search",
		"helicone-property-env": "meta",
		"Helicone-Prompt-Id": "greeting",
		"Helicone-Omit-Response": "true",
		"Helicone-Property-Tries": 3,
		"Helicone-Property-Obj": {"ignored": true},
		"Helicone-Auth": "Bearer sk-other"
	}`)
	rr := do(t, h, "POST", "/oai/v1/log", local, map[string]string{"Helicone-Property-Env": "header", "Helicone-Auth": "Bearer sk-acme"}, body, nil)
	if rr.Code != 200 {
		t.Fatalf("%d %s", rr.Code, rr.Body)
	}
	if got := rr.Header().Get("Helicone-Id"); got != id {
		t.Errorf("Helicone-Id %q, want the request id from meta", got)
	}
	r := oneRecord(t, mem)
	if r.Tenant != "acme" {
		t.Fatalf("tenant %q: meta chose it", r.Tenant)
	}
	if r.RequestID != id || r.UserID != "meta-user" || r.SessionID != "s-1" || r.SessionPath != "/a/b" ||
		r.SessionName != "trip" || r.PromptID != "greeting" || r.ResponseBody != "" {
		t.Fatalf("meta not applied: %+v", r)
	}
	want := []record.Property{{Key: "env", Value: "header"}, {Key: "team", Value: "search"}, {Key: "tries", Value: "3"}}
	if len(r.Properties) != len(want) {
		t.Fatalf("properties %+v, want %+v", r.Properties, want)
	}
	for i := range want {
		if r.Properties[i] != want[i] {
			t.Fatalf("properties %+v, want %+v", r.Properties, want)
		}
	}
	if r.PromptTokens != 100 || math.Abs(r.CostUSD-openAICost) > 1e-12 {
		t.Fatalf("usage %+v", r)
	}
}

func TestManualLoggerMetaMustBeAnObject(t *testing.T) {
	h, _ := newIngest(t)
	body := withMeta(t, manualBody(openAIReq, openAIResp, "", "", t0.UnixMilli(), t0.UnixMilli()+5, nil), `["Helicone-User-Id"]`)
	rr := do(t, h, "POST", "/oai/v1/log", local, nil, body, nil)
	if rr.Code != 400 || !strings.Contains(rr.Body.String(), "providerRequest.meta") {
		t.Fatalf("%d %s", rr.Code, rr.Body)
	}
}

// TestManualLoggerUsageShapes: the logged response's usage is read in the
// shapes Helicone reads, from providerResponse.json or textBody.
func TestManualLoggerUsageShapes(t *testing.T) {
	const geminiResp = `{"candidates":[{"content":{"parts":[{"text":"Hi"}],"role":"model"}}],"usageMetadata":{"promptTokenCount":100,"candidatesTokenCount":20,"thoughtsTokenCount":20,"totalTokenCount":140},"modelVersion":"gemini-2.5-flash"}`
	// gemini-2.5-flash (provider/prices.yaml: input 0.30, output 2.50):
	// (100 × 0.30 + 40 × 2.50) / 1e6; thoughts are output
	// (valhalla/jawn/src/lib/shared/bodyProcessors/googleBodyProcessor.ts).
	const geminiCost = 130e-6
	// A stream logged through an SDK: a JSON chunk per line (openai-node's
	// toReadableStream; Helicone's Python log builder joins json.dumps of
	// each chunk with "\n"). Helicone reads each line with or without
	// "data: " (packages/cost/usage/openAIUsageProcessor.ts).
	jsonLines := `{"id":"c","object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"Hi"}}]}` + "\n" +
		`{"id":"c","object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}` + "\n"
	var anthropicLines strings.Builder // the Python builder's json.dumps of each event
	for _, line := range strings.Split(anthropicStream, "\n") {
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			anthropicLines.WriteString(data + "\n")
		}
	}
	start := t0.UnixMilli()
	for _, tc := range []struct {
		name, path, body   string
		prompt, completion int64
		cost               float64
		stream             bool
	}{
		{"gemini json, custom provider google", "/custom/v1/log",
			manualBody(`{"model":"gemini-2.5-flash"}`, geminiResp, "", "google", start, start+10, nil), 100, 40, geminiCost, false},
		{"gemini json as textBody", "/custom/v1/log",
			manualBody(`{"model":"gemini-2.5-flash"}`, `{}`, geminiResp, "google", start, start+10, nil), 100, 40, geminiCost, false},
		{"gemini array as textBody", "/custom/v1/log",
			manualBody(`{"model":"gemini-2.5-flash"}`, `{}`, "["+geminiResp+"]", "google", start, start+10, nil), 100, 40, geminiCost, false},
		{"gemini sse textBody", "/custom/v1/log",
			manualBody(`{"model":"gemini-2.5-flash","stream":true}`, `{}`, "data: "+geminiResp+"\r\n\r\n", "google", start, start+10, nil), 100, 40, geminiCost, true},
		{"json lines stream", "/oai/v1/log",
			manualBody(`{"model":"gpt-4o-mini","stream":true}`, `{}`, jsonLines, "", start, start+10, nil), 10, 5, openAIStreamCost, true},
		// Helicone's Python log builder puts an error's text first.
		{"json lines after an error", "/oai/v1/log",
			manualBody(`{"model":"gpt-4o-mini","stream":true}`, `{}`, "Traceback: stream cut\n\n"+jsonLines, "", start, start+10, nil), 10, 5, openAIStreamCost, true},
		{"anthropic json lines stream", "/anthropic/v1/log",
			manualBody(anthropicReq, `{}`, anthropicLines.String(), "", start, start+10, nil), 20, 12, anthropicStreamCost, true},
		{"responses api usage", "/oai/v1/log",
			manualBody(`{"model":"gpt-4o-mini"}`, `{"model":"gpt-4o-mini","usage":{"input_tokens":10,"output_tokens":5}}`, "", "", start, start+10, nil), 10, 5, openAIStreamCost, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, mem := newIngest(t)
			rr := do(t, h, "POST", tc.path, local, nil, tc.body, nil)
			if rr.Code != 200 {
				t.Fatalf("%d %s", rr.Code, rr.Body)
			}
			r := oneRecord(t, mem)
			if r.PromptTokens != tc.prompt || r.CompletionTokens != tc.completion || r.Stream != tc.stream ||
				math.Abs(r.CostUSD-tc.cost) > 1e-12 {
				t.Fatalf("record tokens %d/%d stream %v cost %v; want %d/%d %v %v", r.PromptTokens, r.CompletionTokens, r.Stream, r.CostUSD,
					tc.prompt, tc.completion, tc.stream, tc.cost)
			}
		})
	}
}
