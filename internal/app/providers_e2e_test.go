package app

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/tollgate-dev/tollgate/mockprovider"
)

// Gemini's native API through `tollgate dev`'s data plane, called as
// Google's SDKs call it: the model in the path, the stream in the method
// (streamGenerateContent?alt=sse), the key in x-goog-api-key or in the
// key= query parameter; and its OpenAI-compatible endpoint. The record
// names the provider gemini and prices usageMetadata (cached content at
// its read price, thoughts as output); neither key reaches the log.
func TestDevGemini(t *testing.T) {
	gemini := mockprovider.New(mockprovider.Options{})
	geminiSrv := httptest.NewServer(gemini)
	t.Cleanup(geminiSrv.Close)
	const headerKey, queryKey = "AIzaHeaderKey-7c1e", "AIzaQueryKey-93b0"
	d := startDev(t, "--upstream-gemini", geminiSrv.URL, "--log-level", "debug")

	const body = `{"contents":[{"role":"user","parts":[{"text":"Say hi to me"}]}]}`
	steer := map[string]string{mockprovider.HeaderCachedTokens: "2", mockprovider.HeaderReasoningTokens: "5", mockprovider.HeaderCompletionTokens: "20"}
	calls := []struct {
		path    string
		headers map[string]string
		stream  bool
	}{
		{"/v1beta/models/gemini-2.5-flash:generateContent", map[string]string{"x-goog-api-key": headerKey}, false},
		{"/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse&key=" + queryKey, nil, true},
	}
	ids := make([]string, len(calls))
	for i, c := range calls {
		ids[i] = uuid.NewString()
		h := map[string]string{"helicone-request-id": ids[i]}
		for k, v := range steer {
			h[k] = v
		}
		for k, v := range c.headers {
			h[k] = v
		}
		resp, out := call{path: c.path, body: body, headers: h}.do(t, d)
		if resp.StatusCode != 200 || !strings.Contains(out, "Hello") {
			t.Fatalf("%s: status %d: %s", c.path, resp.StatusCode, out)
		}
		if c.stream != strings.HasPrefix(resp.Header.Get("content-type"), "text/event-stream") {
			t.Fatalf("%s: content-type %s", c.path, resp.Header.Get("content-type"))
		}
	}
	compatID := uuid.NewString()
	compatBody := `{"model":"gemini-2.0-flash","messages":[{"role":"user","content":"Say hi"}]}`
	if resp, out := (call{path: "/v1beta/openai/chat/completions", body: compatBody, headers: map[string]string{
		"helicone-request-id": compatID, "authorization": "Bearer " + headerKey,
	}}).do(t, d); resp.StatusCode != 200 {
		t.Fatalf("openai-compatible: status %d: %s", resp.StatusCode, out)
	}

	if n := len(d.mock.Received()); n != 0 {
		t.Fatalf("the OpenAI upstream got %d requests, want 0", n)
	}
	got := gemini.Received()
	if len(got) != 3 || got[0].Header.Get("x-goog-api-key") != headerKey ||
		got[1].Path != "/v1beta/models/gemini-2.5-flash:streamGenerateContent" || got[2].Path != "/v1beta/openai/chat/completions" {
		t.Fatalf("the Gemini upstream got %+v", got)
	}
	// The stream's body went up as sent: no stream_options for Gemini.
	if string(got[1].Body) != body {
		t.Fatalf("stream body changed: %s", got[1].Body)
	}

	// 4 prompt words, 2 of them cached; 20 output tokens of which 5
	// thoughts. gemini-2.5-flash: input 0.30, cached 0.03, output 2.50.
	wantCost := (2*0.30 + 2*0.03 + 20*2.50) / 1e6
	recs := d.records(t)
	for i, id := range ids {
		r := recs[id]
		if r == nil {
			t.Fatalf("no record for %s", id)
		}
		if r.Status != 200 || r.Provider != "gemini" || r.Model != "gemini-2.5-flash" || r.ResponseModel != "gemini-2.5-flash" ||
			r.Stream != calls[i].stream || r.PromptTokens != 4 || r.CachedTokens != 2 || r.CompletionTokens != 20 ||
			r.ReasoningTokens != 5 || !sameCost(r.CostUSD, wantCost) {
			t.Errorf("record %+v, want gemini, gemini-2.5-flash, stream %v, 4/2 cached/20/5 thoughts, cost %v", *r, calls[i].stream, wantCost)
		}
		if strings.Contains(r.Path, "key") {
			t.Errorf("path %q logged with its query", r.Path)
		}
	}
	prompt := mockprovider.PromptTokens([]byte(compatBody))
	if r := recs[compatID]; r == nil || r.Provider != "gemini" || r.Model != "gemini-2.0-flash" || r.PromptTokens != prompt ||
		!sameCost(r.CostUSD, (float64(prompt)*0.10+float64(mockprovider.CompletionTokens)*0.40)/1e6) {
		t.Errorf("openai-compatible record %+v", r)
	}
	raw, err := os.ReadFile(filepath.Join(d.dataDir, "requests.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{headerKey, queryKey} {
		if strings.Contains(string(raw), key) || strings.Contains(d.stderr.String(), key) {
			t.Errorf("a Gemini key reached the log or the process output")
		}
	}
}

// OpenAI-compatible providers through `tollgate dev`: Together built in
// (its origin pointed at a mock by an entry of its name) and one given by
// --openai-compatible and priced by a section of --prices-file. The client
// calls /<name>/<prefix>/…; the provider gets its own path; the stream is
// asked for its usage as OpenAI's are.
func TestDevOpenAICompatible(t *testing.T) {
	up := mockprovider.New(mockprovider.Options{})
	upSrv := httptest.NewServer(up)
	t.Cleanup(upSrv.Close)
	prices := filepath.Join(t.TempDir(), "prices.yaml")
	if err := os.WriteFile(prices, []byte("vllm:\n  my-model: {input: 1.00, output: 2.00}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Named by "localhost": the entries join the process-wide provider
	// list (provider.Register), and no other test's 127.0.0.1 target
	// origin may be read as together's.
	origin := strings.Replace(upSrv.URL, "127.0.0.1", "localhost", 1)
	d := startDev(t, "--openai-compatible", "together="+origin+"/v1,vllm="+origin+"/v1", "--prices-file", prices)

	const model = "meta-llama/Llama-3.3-70B-Instruct-Turbo"
	bodies := []string{
		`{"model":"` + model + `","messages":[{"role":"user","content":"Say hi"}]}`,
		`{"model":"` + model + `","stream":true,"messages":[{"role":"user","content":"Say hi"}]}`,
		`{"model":"my-model","messages":[{"role":"user","content":"Say hi there"}]}`,
	}
	paths := []string{"/together/v1/chat/completions", "/together/v1/chat/completions", "/vllm/v1/chat/completions"}
	ids := make([]string, len(bodies))
	for i, b := range bodies {
		ids[i] = uuid.NewString()
		resp, out := call{path: paths[i], body: b, headers: map[string]string{
			"helicone-request-id": ids[i], "authorization": "Bearer tgp-secret-3a9d",
		}}.do(t, d)
		if resp.StatusCode != 200 || !strings.Contains(out, "Hello") {
			t.Fatalf("%s: status %d: %s", paths[i], resp.StatusCode, out)
		}
		if i == 1 && strings.Contains(out, `"usage":{`) {
			t.Fatalf("the usage chunk Tollgate asked for reached the client: %s", out)
		}
	}
	got := up.Received()
	if len(got) != 3 || len(d.mock.Received()) != 0 {
		t.Fatalf("the provider got %d requests, OpenAI %d", len(got), len(d.mock.Received()))
	}
	for _, r := range got {
		if r.Path != "/v1/chat/completions" || r.Header.Get("authorization") != "Bearer tgp-secret-3a9d" {
			t.Fatalf("the provider got %s %v", r.Path, r.Header)
		}
	}
	if !strings.Contains(string(got[1].Body), "include_usage") {
		t.Fatalf("the stream was not asked for its usage: %s", got[1].Body)
	}
	recs := d.records(t)
	for i, id := range ids {
		r := recs[id]
		if r == nil {
			t.Fatalf("no record for %s", id)
		}
		u := wantUsage(bodies[i])
		in, out, prov, m := 0.88, 0.88, "together", model
		if i == 2 {
			in, out, prov, m = 1.00, 2.00, "vllm", "my-model"
		}
		want := (float64(u.PromptTokens)*in + float64(u.CompletionTokens)*out) / 1e6
		if r.Status != 200 || r.Provider != prov || r.Model != m || r.PromptTokens != u.PromptTokens ||
			r.CompletionTokens != u.CompletionTokens || !sameCost(r.CostUSD, want) || r.Stream != (i == 1) {
			t.Errorf("record %+v, want %s %s cost %v", *r, prov, m, want)
		}
	}
}

// --openai-compatible: name=origin[/prefix] entries; a malformed entry,
// a taken name or one listed twice is refused with the setting's name.
func TestOpenAICompatibleSetting(t *testing.T) {
	cfg, _, err := loadConfig("serve", []string{"--openai-compatible", "mistral=https://api.mistral.ai/v1, together=http://127.0.0.1:9000/v1"}, env(nil), false)
	if err != nil {
		t.Fatal(err)
	}
	list, err := compatibleProviders(cfg.OpenAICompatible)
	if err != nil || len(list) != 4 {
		t.Fatalf("list %+v, %v", list, err)
	}
	for _, bad := range []string{"mistral", "openai=https://api.openai.com", "m=https://a,m=https://b", "m=ftp://x"} {
		_, _, err := loadConfig("serve", []string{"--openai-compatible", bad}, env(nil), false)
		if err == nil || !strings.Contains(err.Error(), "openai-compatible") {
			t.Errorf("%s: error %v, want one naming openai-compatible", bad, err)
		}
	}
}

// Retries on a provider routed by path take its *_attempts route, as in
// envoy/: the attempts reach the same provider, with its path, and the
// record counts them under the provider.
func TestDevProviderRetries(t *testing.T) {
	gemini := mockprovider.New(mockprovider.Options{})
	geminiSrv := httptest.NewServer(gemini)
	t.Cleanup(geminiSrv.Close)
	d := startDev(t, "--upstream-gemini", geminiSrv.URL, "--retry-base-interval", "5ms", "--retry-max-interval", "20ms")
	id := uuid.NewString()
	resp, out := call{path: "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse", body: `{"contents":[{"parts":[{"text":"hi"}]}]}`,
		headers: map[string]string{
			"helicone-request-id": id, "x-goog-api-key": "k",
			"helicone-retry-enabled": "true", "helicone-retry-num": "3", "helicone-retry-factor": "1",
			mockprovider.HeaderFailFirst: "1", mockprovider.HeaderFailKey: "gemini-retry", mockprovider.HeaderStatus: "500",
		}}.do(t, d)
	if resp.StatusCode != 200 || !strings.Contains(out, "usageMetadata") {
		t.Fatalf("status %d: %s", resp.StatusCode, out)
	}
	got := gemini.Received()
	if len(got) != 2 || len(d.mock.Received()) != 0 {
		t.Fatalf("Gemini got %d attempts, OpenAI %d; want 2 and 0", len(got), len(d.mock.Received()))
	}
	for _, r := range got {
		if r.Path != "/v1beta/models/gemini-2.5-pro:streamGenerateContent" {
			t.Fatalf("attempt to %s", r.Path)
		}
	}
	noInternalHeaders(t, "gemini-retry", []http.Header{got[0].Header, got[1].Header})
	r := d.records(t)[id]
	if r == nil || r.Provider != "gemini" || r.Attempts != 2 || r.Status != 200 || r.Model != "gemini-2.5-pro" ||
		r.CompletionTokens != mockprovider.CompletionTokens || r.CostUSD <= 0 {
		t.Fatalf("record %+v", r)
	}
}
