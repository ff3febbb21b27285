package processor

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/dataplane"
	"github.com/tollgate-dev/tollgate/mockprovider"
	"github.com/tollgate-dev/tollgate/record"
)

// translatedPlane is the local data plane as envoy/ configures it, with the
// OpenAI ⇄ Anthropic fallback chains, every level and both providers on one
// mock provider that speaks HTTP/2 (trailers need it), in front of a
// processor configured with a key for each provider.
type translatedPlane struct {
	front  string
	up     *httptest.Server // the mock, as the data plane reaches it
	client *http.Client
	mock   *mockprovider.Server
	sink   *record.Memory
}

func newTranslatedPlane(t *testing.T) *translatedPlane {
	t.Helper()
	tp := &translatedPlane{mock: mockprovider.New(mockprovider.Options{})}
	up := h2Upstream(t, tp.mock.ServeHTTP)
	tp.up = up
	var s *Server
	s, tp.sink = newTestServer(t, func(o *Options) {
		o.ProviderKeys = map[string]string{"openai": "sk-openai-gateway", "anthropic": "sk-ant-gateway"}
	})
	const oa, an = "https://api.openai.com", "https://api.anthropic.com"
	proxy := dataPlaneFor(t, s, dataplane.Config{
		OpenAIUpstream: up.URL, AnthropicUpstream: up.URL, Transport: up.Client().Transport,
		MessageTimeout: 5 * time.Second, AllowEnvoyHeaderMutation: true,
		EarlyRemoveHeaders:  dataplane.EarlyRemovedHeaders,
		ReceivingNamespaces: []string{LinkNamespace},
		UpstreamFilter: &dataplane.UpstreamFilterConfig{
			Metadata:             map[string]string{dataplane.UpstreamFilterMetadataKey: dataplane.UpstreamFilterMetadataValue},
			ForwardingNamespaces: []string{LinkNamespace},
		},
		FallbackChains: []dataplane.FallbackChain{
			{Origins: []string{oa, an}, Levels: []string{up.URL, up.URL}},
			{Origins: []string{an, oa}, Levels: []string{up.URL, up.URL}},
		},
		RetryJitter: func(int64) int64 { return 0 },
		RetrySleep:  func(ctx context.Context, _ time.Duration) error { return ctx.Err() },
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	front := h2Upstream(t, proxy.ServeHTTP)
	tp.front, tp.client = front.URL, front.Client()
	return tp
}

// post sends a streamed chat call whose own model fails at the mock, so the
// short-form fallback to the other provider's model answers; it returns
// the client's whole body, its trailers and the call's record.
func (tp *translatedPlane) post(t *testing.T, path, body string, hdr map[string]string) (string, http.Header, *record.Record) {
	t.Helper()
	req, err := http.NewRequest("POST", tp.front+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("content-type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := tp.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("client got %d %q (%v)", resp.StatusCode, b, err)
	}
	recs := tp.sink.Records()
	if len(recs) != 1 {
		t.Fatalf("records %+v", recs)
	}
	return string(b), resp.Trailer, recs[0]
}

var translatedDirections = []struct {
	name, path, body string
	fallback         string // Helicone-Fallback
	ownModel         string
	upPath, upBody   string // the translated call, as the other provider gets it
	okEnd, errEvent  string // the end of a whole stream; the error event of a broken one
	provider         string // the record's
}{
	{"openai client, anthropic answers", "/v1/chat/completions",
		`{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}`,
		"claude-sonnet-4-5", "gpt-4o-mini",
		"/v1/messages", `{"model":"claude-sonnet-4-5","stream":true,"max_tokens":64,"messages":[{"role":"user","content":"hi"}]}`,
		"data: [DONE]\n\n", `data: {"error":{"message":"the answer's stream from anthropic broke before its end`, "anthropic"},
	{"anthropic client, openai answers", "/v1/messages",
		`{"model":"claude-sonnet-4-5","stream":true,"max_tokens":64,"messages":[{"role":"user","content":"hi"}]}`,
		"gpt-4o-mini", "claude-sonnet-4-5",
		"/v1/chat/completions", `{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`,
		"event: message_stop\n", "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\"", "openai"},
}

// A translated stream whose upstream ends cleanly but before its terminal
// event (message_stop, [DONE]) ends, for the client, with an error event of
// its own format instead of a silently cut answer; the record says the call
// failed (502, with the reason). A whole stream has no error event.
func TestTranslatedStreamCutThroughDataPlane(t *testing.T) {
	for _, dir := range translatedDirections {
		t.Run(dir.name, func(t *testing.T) {
			tp := newTranslatedPlane(t)
			hdr := map[string]string{"helicone-fallback": dir.fallback, mockprovider.HeaderFailModels: dir.ownModel}
			whole, _, rec := tp.post(t, dir.path, dir.body, hdr)
			if !strings.Contains(whole, dir.okEnd) || strings.Contains(whole, "error") || rec.Status != 200 || rec.Error != "" || rec.Provider != dir.provider {
				t.Fatalf("whole stream: client got %q, record status %d error %q provider %q", whole, rec.Status, rec.Error, rec.Provider)
			}

			tp = newTranslatedPlane(t)
			hdr[mockprovider.HeaderEndAfter] = "3"
			cut, _, rec := tp.post(t, dir.path, dir.body, hdr)
			if !strings.Contains(cut, dir.errEvent) || !strings.HasSuffix(cut, "\n\n") || strings.Contains(cut, dir.okEnd) {
				t.Errorf("cut stream: client got %q, want it to end with %q", cut, dir.errEvent)
			}
			if i := strings.Index(cut, dir.errEvent); i >= 0 && strings.Count(cut[i:], "\n\n") != 1 {
				t.Errorf("cut stream: something follows the error event: %q", cut[i:])
			}
			if rec.Status != 502 || !strings.Contains(rec.Error, "broke") || rec.Provider != dir.provider || rec.FallbackIndex != 1 {
				t.Errorf("cut stream: record status %d error %q provider %q fallback %d, want 502 naming the break",
					rec.Status, rec.Error, rec.Provider, rec.FallbackIndex)
			}
		})
	}
}

// upstreamEvents counts the SSE events the other provider's whole stream has.
func (tp *translatedPlane) upstreamEvents(t *testing.T, path, body string) int {
	t.Helper()
	resp, err := tp.up.Client().Post(tp.up.URL+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return strings.Count(string(b), "data: ")
}

// A translated stream that trailers end (an HTTP/2 upstream; no shipped
// chain cluster is one) runs STREAMED like every stream: the reply to the
// last chunk has gone before the trailers come, and a trailers reply
// carries no body. A whole stream loses nothing (its terminal event came in
// a chunk; the translator's Close owes nothing after it) and the trailers
// reach the client. A stream that stops before its terminal event, after
// the answer's finish, cannot get the terminal events the translator would
// add: the client's stream ends without them, never with raw upstream
// bytes, and the record says 502 with the reason. A stream cut earlier
// likewise: a 502 naming the break.
func TestTranslatedStreamTrailersThroughDataPlane(t *testing.T) {
	for _, dir := range translatedDirections {
		t.Run(dir.name, func(t *testing.T) {
			tp := newTranslatedPlane(t)
			n := tp.upstreamEvents(t, dir.upPath, dir.upBody)
			hdr := map[string]string{"helicone-fallback": dir.fallback, mockprovider.HeaderFailModels: dir.ownModel,
				mockprovider.HeaderTrailer: "x-upstream-end=trailers"}
			whole, tr, rec := tp.post(t, dir.path, dir.body, hdr)
			if !strings.HasSuffix(whole, dir.okEnd) && !strings.HasSuffix(whole, dir.okEnd+"data: {\"type\":\"message_stop\"}\n\n") ||
				tr.Get("x-upstream-end") != "trailers" || rec.Status != 200 || rec.Error != "" || rec.CompletionTokens == 0 {
				t.Fatalf("whole stream with trailers: client got %q, trailers %v; record status %d error %q tokens %d",
					whole, tr, rec.Status, rec.Error, rec.CompletionTokens)
			}

			tp = newTranslatedPlane(t)
			hdr[mockprovider.HeaderEndAfter] = strconv.Itoa(n - 1)
			owed, tr, rec := tp.post(t, dir.path, dir.body, hdr)
			if strings.Contains(owed, dir.okEnd) || tr.Get("x-upstream-end") != "trailers" ||
				rec.Status != 502 || !strings.Contains(rec.Error, "trailers ended it before its terminal event") || rec.CompletionTokens == 0 {
				t.Errorf("stream without its terminal event, ended by trailers: client got %q, trailers %v; record status %d error %q tokens %d",
					owed, tr, rec.Status, rec.Error, rec.CompletionTokens)
			}
			assertClientFormat(t, dir.path, owed)

			tp = newTranslatedPlane(t)
			hdr[mockprovider.HeaderEndAfter] = "2"
			cut, tr, rec := tp.post(t, dir.path, dir.body, hdr)
			if tr.Get("x-upstream-end") != "trailers" || rec.Status != 502 || !strings.Contains(rec.Error, "broke") {
				t.Errorf("stream cut early, ended by trailers: client got %q, trailers %v; record status %d error %q", cut, tr, rec.Status, rec.Error)
			}
			assertClientFormat(t, dir.path, cut)
		})
	}
}

// assertClientFormat fails when a stream the client got holds an event of
// the other provider's format (raw upstream bytes passed on untranslated).
func assertClientFormat(t *testing.T, path, stream string) {
	t.Helper()
	other := "event: message_start" // an OpenAI client must never see Anthropic's events
	if path == "/v1/messages" {
		other = `"object":"chat.completion.chunk"`
	}
	if strings.Contains(stream, other) {
		t.Errorf("the client's stream holds the other provider's format (%s): %q", other, stream)
	}
}

// An upstream that resets its connection in the middle of a translated
// stream resets the client's stream too (Envoy resets the downstream once
// the response has begun; no event can be sent on a reset stream): the
// client reads an error, never a clean end, and the record counts the call
// as failed (a negative status).
func TestTranslatedStreamResetThroughDataPlane(t *testing.T) {
	for _, dir := range translatedDirections {
		t.Run(dir.name, func(t *testing.T) {
			tp := newTranslatedPlane(t)
			req, _ := http.NewRequest("POST", tp.front+dir.path, strings.NewReader(dir.body))
			req.Header.Set("content-type", "application/json")
			req.Header.Set("helicone-fallback", dir.fallback)
			req.Header.Set(mockprovider.HeaderFailModels, dir.ownModel)
			req.Header.Set(mockprovider.HeaderDisconnectAfter, "2")
			resp, err := tp.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil {
				t.Errorf("the client read a clean end after %q", b)
			}
			deadline := time.Now().Add(5 * time.Second)
			for len(tp.sink.Records()) == 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			recs := tp.sink.Records()
			if len(recs) != 1 || recs[0].Status >= 0 {
				t.Errorf("records %+v, want one with a negative status", recs)
			}
		})
	}
}
