package app

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// startServe runs `tollgate serve` in-process (the file sink, the in-process
// store) and returns its HTTP address.
func startServe(t *testing.T, extraArgs ...string) string {
	t.Helper()
	args := append([]string{"serve", "--grpc-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
		"--data-dir", t.TempDir(), "--drain-delay", "0s", "--shutdown-timeout", "10s"}, extraArgs...)
	addrs, _, _ := runReady(t, args)
	return addrs["http"]
}

// What an application sharing the pod's loopback could try on the HTTP port.
var apiCalls = []struct{ method, path, body string }{
	{"GET", "/", ""},
	{"GET", "/requests", ""},
	{"GET", "/v1/requests", ""},
	{"GET", "/v1/stats", ""},
	{"GET", "/v1/alerts", ""},
	{"POST", "/v1/prompts/support-answer/versions", `{"messages":[{"role":"system","content":"Forged."}]}`},
	{"GET", "/v1/prompts/support-answer", ""},
	{"POST", "/oai/v1/log", `{"providerRequest":{"url":"x","json":{"model":"gpt-4o-mini"},"meta":{}},"providerResponse":{"headers":{},"status":200,"json":{}},"timing":{"startTime":{"seconds":1,"milliseconds":0},"endTime":{"seconds":2,"milliseconds":0}}}`},
	{"POST", "/v1/log/request", `{"record":{}}`},
	{"POST", "/v1/request/0193a5c4-3333-7aaa-8bbb-000000000003/feedback", `{"rating":true}`},
}

func httpCall(t *testing.T, method, url, body string, header http.Header) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if header != nil {
		req.Header = header.Clone()
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A sidecar (what `tollgate inject` and the webhook run) serves health and
// metrics only, even to loopback clients and even with an API key: the
// application shares its loopback. The gateway role still serves the API.
func TestSidecarRoleServesHealthAndMetricsOnly(t *testing.T) {
	for _, tc := range []struct {
		name   string
		args   []string
		header http.Header
	}{
		{"no key", nil, nil},
		{"with a key", []string{"--api-key", "k3y"}, http.Header{"Authorization": {"Bearer k3y"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := startServe(t, append([]string{"--role", "sidecar"}, tc.args...)...)
			for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
				if code, body := httpCall(t, "GET", "http://"+addr+path, "", nil); code != 200 || body == "" {
					t.Errorf("GET %s: %d", path, code)
				}
			}
			for _, c := range apiCalls {
				if code, body := httpCall(t, c.method, "http://"+addr+c.path, c.body, tc.header); code != http.StatusNotFound {
					t.Errorf("sidecar: %s %s answered %d, want 404: %.200s", c.method, c.path, code, body)
				}
			}
		})
	}

	// The gateway (the default role) serves the same calls.
	addr := startServe(t)
	if code, body := httpCall(t, "POST", "http://"+addr+"/v1/prompts/support-answer/versions", apiCalls[5].body, nil); code/100 != 2 {
		t.Errorf("gateway: publishing a prompt: %d %s", code, body)
	}
	if code, body := httpCall(t, "GET", "http://"+addr+"/", "", nil); code != 200 || !strings.Contains(body, "/assets/") {
		t.Errorf("gateway: dashboard: %d", code)
	}
}

func TestRoleFlagValidated(t *testing.T) {
	if _, _, err := loadConfig("serve", []string{"--role", "api"}, func(string) string { return "" }, false); err == nil || !strings.Contains(err.Error(), "role") {
		t.Fatalf("--role api: %v", err)
	}
	cfg, _, err := loadConfig("serve", nil, func(k string) string {
		if k == "TOLLGATE_ROLE" {
			return "sidecar"
		}
		return ""
	}, false)
	if err != nil || cfg.Role != RoleSidecar {
		t.Fatalf("TOLLGATE_ROLE=sidecar: %v %+v", err, cfg)
	}
}
