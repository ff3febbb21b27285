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

// sdkChunks reads a chat stream the way the OpenAI SDKs do (one JSON chunk
// per data line until [DONE]) and reports how many chunks had no choices[0]
// — where `chunk.choices[0].delta` throws — and whether any carried usage.
func sdkChunks(t *testing.T, resp *http.Response) (noChoice int, usage bool, text string) {
	t.Helper()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok || data == "[DONE]" {
			continue
		}
		if !gjson.Valid(data) {
			t.Fatalf("the client got a broken chunk: %q", data)
		}
		if !gjson.Get(data, "choices.0").Exists() {
			noChoice++
		}
		usage = usage || gjson.Get(data, "usage").IsObject()
		text += gjson.Get(data, "choices.0.delta.content").String()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return noChoice, usage, text
}

// TestDevStreamUsageChunkOnlyWhenAsked runs streams through the local data
// plane against the mock: Tollgate asks every OpenAI stream for its usage
// and records the tokens, but the client sees the closing usage chunk only
// when it asked — with stream_options.include_usage, or with
// Helicone-Stream-Usage: true, which is when Helicone's worker adds
// include_usage (worker/src/lib/RequestWrapper.ts; the header is read in
// worker/src/lib/models/HeliconeHeaders.ts). The usage event split across
// two chunks, or arriving with [DONE], is removed just the same.
func TestDevStreamUsageChunkOnlyWhenAsked(t *testing.T) {
	d := startDev(t)
	const plain = `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"count my tokens"}]}`
	const asked = `{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"count my tokens"}]}`
	cases := []struct {
		name, body string
		headers    map[string]string
		wantUsage  bool
	}{
		{name: "not asked", body: plain},
		{name: "not asked, events split early", body: plain, headers: map[string]string{mockprovider.HeaderSplitEvents: "60"}},
		{name: "not asked, events split after choices", body: plain, headers: map[string]string{mockprovider.HeaderSplitEvents: "150"}},
		{name: "asked in the body", body: asked, wantUsage: true},
		{name: "asked in the body, events split", body: asked, headers: map[string]string{mockprovider.HeaderSplitEvents: "60"}, wantUsage: true},
		{name: "Helicone-Stream-Usage", body: plain, headers: map[string]string{"Helicone-Stream-Usage": "true"}, wantUsage: true},
	}
	ids := make([]string, len(cases))
	for i, tc := range cases {
		ids[i] = uuid.NewString()
		req, _ := http.NewRequest(http.MethodPost, d.url("/v1/chat/completions"), strings.NewReader(tc.body))
		req.Header.Set("Helicone-Request-Id", ids[i])
		for k, v := range tc.headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		noChoice, usage, text := sdkChunks(t, resp)
		resp.Body.Close()
		if usage != tc.wantUsage || (noChoice > 0) != tc.wantUsage {
			t.Errorf("%s: client saw usage %v, %d chunks without choices; want usage %v", tc.name, usage, noChoice, tc.wantUsage)
		}
		if text != mockprovider.CompletionText {
			t.Errorf("%s: client text %q", tc.name, text)
		}
		got := d.mock.Received()
		if last := got[len(got)-1]; !gjson.GetBytes(last.Body, "stream_options.include_usage").Bool() {
			t.Errorf("%s: the provider was not asked for usage: %s", tc.name, last.Body)
		}
	}
	records := d.records(t)
	for i, tc := range cases {
		r := records[ids[i]]
		want := wantUsage(tc.body)
		if r == nil || r.PromptTokens != want.PromptTokens || r.CompletionTokens != want.CompletionTokens || r.CostUSD <= 0 {
			t.Errorf("%s: record %+v, want tokens %d/%d", tc.name, r, want.PromptTokens, want.CompletionTokens)
		}
	}
}
