package app

import (
	"bufio"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/tidwall/gjson"

	"github.com/tollgate-dev/tollgate/mockprovider"
)

// Retries and fallback end to end: the local data plane retries as Envoy's
// router does and runs the upstream-level ext_proc stream once per attempt;
// the mock provider fails on command and records what each attempt sent.

// startRetryingDev is `tollgate dev` with a back-off short enough for tests.
func startRetryingDev(t *testing.T) *devInstance {
	return startDev(t, "--retry-base-interval", "5ms", "--retry-max-interval", "20ms")
}

// sentModels lists the model of every chat request the mock received with
// the given fail key (each test call uses its own key).
func sentModels(d *devInstance, marker string) (models []string, headers []http.Header) {
	for _, r := range d.mock.Received() {
		if r.Header.Get("x-test-call") == marker {
			models = append(models, gjson.GetBytes(r.Body, "model").String())
			headers = append(headers, r.Header)
		}
	}
	return models, headers
}

// noInternalHeaders fails for any Helicone-*, x-envoy-* or x-tollgate-*
// header an attempt carried to the provider. The link between a request's
// ext_proc streams travels as dynamic metadata, so none is exempt.
func noInternalHeaders(t *testing.T, marker string, headers []http.Header) {
	t.Helper()
	for n, h := range headers {
		for name := range h {
			if l := strings.ToLower(name); strings.HasPrefix(l, "helicone-") || strings.HasPrefix(l, "x-envoy-") || strings.HasPrefix(l, "x-tollgate-") {
				t.Errorf("%s: attempt %d: header %s reached the provider", marker, n+1, name)
			}
		}
	}
}

func chat(model string) string {
	return `{"model":"` + model + `","messages":[{"role":"user","content":"Say hi"}]}`
}

// Helicone-Retry-Num counts attempts, the first included, and only 429, 500
// and 522 are retried (Helicone's worker/src/lib/clients/ProviderClient.ts,
// callProviderWithRetry). The waits are Helicone's back-off in whole seconds
// (at least 1 s each): this test waits about three seconds.
func TestDevRetriesCountAttemptsExactly(t *testing.T) {
	d := startRetryingDev(t)
	ok := call{path: "/v1/chat/completions", body: chat("gpt-4o-mini"), headers: map[string]string{
		"helicone-request-id": uuid.NewString(), "x-test-call": "ok",
		"helicone-retry-enabled": "true", "helicone-retry-num": "3", "helicone-retry-factor": "1",
		mockprovider.HeaderFailFirst: "2", mockprovider.HeaderFailKey: "ok", mockprovider.HeaderStatus: "500",
	}}
	resp, _ := ok.do(t, d)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d, want 200 after two failed attempts", resp.StatusCode)
	}
	exhausted := call{path: "/v1/chat/completions", body: chat("gpt-4o-mini"), headers: map[string]string{
		"helicone-request-id": uuid.NewString(), "x-test-call": "exhausted",
		"helicone-retry-enabled": "true", "helicone-retry-num": "2",
		mockprovider.HeaderFailFirst: "100", mockprovider.HeaderFailKey: "exhausted", mockprovider.HeaderStatus: "429",
		mockprovider.HeaderRetryAfter: "0",
	}}
	resp, _ = exhausted.do(t, d)
	if resp.StatusCode != 429 {
		t.Fatalf("status %d, want the last attempt's 429", resp.StatusCode)
	}
	off := call{path: "/v1/chat/completions", body: chat("gpt-4o-mini"), headers: map[string]string{
		"helicone-request-id": uuid.NewString(), "x-test-call": "off",
		mockprovider.HeaderFailFirst: "100", mockprovider.HeaderFailKey: "off",
	}}
	if resp, _ = off.do(t, d); resp.StatusCode != 503 {
		t.Fatalf("status %d without retries, want 503", resp.StatusCode)
	}
	// Helicone does not retry a 503.
	unretried := call{path: "/v1/chat/completions", body: chat("gpt-4o-mini"), headers: map[string]string{
		"helicone-request-id": uuid.NewString(), "x-test-call": "unretried",
		"helicone-retry-enabled": "true", "helicone-retry-num": "3",
		mockprovider.HeaderFailFirst: "100", mockprovider.HeaderFailKey: "unretried",
	}}
	if resp, _ = unretried.do(t, d); resp.StatusCode != 503 {
		t.Fatalf("status %d, want the 503 unretried", resp.StatusCode)
	}

	for marker, want := range map[string]int{"ok": 3, "exhausted": 2, "off": 1, "unretried": 1} {
		_, headers := sentModels(d, marker)
		if len(headers) != want {
			t.Errorf("%s: the provider saw %d attempts, want %d", marker, len(headers), want)
		}
		noInternalHeaders(t, marker, headers)
	}
	recs := d.records(t)
	for c, want := range map[*call]int32{&ok: 3, &exhausted: 2, &off: 1, &unretried: 1} {
		r := recs[c.headers["helicone-request-id"]]
		if r == nil {
			t.Fatalf("%s: no record", c.headers["x-test-call"])
		}
		if r.Attempts != want {
			t.Errorf("%s: record attempts %d, want %d", c.headers["x-test-call"], r.Attempts, want)
		}
	}
	if r := recs[ok.headers["helicone-request-id"]]; r.RetryPolicy != "num=3 factor=1 min_timeout_ms=1000 max_timeout_ms=10000" || r.Status != 200 {
		t.Errorf("record retry_policy %q status %d", r.RetryPolicy, r.Status)
	}
}

func TestDevFallbackOrderIndexAndModels(t *testing.T) {
	d := startRetryingDev(t)
	fallback := `[{"model": "gpt-4o-mini"}, {"model": "gpt-3.5-turbo"}]`
	second := call{path: "/v1/chat/completions", body: chat("gpt-4o"), headers: map[string]string{
		"helicone-request-id": uuid.NewString(), "x-test-call": "second", "helicone-fallback": fallback,
		mockprovider.HeaderFailModels: "gpt-4o,gpt-4o-mini",
	}}
	resp, body := second.do(t, d)
	if resp.StatusCode != 200 || resp.Header.Get("Helicone-Fallback-Index") != "2" {
		t.Fatalf("status %d, Helicone-Fallback-Index %q: want 200 from entry 2\n%s", resp.StatusCode, resp.Header.Get("Helicone-Fallback-Index"), body)
	}
	if m := gjson.Get(body, "model").String(); !strings.HasPrefix(m, "gpt-3.5-turbo") {
		t.Errorf("answered by %q, want gpt-3.5-turbo", m)
	}
	allFail := call{path: "/v1/chat/completions", body: chat("gpt-4o"), headers: map[string]string{
		"helicone-request-id": uuid.NewString(), "x-test-call": "all-fail", "helicone-fallback": fallback,
		mockprovider.HeaderFailModels: "gpt-4o,gpt-4o-mini,gpt-3.5-turbo", mockprovider.HeaderStatus: "500",
	}}
	resp, body = allFail.do(t, d)
	if resp.StatusCode != 500 || !strings.Contains(body, "model gpt-3.5-turbo") || resp.Header.Get("Helicone-Fallback-Index") != "2" {
		t.Errorf("all failing: %d %q index %q, want the last entry's 500", resp.StatusCode, body, resp.Header.Get("Helicone-Fallback-Index"))
	}
	first := call{path: "/v1/chat/completions", body: chat("gpt-4o"), headers: map[string]string{
		"helicone-request-id": uuid.NewString(), "x-test-call": "first", "helicone-fallback": fallback,
	}}
	if resp, _ = first.do(t, d); resp.StatusCode != 200 || resp.Header.Get("Helicone-Fallback-Index") != "0" {
		t.Errorf("no failure: %d, index %q; want 200 from the request as sent (0)", resp.StatusCode, resp.Header.Get("Helicone-Fallback-Index"))
	}

	for marker, want := range map[string][]string{
		"second":   {"gpt-4o", "gpt-4o-mini", "gpt-3.5-turbo"},
		"all-fail": {"gpt-4o", "gpt-4o-mini", "gpt-3.5-turbo"},
		"first":    {"gpt-4o"},
	} {
		got, headers := sentModels(d, marker)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s: models sent %v, want %v", marker, got, want)
		}
		noInternalHeaders(t, marker, headers)
	}
	recs := d.records(t)
	for c, want := range map[*call][2]int32{&second: {2, 3}, &allFail: {2, 3}, &first: {0, 1}} {
		r := recs[c.headers["helicone-request-id"]]
		if r == nil || r.FallbackIndex != want[0] || r.Attempts != want[1] || r.Model != "gpt-4o" {
			t.Errorf("%s: record %+v, want fallback_index %d, attempts %d, model gpt-4o", c.headers["x-test-call"], r, want[0], want[1])
		}
	}
	if r := recs[second.headers["helicone-request-id"]]; !strings.HasPrefix(r.ResponseModel, "gpt-3.5-turbo") || r.CostUSD <= 0 {
		t.Errorf("record priced by %q at %v, want the model that answered", r.ResponseModel, r.CostUSD)
	}
}

func TestDevGatewayFallbacksSwitchKeysOnCodes(t *testing.T) {
	d := startRetryingDev(t)
	fallbacks := `[{"target-url": "https://api.openai.com", "headers": {"authorization": "Bearer sk-primary"}, "onCodes": [503]},` +
		` {"target-url": "https://api.openai.com", "headers": {"authorization": "Bearer sk-backup"}, "onCodes": [], "bodyKeyOverride": {"model": "gpt-4o-mini", "temperature": 0}}]`
	moves := call{path: "/v1/chat/completions", body: chat("gpt-4o"), headers: map[string]string{
		"x-test-call": "moves", "helicone-fallbacks": fallbacks, "authorization": "Bearer sk-app",
		mockprovider.HeaderFailModels: "gpt-4o",
	}}
	resp, _ := moves.do(t, d)
	if resp.StatusCode != 200 || resp.Header.Get("Helicone-Fallback-Index") != "1" {
		t.Fatalf("status %d index %q, want 200 from entry 1", resp.StatusCode, resp.Header.Get("Helicone-Fallback-Index"))
	}
	models, headers := sentModels(d, "moves")
	noInternalHeaders(t, "moves", headers)
	if strings.Join(models, ",") != "gpt-4o,gpt-4o-mini" || len(headers) != 2 ||
		headers[0].Get("Authorization") != "Bearer sk-primary" || headers[1].Get("Authorization") != "Bearer sk-backup" {
		t.Errorf("attempts sent models %v with keys %v", models, headers)
	}
	// A status outside entry 0's onCodes is the answer: no second attempt.
	stays := call{path: "/v1/chat/completions", body: chat("gpt-4o"), headers: map[string]string{
		"x-test-call": "stays", "helicone-fallbacks": fallbacks,
		mockprovider.HeaderFailModels: "gpt-4o", mockprovider.HeaderStatus: "429", mockprovider.HeaderRetryAfter: "0",
	}}
	if resp, _ = stays.do(t, d); resp.StatusCode != 429 || resp.Header.Get("Helicone-Fallback-Index") != "0" {
		t.Errorf("status %d index %q, want entry 0's 429", resp.StatusCode, resp.Header.Get("Helicone-Fallback-Index"))
	}
	if models, _ := sentModels(d, "stays"); len(models) != 1 {
		t.Errorf("attempts %v, want one", models)
	}
	// An entry of the other format is translated only with the gateway's
	// key for that provider; this gateway has none: a clear 400 naming the
	// entry and the setting.
	bad := call{path: "/v1/chat/completions", body: chat("gpt-4o"), headers: map[string]string{
		"x-test-call": "bad", "helicone-fallbacks": `[{"target-url": "https://api.openai.com"}, {"target-url": "https://api.anthropic.com"}]`,
	}}
	resp, body := bad.do(t, d)
	if resp.StatusCode != 400 || !strings.Contains(body, "Helicone-Fallbacks entry 1 target-url https://api.anthropic.com") || !strings.Contains(body, "--provider-key anthropic=") {
		t.Errorf("two formats: %d %s", resp.StatusCode, body)
	}
}

func TestDevFallbackStreams(t *testing.T) {
	d := startRetryingDev(t)
	c := call{path: "/v1/chat/completions", body: `{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"Say hi"}]}`,
		headers: map[string]string{"helicone-request-id": uuid.NewString(), "x-test-call": "stream",
			"helicone-fallback": `[{"model": "gpt-4o-mini"}]`, mockprovider.HeaderFailModels: "gpt-4o"}}
	resp, body := c.do(t, d)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") || resp.Header.Get("Helicone-Fallback-Index") != "1" {
		t.Fatalf("status %d %q index %q", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Helicone-Fallback-Index"))
	}
	events := 0
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data: {") {
			events++
			if m := gjson.Get(strings.TrimPrefix(sc.Text(), "data: "), "model").String(); !strings.HasPrefix(m, "gpt-4o-mini") {
				t.Errorf("event from %q", m)
			}
		}
	}
	if events == 0 {
		t.Fatalf("no SSE events in %q", body)
	}
	r := d.records(t)[c.headers["helicone-request-id"]]
	if r == nil || r.FallbackIndex != 1 || r.CompletionTokens != mockprovider.CompletionTokens || !r.Stream {
		t.Errorf("record %+v", r)
	}
}
