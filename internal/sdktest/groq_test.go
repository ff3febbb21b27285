package sdktest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/tollgate-dev/tollgate/mockprovider"
)

// groqModel is a Groq model of provider/prices.yaml's groq section.
const groqModel = "llama-3.3-70b-versatile"

func init() { prices[groqModel] = price{0.59, 0.79} }

// groqDev is `tollgate dev` with the built-in groq entry pointed at a mock
// of its own, under Groq's own API prefix (/openai/v1). The origin is
// named by "localhost": the entry joins the process-wide provider list,
// and no 127.0.0.1 origin may be read as groq's.
func groqDev(t *testing.T, extra ...string) (*dev, *mockprovider.Server) {
	t.Helper()
	groq := mockprovider.New(mockprovider.Options{})
	srv := httptest.NewServer(groq)
	t.Cleanup(srv.Close)
	origin := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	return startDev(t, append([]string{"--openai-compatible", "groq=" + origin + "/openai/v1"}, extra...)...), groq
}

// The OpenAI SDK with Groq's base URL through the data plane
// (<dataplane>/groq/openai/v1, as docs/providers.md gives it): text and
// tool calls, whole and streamed; Groq gets /openai/v1/chat/completions and
// the records name groq, the model and its Groq price.
func TestSDKGroq(t *testing.T) {
	d, groq := groqDev(t)
	ids, wants := callVariants(t, scenario{script: "chat.mjs", baseURL: d.base("/groq/openai/v1"), model: groqModel},
		groq, want{provider: "groq", model: groqModel})
	for _, r := range groq.Received() {
		if r.Path != "/openai/v1/chat/completions" || r.Header.Get("Authorization") != "Bearer sk-sdktest" {
			t.Errorf("the Groq upstream got %s with Authorization %q", r.Path, r.Header.Get("Authorization"))
		}
	}
	if n := len(d.mock.Received()); n != 0 {
		t.Errorf("the OpenAI upstream got %d requests, want 0", n)
	}
	checkRecords(t, d, ids, wants)
}

// Key-vault proxy keys with Groq: one stored for groq, given to the
// OpenAI SDK as its key, reaches Groq as the real key in Authorization; one
// stored for openai is refused on Groq's route (Groq speaks OpenAI's
// format, but the key is OpenAI's), and Groq's on OpenAI's.
func TestSDKGroqProxyKey(t *testing.T) {
	keys := map[string]string{} // provider -> proxy key
	var file strings.Builder
	file.WriteString("keys:\n")
	for _, p := range []string{"groq", "openai"} {
		keys[p] = "sk-helicone-proxy-" + fmt.Sprintf("%-7.7s", p+"0000000") + "-hijklmn-opqrstu-vwxyz23-0b5c7a4e-2d7b-4f4e-9b1a-1c2d3e4f5a6b"
		sum := sha256.Sum256([]byte(keys[p]))
		fmt.Fprintf(&file, "- {id: app-%s, tenant: app, provider: %s, proxyKeySHA256: %s, providerKey: real-%s-key}\n", p, p, hex.EncodeToString(sum[:]), p)
	}
	path := filepath.Join(t.TempDir(), "vault.yaml")
	if err := os.WriteFile(path, []byte(file.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	d, groq := groqDev(t, "--key-vault", path)

	id := uuid.NewString()
	r := scenario{script: "chat.mjs", baseURL: d.base("/groq/openai/v1"), model: groqModel, stream: true,
		headers: map[string]string{"Helicone-Request-Id": id}, env: []string{"SDKTEST_API_KEY=" + keys["groq"]}}.run(t)
	if r.Content != mockprovider.CompletionText {
		t.Errorf("the SDK saw %q", r.Content)
	}
	got := groq.Received()
	if len(got) != 1 || got[0].Header.Get("Authorization") != "Bearer real-groq-key" {
		t.Fatalf("the Groq upstream got %d requests, Authorization %q", len(got), got[0].Header.Get("Authorization"))
	}

	for _, c := range []struct{ key, path string }{
		{keys["openai"], "/groq/openai/v1/chat/completions"},
		{keys["groq"], "/v1/chat/completions"},
	} {
		req, err := http.NewRequest("POST", d.base(c.path), strings.NewReader(`{"model":"`+groqModel+`","messages":[{"role":"user","content":"hi"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+c.key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 403 || !strings.Contains(string(body), "may not be sent") || strings.Contains(string(body), "real-") {
			t.Errorf("%s with another provider's key: status %d: %s", c.path, resp.StatusCode, body)
		}
	}
	if len(groq.Received()) != 1 || len(d.mock.Received()) != 0 {
		t.Errorf("a refused key reached a provider: groq %d, openai %d requests", len(groq.Received()), len(d.mock.Received()))
	}
	if rec := d.records(t)[id]; rec == nil || rec.Provider != "groq" || rec.ProxyKeyID != "app-groq" || rec.Tenant != "app" || rec.Status != 200 {
		t.Errorf("record %+v", rec)
	}
}
