package api

import (
	"math"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// TestManualLoggerHeliconeTolerance: Helicone's manual logger reads the
// Helicone-* headers with the proxy's parser (worker
// src/lib/models/HeliconeHeaders.ts, used for async logs too), so a
// Helicone-Request-Id that is not a UUID gets a new id, an unknown switch
// value logs the body, and Helicone-Model-Override prices the call (jawn
// ResponseBodyHandler.ts: modelCost of calculateModel, the override
// first). Nothing here is a 400; the record keeps the warnings.
func TestManualLoggerHeliconeTolerance(t *testing.T) {
	h, mem := newIngest(t)
	start := t0.UnixMilli()
	rr := do(t, h, "POST", "/oai/v1/log", local, map[string]string{
		"Helicone-Request-Id": "nope", "Helicone-Omit-Response": "yes", "Helicone-Model-Override": "gpt-4o",
	}, manualBody(openAIReq, openAIResp, "", "", start, start+100, nil), nil)
	if rr.Code != 200 {
		t.Fatalf("%d %s: Helicone logs the call", rr.Code, rr.Body)
	}
	recs := mem.Records()
	if len(recs) != 1 {
		t.Fatalf("%d records", len(recs))
	}
	r := recs[0]
	if _, err := uuid.Parse(r.RequestID); err != nil {
		t.Errorf("request id %q: want a new UUID", r.RequestID)
	}
	if r.ResponseBody != openAIResp {
		t.Errorf("response body %q: yes does not omit it", r.ResponseBody)
	}
	if !strings.Contains(r.Warnings, "Helicone-Request-Id") || !strings.Contains(r.Warnings, "Helicone-Omit-Response") {
		t.Errorf("warnings %q", r.Warnings)
	}
	// openAIResp's usage at gpt-4o's price (provider/prices.yaml: input
	// 2.50, cached input 1.25, output 10.00 USD per million tokens):
	// (60 × 2.50 + 40 × 1.25 + 20 × 10.00) / 1e6 = 400e-6.
	if r.ModelOverride != "gpt-4o" || math.Abs(r.CostUSD-400e-6) > 1e-12 {
		t.Errorf("override %q, cost %v: want gpt-4o's price", r.ModelOverride, r.CostUSD)
	}
	if r.Model != "gpt-4o-mini" || r.ResponseModel != "gpt-4o-mini-2024-07-18" {
		t.Errorf("model %q, response model %q: the override does not replace them", r.Model, r.ResponseModel)
	}
}
