package sdktest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/tollgate-dev/tollgate/mockprovider"
)

// geminiKey is the key the Gemini SDK is given: it reaches Google (the
// mock) in x-goog-api-key.
const geminiKey = "AIza-sdktest-gemini-key"

// geminiDev is `tollgate dev` with Gemini's upstream a mock of its own.
func geminiDev(t *testing.T, extra ...string) (*dev, *mockprovider.Server) {
	t.Helper()
	gemini := mockprovider.New(mockprovider.Options{})
	srv := httptest.NewServer(gemini)
	t.Cleanup(srv.Close)
	return startDev(t, append([]string{"--upstream-gemini", srv.URL}, extra...)...), gemini
}

// Google's Gen AI SDK against Gemini's native API through the data plane:
// generateContent and generateContentStream (streamGenerateContent with
// alt=sse), on the beta API (the SDK's default) and the stable v1 one,
// whose /v1/models/… paths share OpenAI's prefix. The SDK decodes the
// mock's answer; the records name gemini, the path's model, the tokens of
// usageMetadata and the cost at gemini-2.0-flash's price.
func TestSDKGeminiNative(t *testing.T) {
	d, gemini := geminiDev(t)
	var ids []string
	var wants []want
	for _, version := range []string{"v1beta", "v1"} {
		for _, stream := range []bool{false, true} {
			id := uuid.NewString()
			s := scenario{script: "gemini.mjs", baseURL: d.base(""), model: "gemini-2.0-flash", stream: stream,
				headers: map[string]string{"Helicone-Request-Id": id},
				env:     []string{"SDKTEST_GEMINI_API_VERSION=" + version, "SDKTEST_API_KEY=" + geminiKey}}
			name := fmt.Sprintf("gemini %s stream=%v", version, stream)
			r := s.run(t)
			got := gemini.Received()
			if len(got) == 0 {
				t.Fatalf("%s: Gemini's upstream received nothing", name)
			}
			last := got[len(got)-1]
			method := "generateContent"
			if stream {
				method = "streamGenerateContent"
			}
			if want := "/" + version + "/models/gemini-2.0-flash:" + method; last.Path != want || last.Header.Get("x-goog-api-key") != geminiKey ||
				(stream && last.Query != "alt=sse") {
				t.Errorf("%s: the upstream got %s?%s with x-goog-api-key %q, want %s", name, last.Path, last.Query, last.Header.Get("x-goog-api-key"), want)
			}
			w := want{provider: "gemini", model: "gemini-2.0-flash", stream: stream, prompt: mockprovider.GeminiPromptTokens(last.Body)}
			checkResult(t, name, r, w)
			if r.Model != "gemini-2.0-flash" || r.FinishReason != "STOP" {
				t.Errorf("%s: model %q finish %q", name, r.Model, r.FinishReason)
			}
			ids, wants = append(ids, id), append(wants, w)
		}
	}
	if n := len(d.mock.Received()); n != 0 {
		t.Errorf("the OpenAI upstream got %d requests, want 0", n)
	}
	checkRecords(t, d, ids, wants)
}

// Thoughts and cached content through the SDK's stream: Gemini reports
// thoughtsTokenCount outside candidatesTokenCount and
// cachedContentTokenCount inside promptTokenCount; the record counts the
// thoughts as completion (and reasoning) tokens and prices the cached
// ones at the cache read price.
func TestSDKGeminiThoughtsAndCache(t *testing.T) {
	d, gemini := geminiDev(t)
	id := uuid.NewString()
	r := scenario{script: "gemini.mjs", baseURL: d.base(""), model: "gemini-2.0-flash", stream: true,
		headers: map[string]string{"Helicone-Request-Id": id, mockprovider.HeaderCompletionTokens: "30",
			mockprovider.HeaderReasoningTokens: "10", mockprovider.HeaderCachedTokens: "2"},
		env: []string{"SDKTEST_API_KEY=" + geminiKey}}.run(t)
	got := gemini.Received()
	if len(got) != 1 {
		t.Fatalf("Gemini's upstream got %d requests", len(got))
	}
	prompt := mockprovider.GeminiPromptTokens(got[0].Body)
	if r.Content != mockprovider.CompletionText || r.Usage.Input != prompt || r.Usage.Output != 30 {
		t.Errorf("the SDK saw %q and usage %+v", r.Content, r.Usage)
	}
	rec := d.records(t)[id]
	if rec == nil {
		t.Fatal("no record")
	}
	// gemini-2.0-flash: 0.10 input, 0.025 cached input, 0.40 output (USD per million).
	cost := (float64(prompt-2)*0.10 + 2*0.025 + 30*0.40) / 1e6
	if rec.Provider != "gemini" || !rec.Stream || rec.PromptTokens != prompt || rec.CompletionTokens != 30 ||
		rec.ReasoningTokens != 10 || rec.CachedTokens != 2 || math.Abs(rec.CostUSD-cost) > 1e-9*cost {
		t.Errorf("record provider %q stream %v tokens %d/%d reasoning %d cached %d cost %v; want gemini true %d/30 10 2 %v",
			rec.Provider, rec.Stream, rec.PromptTokens, rec.CompletionTokens, rec.ReasoningTokens, rec.CachedTokens, rec.CostUSD, prompt, cost)
	}
}

// A key-vault proxy key stored for Gemini: the SDK sends it in
// x-goog-api-key and a REST caller in the key= query parameter; Google
// gets the real key in x-goog-api-key and no key= parameter. The same key
// is refused on OpenAI's route, which Gemini's stable paths resemble.
func TestSDKGeminiProxyKey(t *testing.T) {
	const proxyKey = "sk-helicone-proxy-gemini1-hijklmn-opqrstu-vwxyz23-0b5c7a4e-2d7b-4f4e-9b1a-1c2d3e4f5a6b"
	const realKey = "AIza-the-real-gemini-key"
	sum := sha256.Sum256([]byte(proxyKey))
	path := filepath.Join(t.TempDir(), "vault.yaml")
	entry := fmt.Sprintf("keys:\n- {id: app-gemini, tenant: app, provider: gemini, proxyKeySHA256: %s, providerKey: %s}\n", hex.EncodeToString(sum[:]), realKey)
	if err := os.WriteFile(path, []byte(entry), 0o600); err != nil {
		t.Fatal(err)
	}
	d, gemini := geminiDev(t, "--key-vault", path)

	sdkID := uuid.NewString()
	r := scenario{script: "gemini.mjs", baseURL: d.base(""), model: "gemini-2.0-flash",
		headers: map[string]string{"Helicone-Request-Id": sdkID}, env: []string{"SDKTEST_API_KEY=" + proxyKey}}.run(t)
	if r.Content != mockprovider.CompletionText {
		t.Errorf("the SDK saw %q", r.Content)
	}

	restID := uuid.NewString()
	post := func(path string, id string) (int, string) {
		req, err := http.NewRequest("POST", d.base(path), strings.NewReader(`{"contents":[{"parts":[{"text":"hi there"}]}]}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Helicone-Request-Id", id)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if status, body := post("/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse&key="+proxyKey, restID); status != 200 {
		t.Fatalf("key= parameter: status %d: %s", status, body)
	}
	got := gemini.Received()
	if len(got) != 2 {
		t.Fatalf("Gemini's upstream got %d requests, want 2", len(got))
	}
	for i, g := range got {
		if g.Header.Get("x-goog-api-key") != realKey || strings.Contains(g.Query, "key=") || strings.Contains(g.Header.Get("Authorization"), proxyKey) {
			t.Errorf("request %d: x-goog-api-key %q, query %q", i, g.Header.Get("x-goog-api-key"), g.Query)
		}
	}
	if got[1].Query != "alt=sse" {
		t.Errorf("query %q, want alt=sse left", got[1].Query)
	}

	wrongID := uuid.NewString()
	if status, body := post("/v1/chat/completions?key="+proxyKey, wrongID); status != 403 || !strings.Contains(body, "app-gemini may not be sent") {
		t.Errorf("on OpenAI's route: status %d: %s", status, body)
	}
	if n := len(d.mock.Received()); n != 0 {
		t.Errorf("the OpenAI upstream got %d requests", n)
	}
	recs := d.records(t)
	for _, id := range []string{sdkID, restID} {
		if rec := recs[id]; rec == nil || rec.Status != 200 || rec.Provider != "gemini" || rec.ProxyKeyID != "app-gemini" || rec.Tenant != "app" || strings.Contains(rec.Path, "key") {
			t.Errorf("record %+v", rec)
		}
	}
	if rec := recs[wrongID]; rec == nil || rec.Status != 403 {
		t.Errorf("refused call's record %+v", rec)
	}
}

// Gemini's other model methods through the data plane, on both API
// versions: countTokens (free) and embedContent / batchEmbedContents
// (Google's answers carry no token counts) are recorded under gemini with
// the path's model and cost 0.
func TestGeminiOtherMethods(t *testing.T) {
	d, gemini := geminiDev(t)
	calls := []geminiCall{
		{"/v1beta/models/gemini-2.0-flash:countTokens", `{"contents":[{"parts":[{"text":"count these words"}]}]}`, "gemini-2.0-flash", 200},
		{"/v1/models/gemini-2.0-flash:countTokens", `{"contents":[{"parts":[{"text":"count these words"}]}]}`, "gemini-2.0-flash", 200},
		{"/v1beta/models/text-embedding-004:embedContent", `{"content":{"parts":[{"text":"embed me"}]}}`, "text-embedding-004", 200},
		{"/v1/models/text-embedding-004:batchEmbedContents", `{"requests":[{"model":"models/text-embedding-004","content":{"parts":[{"text":"a"}]}}]}`, "text-embedding-004", 200},
	}
	ids := doGemini(t, d, calls)
	if n := len(gemini.Received()); n != len(calls) {
		t.Errorf("Gemini's upstream got %d requests, want %d", n, len(calls))
	}
	checkGeminiRecords(t, d, calls, ids)
}

// An egress policy that allows only OpenAI refuses Gemini's calls, the
// stable /v1/models/{model}:{method} ones that look like OpenAI's paths
// included, and lets OpenAI's own /v1/models/{model} through.
func TestGeminiStablePathsUnderEgressPolicy(t *testing.T) {
	policy := filepath.Join(t.TempDir(), "egress.yaml")
	if err := os.WriteFile(policy, []byte("defaults:\n  allow: {providers: [openai]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d, gemini := geminiDev(t, "--egress-policy", policy)
	calls := []geminiCall{
		{"/v1/models/gemini-2.0-flash:generateContent", `{"contents":[{"parts":[{"text":"hi"}]}]}`, "gemini-2.0-flash", 403},
		{"/v1/models/gemini-2.0-flash:streamGenerateContent?alt=sse", `{"contents":[{"parts":[{"text":"hi"}]}]}`, "gemini-2.0-flash", 403},
		{"/v1beta/models/gemini-2.0-flash:countTokens", `{"contents":[{"parts":[{"text":"hi"}]}]}`, "gemini-2.0-flash", 403},
	}
	ids := doGemini(t, d, calls)
	if n := len(gemini.Received()); n != 0 {
		t.Errorf("Gemini's upstream got %d requests, want 0", n)
	}
	checkGeminiRecords(t, d, calls, ids)
}

// geminiCall is one plain HTTP call of a Gemini path and what it should
// get.
type geminiCall struct {
	path, body, model string
	status            int
}

// doGemini makes the calls with a Gemini key, each under its own request
// id, and checks their statuses.
func doGemini(t *testing.T, d *dev, calls []geminiCall) []string {
	t.Helper()
	ids := make([]string, len(calls))
	for i, c := range calls {
		ids[i] = uuid.NewString()
		req, err := http.NewRequest("POST", d.base(c.path), strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("x-goog-api-key", geminiKey)
		req.Header.Set("Helicone-Request-Id", ids[i])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("%s: status %d, want %d: %s", c.path, resp.StatusCode, c.status, body)
		}
	}
	if n := len(d.mock.Received()); n != 0 {
		t.Errorf("the OpenAI upstream got %d requests", n)
	}
	return ids
}

// checkGeminiRecords: each call is recorded under gemini with the path's
// model, its status, and no tokens or cost.
func checkGeminiRecords(t *testing.T, d *dev, calls []geminiCall, ids []string) {
	t.Helper()
	recs := d.records(t)
	for i, c := range calls {
		rec := recs[ids[i]]
		if rec == nil || rec.Provider != "gemini" || rec.Model != c.model || int(rec.Status) != c.status || rec.CostUSD != 0 || rec.CompletionTokens != 0 {
			t.Errorf("%s: record %+v", c.path, rec)
		}
	}
}

// Google's SDK's models.countTokens and models.embedContent (which calls
// batchEmbedContents) through the data plane: the SDK reads the mock's
// answers, and the calls are recorded under gemini with their model and no
// cost.
func TestSDKGeminiCountTokensAndEmbed(t *testing.T) {
	d, gemini := geminiDev(t)
	calls := []struct{ method, model, path, content string }{
		{"countTokens", "gemini-2.0-flash", "/v1beta/models/gemini-2.0-flash:countTokens", ""},
		{"embedContent", "text-embedding-004", "/v1beta/models/text-embedding-004:batchEmbedContents", "256"},
	}
	ids := make([]string, len(calls))
	for i, c := range calls {
		ids[i] = uuid.NewString()
		r := scenario{script: "gemini.mjs", baseURL: d.base(""), model: c.model,
			headers: map[string]string{"Helicone-Request-Id": ids[i]},
			env:     []string{"SDKTEST_GEMINI_METHOD=" + c.method, "SDKTEST_API_KEY=" + geminiKey}}.run(t)
		got := gemini.Received()
		last := got[len(got)-1]
		want := c.content
		if want == "" {
			want = fmt.Sprint(mockprovider.GeminiPromptTokens(last.Body))
		}
		if last.Path != c.path || r.Content != want {
			t.Errorf("%s: the upstream got %s; the SDK read %q, want %q", c.method, last.Path, r.Content, want)
		}
	}
	recs := d.records(t)
	for i, c := range calls {
		if rec := recs[ids[i]]; rec == nil || rec.Status != 200 || rec.Provider != "gemini" || rec.Model != c.model || rec.CostUSD != 0 {
			t.Errorf("%s: record %+v", c.method, rec)
		}
	}
}
