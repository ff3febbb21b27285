package app

import (
	"net/http"
	"testing"
)

// /metrics refuses a foreign Host (a DNS-rebinding page) in both roles;
// loopback, an IP literal (Prometheus scraping the pod IP), and the host of
// --dashboard-url are served. Health answers every Host (kubelet probes).
func TestMetricsHostCheck(t *testing.T) {
	for _, role := range []string{RoleGateway, RoleSidecar} {
		t.Run(role, func(t *testing.T) {
			addr := startServe(t, "--role", role, "--dashboard-url", "https://tollgate.example.com")
			for _, tc := range []struct {
				path, host string
				want       int
			}{
				{"/metrics", "evil.example", http.StatusForbidden},
				{"/metrics", "evil.example:8080", http.StatusForbidden},
				{"/metrics", addr, http.StatusOK},
				{"/metrics", "localhost:8080", http.StatusOK},
				{"/metrics", "10.1.2.3:8080", http.StatusOK},
				{"/metrics", "[fd00::5]:8080", http.StatusOK},
				{"/metrics", "tollgate.example.com", http.StatusOK},
				{"/healthz", "evil.example", http.StatusOK},
				{"/healthz", "10.1.2.3:8080", http.StatusOK},
			} {
				req, err := http.NewRequest("GET", "http://"+addr+tc.path, nil)
				if err != nil {
					t.Fatal(err)
				}
				req.Host = tc.host
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != tc.want {
					t.Errorf("GET %s Host %s: %d, want %d", tc.path, tc.host, resp.StatusCode, tc.want)
				}
			}
		})
	}
}
