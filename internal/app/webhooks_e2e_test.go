package app

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// A call through `tollgate dev` reaches the configured webhook on loopback,
// signed with the secret from its file, with the call's id, user and
// properties' filter applied; the delivery is drained at shutdown.
func TestWebhookGetsTheFinishedCall(t *testing.T) {
	const secret = "e2e-webhook-secret"
	var mu sync.Mutex
	var bodies [][]byte
	var signatures []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies, signatures = append(bodies, body), append(signatures, r.Header.Get("Helicone-Signature"))
		mu.Unlock()
	}))
	t.Cleanup(hook.Close)

	dir := t.TempDir()
	secretPath := filepath.Join(dir, "secret")
	os.WriteFile(secretPath, []byte(secret+"\n"), 0o600)
	config := filepath.Join(dir, "tollgate.yaml")
	os.WriteFile(config, []byte(`webhooks:
  - name: e2e
    url: `+hook.URL+`/hook
    tenant: "*"
    secret-file: `+secretPath+`
    property-filters: [{key: Environment, value: production}]
`), 0o644)
	d := startDev(t, "--config", config)

	body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello webhook"}]}`
	var ids []string
	for _, env := range []string{"production", "staging"} {
		resp, _ := call{path: "/v1/chat/completions", body: body, headers: map[string]string{
			"Helicone-User-Id": "alice", "Helicone-Property-Environment": env,
		}}.do(t, d)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
		ids = append(ids, resp.Header.Get("Helicone-Id"))
	}
	if err := d.stop(); err != nil { // drains the webhook queue
		t.Fatalf("shutdown: %v\n%s", err, d.stderr)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) != 1 {
		t.Fatalf("%d deliveries, want 1 (the staging call is filtered out)", len(bodies))
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(bodies[0])
	if signatures[0] != hex.EncodeToString(m.Sum(nil)) {
		t.Errorf("signature %q does not verify", signatures[0])
	}
	var p struct {
		RequestID   string          `json:"request_id"`
		UserID      string          `json:"user_id"`
		Provider    string          `json:"provider"`
		RequestBody json.RawMessage `json:"request_body"`
		Metadata    struct {
			PromptTokens int64 `json:"promptTokens"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(bodies[0], &p); err != nil {
		t.Fatal(err)
	}
	if p.RequestID != ids[0] || p.UserID != "alice" || p.Provider != "OPENAI" || p.Metadata.PromptTokens == 0 ||
		!strings.Contains(string(p.RequestBody), `"hello webhook"`) {
		t.Errorf("payload %s for call %s", bodies[0], ids[0])
	}
}

// A destination that is no http(s) URL stops start-up with a message naming
// the setting and the destination, and never the URL.
func TestWebhookURLMustBeHTTP(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(dir, "tollgate.yaml")
	os.WriteFile(config, []byte(`webhooks:
  - {name: files, url: "file:///etc/token-s3cr3t", tenant: acme, secret-env: HOOK_SECRET}
`), 0o644)
	err := run(context.Background(), []string{"dev", "--config", config, "--data-dir", dir}, io.Discard, io.Discard, env(nil))
	if err == nil || !strings.Contains(err.Error(), `webhooks in `+config+`: webhooks[0] (files): url: want an http:// or https:// URL, got scheme "file"`) {
		t.Fatalf("got %v", err)
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Error("the error quotes the URL")
	}
}
