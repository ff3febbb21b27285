package api

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/record"
)

// twoTenantAuth authenticates the calls of the manual logger tests: sk-acme
// is tenant acme, sk-other tenant other.
func twoTenantAuth(t *testing.T) *policies.Auth {
	t.Helper()
	auth, err := policies.NewAuth([]policies.APIKey{
		{SHA256: policies.HashKey("sk-acme"), Tenant: "acme"},
		{SHA256: policies.HashKey("sk-other"), Tenant: "other"},
	}, true)
	if err != nil {
		t.Fatal(err)
	}
	return auth
}

// TestManualLoggerFirstHeliconeAuth: a call that repeats Helicone-Auth is
// authenticated by the first value, as Header.Get reads it.
func TestManualLoggerFirstHeliconeAuth(t *testing.T) {
	auth := twoTenantAuth(t)
	mem := record.NewMemory()
	h := New(Options{Sink: mem, Auth: auth, APIKey: "admin-key", Now: fixedClock(t0)})
	body := manualBody(openAIReq, openAIResp, "", "", t0.UnixMilli(), t0.UnixMilli()+5, nil)
	req := httptest.NewRequest("POST", "/oai/v1/log", strings.NewReader(body))
	req.RemoteAddr = "10.1.2.3:5000"
	req.Host = "localhost:8080"
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer admin-key")
	req.Header.Add("Helicone-Auth", "Bearer sk-acme")
	req.Header.Add("Helicone-Auth", "Bearer sk-other")
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, req)
	if rr.Code != 200 {
		t.Fatalf("status %d %s", rr.Code, rr.Body)
	}
	if recs := mem.Records(); len(recs) != 1 || recs[0].Tenant != "acme" {
		t.Fatalf("records %+v, want one of tenant acme", recs)
	}
}
