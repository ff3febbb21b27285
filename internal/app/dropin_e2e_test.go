package app

import (
	"strings"
	"testing"

	"github.com/google/uuid"
)

// A Helicone user's call through `tollgate dev`: the values Helicone's
// worker tolerates (HeliconeHeaders.ts: getValidUUID replaces a request id
// that is not a UUID, only "true" omits a body) go through with the
// answer's Helicone-Warning saying what was done, and
// Helicone-Model-Override prices the call without changing what the
// provider receives.
func TestDevHeliconeDropIn(t *testing.T) {
	d := startDev(t)
	const body = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"tell me a story about tollgates"}]}`
	before := len(d.mock.Received())
	resp, _ := call{path: "/v1/chat/completions", body: body, headers: map[string]string{
		"Helicone-Request-Id": "trace-42", "Helicone-Omit-Request": "yes", "Helicone-Model-Override": "gpt-4o",
	}}.do(t, d)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: Helicone takes these headers", resp.StatusCode)
	}
	id := resp.Header.Get("Helicone-Id")
	if _, err := uuid.Parse(id); err != nil {
		t.Fatalf("Helicone-Id %q: want a new UUID", id)
	}
	w := resp.Header.Get("Helicone-Warning")
	if !strings.Contains(w, `Helicone-Request-Id "trace-42" is not a UUID`) || !strings.Contains(w, `Helicone-Omit-Request "yes"`) {
		t.Fatalf("Helicone-Warning %q", w)
	}
	received := d.mock.Received()
	if len(received) != before+1 || !strings.Contains(string(received[len(received)-1].Body), `"model":"gpt-4o-mini"`) {
		t.Fatalf("the provider did not get the request as sent")
	}
	r := d.records(t)[id]
	if r == nil {
		t.Fatalf("no record under Helicone-Id %s", id)
	}
	// The mock reports a token per prompt word and 12 completion tokens;
	// gpt-4o's price (provider/prices.yaml): (6 × 2.50 + 12 × 10.00) / 1e6.
	if r.ModelOverride != "gpt-4o" || r.Model != "gpt-4o-mini" || !sameCost(r.CostUSD, 0.000135) {
		t.Errorf("model %q, override %q, cost %v", r.Model, r.ModelOverride, r.CostUSD)
	}
	if r.RequestBody != body || r.Warnings != w {
		t.Errorf("request body %q (yes does not omit it), warnings %q", r.RequestBody, r.Warnings)
	}
}
