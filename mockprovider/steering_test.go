package mockprovider_test

import (
	"bytes"
	"context"
	"io"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/tollgate-dev/tollgate/mockprovider"
)

func TestLatency(t *testing.T) {
	_, url := start(t, mockprovider.Options{Latency: 40 * time.Millisecond})
	begin := time.Now()
	resp, body := do(t, "POST", url+"/v1/chat/completions", chatBody)
	wantStatus(t, resp, body, 200)
	if d := time.Since(begin); d < 40*time.Millisecond {
		t.Errorf("Options.Latency: answered after %v", d)
	}
	if resp.Header.Get("openai-processing-ms") != "40" {
		t.Errorf("openai-processing-ms = %q", resp.Header.Get("openai-processing-ms"))
	}

	begin = time.Now()
	do(t, "POST", url+"/v1/chat/completions", chatBody, mockprovider.HeaderLatency, "0")
	if d := time.Since(begin); d >= 40*time.Millisecond {
		t.Errorf("x-mock-latency-ms 0 did not override Options.Latency: %v", d)
	}
}

func TestLatencyStopsWhenClientLeaves(t *testing.T) {
	m := mockprovider.New(mockprovider.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := httptest.NewRequestWithContext(ctx, "POST", "/v1/chat/completions", strings.NewReader(chatBody))
	r.Header.Set(mockprovider.HeaderLatency, "10000")
	begin := time.Now()
	m.ServeHTTP(httptest.NewRecorder(), r)
	if d := time.Since(begin); d > time.Second {
		t.Fatalf("handler waited %v for a client that had left", d)
	}
}

func TestChunkDelay(t *testing.T) {
	_, url := start(t, mockprovider.Options{})
	body := `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`
	begin := time.Now()
	resp, raw := do(t, "POST", url+"/v1/chat/completions", body, mockprovider.HeaderChunkDelay, "5")
	wantStatus(t, resp, raw, 200)
	gaps := len(parseSSE(t, raw)) - 1
	if d, min := time.Since(begin), time.Duration(gaps)*5*time.Millisecond; d < min {
		t.Errorf("%d gaps of 5ms took %v", gaps, d)
	}
}

func TestStatusInjection(t *testing.T) {
	_, url := start(t, mockprovider.Options{})
	tests := []struct {
		path, body, status string
		wantType, typePath string
		retryAfter         string
	}{
		{"/v1/chat/completions", chatBody, "429", "requests", "error.type", "1"},
		{"/v1/chat/completions", chatBody, "500", "server_error", "error.type", ""},
		{"/v1/messages", messagesBody, "429", "rate_limit_error", "error.type", "1"},
		{"/v1/messages", messagesBody, "529", "overloaded_error", "error.type", ""},
		{"/v1/messages", messagesBody, "401", "authentication_error", "error.type", ""},
	}
	for _, tt := range tests {
		resp, body := do(t, "POST", url+tt.path, tt.body, mockprovider.HeaderStatus, tt.status)
		if got := strconv.Itoa(resp.StatusCode); got != tt.status {
			t.Errorf("%s %s: status %s", tt.path, tt.status, got)
		}
		if got := gjson.GetBytes(body, tt.typePath).String(); got != tt.wantType {
			t.Errorf("%s %s: %s = %q in %s", tt.path, tt.status, tt.typePath, got, body)
		}
		if got := resp.Header.Get("retry-after"); got != tt.retryAfter {
			t.Errorf("%s %s: retry-after = %q, want %q", tt.path, tt.status, got, tt.retryAfter)
		}
	}
	resp, _ := do(t, "POST", url+"/v1/chat/completions", chatBody,
		mockprovider.HeaderStatus, "429", mockprovider.HeaderRetryAfter, "0")
	if resp.Header.Get("retry-after") != "0" {
		t.Errorf("x-mock-retry-after ignored: %q", resp.Header.Get("retry-after"))
	}
	// Streaming requests fail before the stream starts, with a JSON body.
	resp, body := do(t, "POST", url+"/v1/chat/completions", `{"model":"m","stream":true}`, mockprovider.HeaderStatus, "503")
	wantStatus(t, resp, body, 503)
	if resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("streaming error content-type = %q", resp.Header.Get("Content-Type"))
	}
}

func TestFailFirst(t *testing.T) {
	m, url := start(t, mockprovider.Options{})
	statuses := func(key string, n int, extra ...string) []int {
		var out []int
		for range n {
			h := append([]string{mockprovider.HeaderFailFirst, "2", mockprovider.HeaderFailKey, key}, extra...)
			resp, _ := do(t, "POST", url+"/v1/chat/completions", chatBody, h...)
			out = append(out, resp.StatusCode)
		}
		return out
	}
	want := func(got []int, want ...int) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("statuses %v, want %v", got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("statuses %v, want %v", got, want)
			}
		}
	}
	want(statuses("a", 4), 503, 503, 200, 200)
	want(statuses("b", 3, mockprovider.HeaderStatus, "429"), 429, 429, 200)
	want(statuses("a", 1), 200) // key a already spent its failures
	m.Reset()
	want(statuses("a", 3), 503, 503, 200)
}

func TestDisconnectAfter(t *testing.T) {
	_, url := start(t, mockprovider.Options{})
	body := `{"model":"m","stream":true,"max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`
	for _, path := range []string{"/v1/chat/completions", "/v1/messages", "/v1/responses"} {
		resp, err := send("POST", url+path, body, mockprovider.HeaderDisconnectAfter, "3")
		if err != nil {
			t.Fatalf("%s: headers must arrive before the reset: %v", path, err)
		}
		events, err := readSSE(resp.Body)
		resp.Body.Close()
		if err == nil {
			t.Errorf("%s: stream ended cleanly, want a broken connection", path)
		}
		if len(events) != 3 {
			t.Errorf("%s: got %d events before the reset, want 3", path, len(events))
		}
	}

	// Non-streaming: the connection drops with no answer at all.
	resp, err := send("POST", url+"/v1/chat/completions", chatBody, mockprovider.HeaderDisconnectAfter, "0")
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("non-streaming disconnect answered %d %s", resp.StatusCode, b)
	}

	// A stream shorter than N finishes normally.
	resp, raw := do(t, "POST", url+"/v1/chat/completions", body, mockprovider.HeaderDisconnectAfter, "1000")
	wantStatus(t, resp, raw, 200)
	if events := parseSSE(t, raw); events[len(events)-1].data != "[DONE]" {
		t.Errorf("long disconnect-after cut the stream")
	}
}

func TestTokenHeaders(t *testing.T) {
	_, url := start(t, mockprovider.Options{})
	resp, body := do(t, "POST", url+"/v1/chat/completions", chatBody,
		mockprovider.HeaderCompletionTokens, "100",
		mockprovider.HeaderCachedTokens, "3",
		mockprovider.HeaderReasoningTokens, "64")
	wantStatus(t, resp, body, 200)
	prompt := mockprovider.PromptTokens([]byte(chatBody))
	checkJSON(t, body, map[string]any{
		"usage.prompt_tokens":                              prompt,
		"usage.completion_tokens":                          int64(100),
		"usage.total_tokens":                               prompt + 100,
		"usage.prompt_tokens_details.cached_tokens":        int64(3),
		"usage.completion_tokens_details.reasoning_tokens": int64(64),
		"choices.0.message.content":                        mockprovider.CompletionText,
	})
}

func TestBadSteeringHeader(t *testing.T) {
	_, url := start(t, mockprovider.Options{})
	for _, h := range [][2]string{
		{mockprovider.HeaderStatus, "200"},
		{mockprovider.HeaderStatus, "abc"},
		{mockprovider.HeaderLatency, "-1"},
		{mockprovider.HeaderCachedTokens, "1.5"},
	} {
		resp, body := do(t, "POST", url+"/v1/chat/completions", chatBody, h[0], h[1])
		wantStatus(t, resp, body, 400)
		if !strings.Contains(gjson.GetBytes(body, "error.message").String(), h[0]) {
			t.Errorf("%s: %s: error does not name the header: %s", h[0], h[1], body)
		}
	}
}

func TestFailModels(t *testing.T) {
	_, url := start(t, mockprovider.Options{})
	body := func(model string) string {
		return `{"model":"` + model + `","messages":[{"role":"user","content":"hi"}]}`
	}
	resp, b := do(t, "POST", url+"/v1/chat/completions", body("gpt-4o"), mockprovider.HeaderFailModels, "gpt-4o, gpt-4o-mini")
	if resp.StatusCode != 503 || !strings.Contains(string(b), "model gpt-4o requested") {
		t.Errorf("listed model: %d %s, want a 503 naming the model", resp.StatusCode, b)
	}
	resp, _ = do(t, "POST", url+"/v1/chat/completions", body("gpt-4o-mini"), mockprovider.HeaderFailModels, "gpt-4o,gpt-4o-mini", mockprovider.HeaderStatus, "429")
	if resp.StatusCode != 429 {
		t.Errorf("listed model with x-mock-status: %d, want 429", resp.StatusCode)
	}
	resp, _ = do(t, "POST", url+"/v1/chat/completions", body("gpt-3.5-turbo"), mockprovider.HeaderFailModels, "gpt-4o,gpt-4o-mini", mockprovider.HeaderStatus, "429")
	if resp.StatusCode != 200 {
		t.Errorf("other model: %d, want 200", resp.StatusCode)
	}
}

// TestSplitEvents: x-mock-split-events writes every event in two parts a
// pause apart, so a reader reads more often than there are events; the
// stream itself is the same.
func TestSplitEvents(t *testing.T) {
	_, url := start(t, mockprovider.Options{})
	body := `{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`
	_, whole := do(t, "POST", url+"/v1/chat/completions", body)
	resp, err := send("POST", url+"/v1/chat/completions", body, "x-mock-split-events", "40")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got []byte
	reads := 0
	buf := make([]byte, 64<<10)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			reads++
			got = append(got, buf[:n]...)
		}
		if err != nil {
			break
		}
	}
	events := len(parseSSE(t, whole))
	if reads <= events || !bytes.Equal(stripIDs(got), stripIDs(whole)) {
		t.Fatalf("%d reads for %d events; stream\n%s\nwant\n%s", reads, events, got, whole)
	}
}

// stripIDs blanks what differs between two answers to one request.
func stripIDs(b []byte) []byte {
	return regexp.MustCompile(`"(id|created)":("[^"]*"|\d+)`).ReplaceAll(b, nil)
}
