package processor

import (
	"strings"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/tidwall/gjson"
)

// clientStream is what the client receives of a streamed body, given the
// chunks Envoy sent and the processor's replies (replies[i] answers the
// i-th message; the first bodyAt messages are the request and the
// response headers).
func clientStream(t *testing.T, chunks []string, replies []*extprocv3.ProcessingResponse, bodyAt int) string {
	t.Helper()
	var b strings.Builder
	for i, c := range chunks {
		bm := replies[bodyAt+i].GetResponseBody().GetResponse().GetBodyMutation()
		switch {
		case bm == nil:
			b.WriteString(c)
		case bm.GetClearBody():
		default:
			b.Write(bm.GetBody())
		}
	}
	return b.String()
}

// usageChunks are the events a client sees with choices: [] and usage —
// what breaks a parser that reads choices[0] of every chunk.
func usageChunks(stream string) int {
	n := 0
	for _, ev := range strings.Split(stream, "\n\n") {
		data, ok := strings.CutPrefix(ev, "data: ")
		if ok && gjson.Get(data, "choices.#").Int() == 0 && gjson.Get(data, "usage").IsObject() {
			n++
		}
	}
	return n
}

// TestStreamUsageChunkOnlyWhenAsked: Tollgate asks every OpenAI stream for
// its usage, but the client gets the usage chunk only when it asked, as
// through Helicone, which adds include_usage only for Helicone-Stream-Usage:
// true (worker/src/lib/RequestWrapper.ts, applyBodyOverrides; the header is
// read in worker/src/lib/models/HeliconeHeaders.ts as === "true"). The
// record has the tokens either way.
func TestStreamUsageChunkOnlyWhenAsked(t *testing.T) {
	usageAt := strings.Index(openAIStream, `data: {"id":"c","model":"gpt-4o-mini-2024-07-18","choices":[]`)
	for _, tc := range []struct {
		name, body string
		headers    []string
		chunks     []string
		wantUsage  bool
	}{
		{name: "not asked",
			body:   `{"model":"gpt-4o-mini","stream":true}`,
			chunks: []string{openAIStream[:usageAt], openAIStream[usageAt:]}},
		{name: "not asked, usage event split across chunks",
			body:   `{"model":"gpt-4o-mini","stream":true}`,
			chunks: []string{openAIStream[:usageAt+30], openAIStream[usageAt+30 : usageAt+90], openAIStream[usageAt+90:]}},
		{name: "not asked, whole stream in one chunk",
			body:   `{"model":"gpt-4o-mini","stream":true}`,
			chunks: []string{openAIStream}},
		{name: "declined with include_usage false",
			body:   `{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":false}}`,
			chunks: []string{openAIStream[:usageAt], openAIStream[usageAt:]}},
		{name: "asked in the body",
			body:   `{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true}}`,
			chunks: []string{openAIStream[:usageAt], openAIStream[usageAt:]}, wantUsage: true},
		{name: "asked with Helicone-Stream-Usage",
			body:    `{"model":"gpt-4o-mini","stream":true}`,
			headers: []string{"helicone-stream-usage", "true"},
			chunks:  []string{openAIStream[:usageAt+30], openAIStream[usageAt+30:]}, wantUsage: true},
		{name: "Helicone-Stream-Usage wins over include_usage false",
			body:    `{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":false}}`,
			headers: []string{"helicone-stream-usage", "true"},
			chunks:  []string{openAIStream}, wantUsage: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, sink := newTestServer(t)
			script := []*extprocv3.ProcessingRequest{
				reqHeaders(false, append([]string{":method", "POST", ":path", "/v1/chat/completions"}, tc.headers...)...),
				reqBody(tc.body),
				respHeaders(false, ":status", "200", "content-type", "text/event-stream"),
			}
			for i, c := range tc.chunks {
				script = append(script, respBody(c, i == len(tc.chunks)-1))
			}
			replies, err := run(s, nil, script...)
			if err != nil {
				t.Fatal(err)
			}
			sent := []byte(tc.body)
			if bm := replies[1].GetRequestBody().GetResponse().GetBodyMutation(); bm != nil {
				sent = bm.GetBody()
			}
			if !gjson.GetBytes(sent, "stream_options.include_usage").Bool() {
				t.Fatalf("the provider was not asked for usage: %s", sent)
			}
			got := clientStream(t, tc.chunks, replies, 3)
			want := openAIStream
			if !tc.wantUsage {
				want = strings.Replace(openAIStream, openAIStream[usageAt:strings.Index(openAIStream, "data: [DONE]")], "", 1)
			}
			if got != want {
				t.Fatalf("client got\n%q\nwant\n%q", got, want)
			}
			if n := usageChunks(got); (n == 1) != tc.wantUsage {
				t.Fatalf("%d usage chunks reached the client", n)
			}
			r := sink.Records()[0]
			if r.PromptTokens != 11 || r.CompletionTokens != 2 || r.ResponseBody != openAIStream {
				t.Fatalf("record %+v", r)
			}
		})
	}
}

// TestStreamUsageFilterDropsContentLength: a stream the usage event is cut
// from cannot keep a content-length the upstream may have sent.
func TestStreamUsageFilterDropsContentLength(t *testing.T) {
	s, _ := newTestServer(t)
	replies, _ := run(s, nil,
		reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions"),
		reqBody(`{"model":"gpt-4o-mini","stream":true}`),
		respHeaders(false, ":status", "200", "content-type", "text/event-stream", "content-length", itoa(len(openAIStream))),
		respBody(openAIStream, true),
	)
	m := replies[2].GetResponseHeaders().GetResponse().GetHeaderMutation()
	found := false
	for _, h := range m.GetRemoveHeaders() {
		found = found || h == "content-length"
	}
	if !found {
		t.Fatalf("content-length kept: %v", m)
	}
}
