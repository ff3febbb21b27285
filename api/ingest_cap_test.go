package api

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/record"
)

// TestIngestCapsLoggedBodies: a body logged out of band is kept only up to
// MaxLoggedBody bytes, as the processor keeps a proxied one.
func TestIngestCapsLoggedBodies(t *testing.T) {
	const max = 64
	mem := record.NewMemory()
	h := New(Options{Sink: mem, Now: fixedClock(t0), MaxLoggedBody: max})

	longReq := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"` + strings.Repeat("q", 500) + `"}]}`
	longResp := `{"model":"gpt-4o-mini","choices":[{"message":{"content":"` + strings.Repeat("a", 500) + `"}}]}`
	longStream := "data: {\"choices\":[{\"delta\":{\"content\":\"" + strings.Repeat("s", 500) + "\"}}]}\n\ndata: [DONE]\n\n"
	own, _ := json.Marshal(map[string]any{"record": map[string]any{
		"provider": "openai", "model": "gpt-4o-mini", "requestBody": longReq, "responseBody": longResp}})

	for _, c := range []struct {
		name, path, body  string
		wantReq, wantResp string
	}{
		{"tollgate format", "/v1/log/request", string(own), longReq[:max], longResp[:max]},
		{"manual logger json", "/oai/v1/log", manualBody(longReq, longResp, "", "", 0, 1, nil), longReq[:max], longResp[:max]},
		{"manual logger stream", "/oai/v1/log", manualBody(longReq, `{}`, longStream, "", 0, 1, nil), longReq[:max], longStream[:max]},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out struct{ ID string }
			if rr := do(t, h, "POST", c.path, local, nil, c.body, &out); rr.Code != 200 {
				t.Fatalf("%d %s", rr.Code, rr.Body)
			}
			var rec *record.Record
			for _, r := range mem.Records() {
				if r.RequestID == out.ID {
					rec = r
				}
			}
			if rec == nil {
				t.Fatalf("no record %s", out.ID)
			}
			if rec.RequestBody != c.wantReq {
				t.Errorf("request body (%d bytes) = %q, want the first %d bytes", len(rec.RequestBody), rec.RequestBody, max)
			}
			if rec.ResponseBody != c.wantResp {
				t.Errorf("response body (%d bytes) = %q, want the first %d bytes", len(rec.ResponseBody), rec.ResponseBody, max)
			}
		})
	}
}
