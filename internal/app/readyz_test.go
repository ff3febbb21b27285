package app

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate-dev/tollgate/storage/chschema"
)

// /readyz answers every Host on a port open to all namespaces: when the
// log is not written it says so, generically, without the database's
// name or its versions (those are in the logs and the metric).
func TestReadyzSchemaLineIsGeneric(t *testing.T) {
	var ready atomic.Bool
	ready.Store(true)
	behind := func() error {
		return &chschema.BehindError{Database: "acme_private_db", Found: 3, Needed: 9}
	}
	h := apiHandler(&Config{Role: RoleSidecar}, prometheus.NewRegistry(), &ready, behind, nil)
	req := httptest.NewRequest("GET", "/readyz", nil)
	req.Host = "anyone.example"
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, req)
	body := rr.Body.String()
	if rr.Code != http.StatusOK || !strings.Contains(body, "not writing") || !strings.Contains(body, "see the logs") {
		t.Errorf("/readyz: %d %q; want 200 saying the log is not written", rr.Code, body)
	}
	for _, secret := range []string{"acme_private_db", "version 3", "9"} {
		if strings.Contains(body, secret) {
			t.Errorf("/readyz %q shows %q", body, secret)
		}
	}
}
