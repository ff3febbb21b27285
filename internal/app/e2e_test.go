package app

import (
	"bufio"
	"context"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/tidwall/gjson"

	"github.com/tollgate-dev/tollgate/mockprovider"
	"github.com/tollgate-dev/tollgate/provider"
	"github.com/tollgate-dev/tollgate/record"
)

// These tests run `tollgate dev` in-process: the local data plane drives the
// processor over real gRPC, in front of the mock provider, exactly the path
// a call takes in `make run`.

type call struct {
	name, path, body string
	headers          map[string]string
}

func (c call) do(t *testing.T, d *devInstance) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, d.url(c.path), strings.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("content-type", "application/json")
	for k, v := range c.headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

// sameCost compares a cost with one worked out by hand, to nine
// significant digits (the float arithmetic may differ in the last bits).
func sameCost(got, want float64) bool { return math.Abs(got-want) <= 1e-9*math.Abs(want) }

// wantUsage is what the mock reports for a body, normalized as Tollgate
// records it.
func wantUsage(body string) provider.Usage {
	return provider.Usage{
		PromptTokens:     mockprovider.PromptTokens([]byte(body)),
		CompletionTokens: mockprovider.CompletionTokens,
	}
}

func TestDevProxiesAndLogsOpenAIAndAnthropic(t *testing.T) {
	d := startDev(t)
	// cost is worked out by hand: the mock reports a token per prompt word
	// and 12 completion tokens; prices are provider/prices.yaml's, in USD
	// per million tokens (input, output).
	calls := []struct {
		call
		provider, model string
		stream          bool
		cost            float64
	}{
		{call{name: "openai chat", path: "/v1/chat/completions",
			body: `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"tell me a story about tollgates"}]}`},
			"openai", "gpt-4o-mini", false,
			0.0000081}, // (6 × 0.15 + 12 × 0.60) / 1e6 = (0.9 + 7.2) / 1e6
		{call{name: "openai chat stream", path: "/v1/chat/completions",
			body: `{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"stream this please"}]}`},
			"openai", "gpt-4o", true,
			0.0001275}, // (3 × 2.50 + 12 × 10.00) / 1e6 = (7.5 + 120) / 1e6
		{call{name: "anthropic messages", path: "/v1/messages",
			body: `{"model":"claude-sonnet-4-5","max_tokens":100,"messages":[{"role":"user","content":"hello from the test"}]}`},
			"anthropic", "claude-sonnet-4-5", false,
			0.000192}, // (4 × 3.00 + 12 × 15.00) / 1e6 = (12 + 180) / 1e6
		{call{name: "anthropic stream", path: "/v1/messages",
			body: `{"model":"claude-3-5-haiku","stream":true,"max_tokens":100,"messages":[{"role":"user","content":"a streamed hello"}]}`},
			"anthropic", "claude-3-5-haiku", true,
			0.0000504}, // (3 × 0.80 + 12 × 4.00) / 1e6 = (2.4 + 48) / 1e6
	}
	ids := map[string]int{}
	for i, c := range calls {
		id := uuid.NewString()
		ids[id] = i
		c.headers = map[string]string{
			"Helicone-Request-Id": id, "Helicone-User-Id": "alice", "Helicone-Property-Team": "search",
			"Helicone-Auth": "Bearer sk-helicone-test", "Authorization": "Bearer sk-provider-test",
		}
		resp, body := c.do(t, d)
		if resp.StatusCode != 200 || resp.Header.Get("Helicone-Id") != id {
			t.Fatalf("%s: status %d, Helicone-Id %q, body %s", c.name, resp.StatusCode, resp.Header.Get("Helicone-Id"), body)
		}
		if c.stream != strings.HasPrefix(resp.Header.Get("content-type"), "text/event-stream") {
			t.Fatalf("%s: content-type %q", c.name, resp.Header.Get("content-type"))
		}
		if !strings.Contains(body, strings.Fields(mockprovider.CompletionText)[0]) {
			t.Fatalf("%s: body does not carry the reply: %s", c.name, body)
		}
		got := d.mock.Received()
		last := got[len(got)-1]
		for k := range last.Header {
			if strings.HasPrefix(strings.ToLower(k), "helicone-") {
				t.Fatalf("%s: %s reached the provider", c.name, k)
			}
		}
		if last.Header.Get("Authorization") != "Bearer sk-provider-test" {
			t.Fatalf("%s: provider credential did not pass through", c.name)
		}
		if c.stream && c.provider == "openai" && !gjson.GetBytes(last.Body, "stream_options.include_usage").Bool() {
			t.Fatalf("%s: include_usage not added: %s", c.name, last.Body)
		}
	}
	metrics := get(t, d.api("/metrics"))
	if !strings.Contains(metrics, `tollgate_calls_total{provider="openai",status_class="2xx"} 2`) {
		t.Fatalf("metrics:\n%s", metrics)
	}

	records := d.records(t)
	for id, i := range ids {
		c := calls[i]
		r := records[id]
		if r == nil {
			t.Fatalf("%s: no record", c.name)
		}
		usage := wantUsage(c.body)
		if r.Status != 200 || r.Provider != c.provider || r.Model != c.model || r.Stream != c.stream ||
			r.UserID != "alice" || len(r.Properties) != 1 || r.Properties[0] != (record.Property{Key: "team", Value: "search"}) {
			t.Errorf("%s: record %+v", c.name, r)
		}
		if r.PromptTokens != usage.PromptTokens || r.CompletionTokens != usage.CompletionTokens {
			t.Errorf("%s: tokens %d/%d, mock reported %d/%d", c.name, r.PromptTokens, r.CompletionTokens, usage.PromptTokens, usage.CompletionTokens)
		}
		if !sameCost(r.CostUSD, c.cost) {
			t.Errorf("%s: cost %v, want %v", c.name, r.CostUSD, c.cost)
		}
		if r.RequestBody != c.body && !c.stream {
			t.Errorf("%s: request body %q", c.name, r.RequestBody)
		}
		if r.ResponseBody == "" || r.LatencyMs < 0 || r.TTFTMs < 0 || r.TTFTMs > r.LatencyMs {
			t.Errorf("%s: body/latency %+v", c.name, r)
		}
		for _, secret := range []string{"sk-helicone-test", "sk-provider-test"} {
			if strings.Contains(r.RequestBody+r.ResponseBody+r.Tenant+r.Error, secret) {
				t.Errorf("%s: record leaks %s", c.name, secret)
			}
		}
	}
}

func TestDevStreamsChunksBeforeTheEnd(t *testing.T) {
	d := startDev(t)
	req, _ := http.NewRequest(http.MethodPost, d.url("/v1/chat/completions"),
		strings.NewReader(`{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	// The mock waits 100 ms between events. If the data plane or the
	// processor buffered the stream, the first event would arrive with the
	// last; streamed, most of the stream's duration comes after it.
	req.Header.Set("x-mock-chunk-delay-ms", "100")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "data: ") {
		t.Fatalf("first line %q, %v", line, err)
	}
	firstAt := time.Now()
	io.Copy(io.Discard, resp.Body)
	after := time.Since(firstAt)
	events := len(strings.Fields(mockprovider.CompletionText))
	if after < time.Duration(events/2)*100*time.Millisecond {
		t.Fatalf("the stream ended %v after its first event; with %d events 100 ms apart it was buffered", after, events)
	}
}

func TestDevClientHangUpIsLoggedAsCancelled(t *testing.T) {
	d := startDev(t)
	id := uuid.NewString()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, d.url("/v1/chat/completions"),
		strings.NewReader(`{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Helicone-Request-Id", id)
	req.Header.Set("x-mock-chunk-delay-ms", "200")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	cancel() // hang up after the first event
	resp.Body.Close()

	r := waitForRecord(t, d, id)
	if r.Status != record.StatusClientCancelled || r.Model != "gpt-4o-mini" || !r.Stream {
		t.Fatalf("record %+v", r)
	}
}

func TestDevProviderClosingMidStream(t *testing.T) {
	d := startDev(t)
	id := uuid.NewString()
	c := call{name: "disconnect", path: "/v1/chat/completions",
		body:    `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}`,
		headers: map[string]string{"Helicone-Request-Id": id, "x-mock-disconnect-after": "2"}}
	req, _ := http.NewRequest(http.MethodPost, d.url(c.path), strings.NewReader(c.body))
	for k, v := range c.headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		io.Copy(io.Discard, resp.Body) // truncated: an error or a short body, never a hang
		resp.Body.Close()
	}
	r := waitForRecord(t, d, id)
	if r.Status == 200 && r.Error == "" {
		t.Fatalf("a cut stream was logged as complete: %+v", r)
	}
}

func TestDevBadInputGetsClearErrors(t *testing.T) {
	d := startDev(t, "--max-request-body", "2048")
	tests := []struct {
		name, path, contentType, body string
		status                        int
		mention                       string
	}{
		{"non-JSON body", "/v1/chat/completions", "application/json", "{not json", 400, "JSON"},
		{"wrong content type", "/v1/messages", "text/plain", "hello", 400, "JSON"},
		{"body over the limit", "/v1/chat/completions", "application/json", `{"model":"gpt-4o","x":"` + strings.Repeat("a", 4096) + `"}`, 413, "2048"},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(http.MethodPost, d.url(tt.path), strings.NewReader(tt.body))
		req.Header.Set("content-type", tt.contentType)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status || !strings.Contains(string(body), tt.mention) {
			t.Errorf("%s: %d %s; want %d mentioning %q", tt.name, resp.StatusCode, body, tt.status, tt.mention)
		}
	}
	// Unknown paths pass through to the provider and are logged.
	id := uuid.NewString()
	c := call{path: "/v1/audio/speech", body: `{"input":"hi"}`, headers: map[string]string{"Helicone-Request-Id": id}}
	resp, _ := c.do(t, d)
	if resp.StatusCode != 404 { // the mock does not implement it: the provider's answer comes back
		t.Fatalf("unknown path: %d", resp.StatusCode)
	}
	if r := d.records(t)[id]; r == nil || r.Status != 404 || r.Path != "/v1/audio/speech" {
		t.Fatalf("unknown path record %+v", r)
	}
}

func TestDevHealthAndGracefulStop(t *testing.T) {
	d := startDev(t)
	if got := get(t, d.api("/healthz")); got != "ok\n" {
		t.Fatalf("healthz %q", got)
	}
	if got := get(t, d.api("/readyz")); got != "ready\n" {
		t.Fatalf("readyz %q", got)
	}
	if err := d.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if !strings.Contains(d.stderr.String(), "stopped") {
		t.Fatalf("no orderly stop:\n%s", d.stderr)
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// waitForRecord stops the instance and returns the record of id; the record
// of a cut stream is written when the processor sees the stream end, which
// may be just after the client returns.
func waitForRecord(t *testing.T, d *devInstance, id string) *record.Record {
	t.Helper()
	r := d.records(t)[id]
	if r == nil {
		t.Fatalf("no record for %s", id)
	}
	return r
}
