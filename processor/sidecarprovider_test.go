package processor

import (
	"context"
	"strings"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc/metadata"
)

// runAs plays the script on a stream whose gRPC metadata names provider,
// as a sidecar's per-virtual-host ExtProcPerRoute does.
func runAs(s *Server, provider string, script ...*extprocv3.ProcessingRequest) []*extprocv3.ProcessingResponse {
	f := &fakeStream{ctx: metadata.NewIncomingContext(context.Background(), metadata.Pairs(ProviderMetadata, provider)), script: script}
	_ = s.Process(f)
	return f.replies
}

// A call a sidecar sends to a provider's own host, with that provider's own
// path, is that provider's when the sidecar's configuration names it: Groq's
// /openai/v1/chat/completions is not Azure's look-alike, Together's
// /v1/chat/completions not OpenAI's. A name that is no registered provider
// changes nothing.
func TestSidecarNamesTheProvider(t *testing.T) {
	for _, tc := range []struct{ provider, path, want string }{
		{"groq", "/openai/v1/chat/completions", "groq"},
		{"together", "/v1/chat/completions", "together"},
		{"gemini", "/v1beta/openai/chat/completions", "gemini"},
		{"anthropic", "/v1/chat/completions", "anthropic"}, // Anthropic's OpenAI SDK compatibility
		{"openai", "/v1/chat/completions", "openai"},
		{"nope", "/v1/chat/completions", "openai"},
		{"nope", "/openai/v1/chat/completions", "azure"},
	} {
		s, sink := newTestServer(t)
		runAs(s, tc.provider, reqHeaders(false, ":method", "POST", ":path", tc.path), reqBody(chatBody),
			respHeaders(false, ":status", "200"), respBody(chatResponse, true))
		recs := sink.Records()
		if len(recs) != 1 || recs[0].Provider != tc.want || recs[0].Model != "gpt-4o-mini" || recs[0].CompletionTokens == 0 {
			t.Errorf("%s %s: records %+v", tc.provider, tc.path, recs)
		}
	}
}

// In a sidecar, the host picks the provider: a key-vault key stored for
// OpenAI is refused on Groq's and Anthropic's hosts whatever the path, and
// the host's own provider's key is swapped in there.
func TestSidecarProviderBindsProxyKeys(t *testing.T) {
	for _, tc := range []struct {
		host, path, key string
		status          int
	}{
		{"groq", "/openai/v1/chat/completions", "openai", 403},
		{"groq", "/openai/v1/chat/completions", "groq", 0},
		{"anthropic", "/v1/chat/completions", "openai", 403},
		{"anthropic", "/v1/chat/completions", "anthropic", 0},
	} {
		s, _ := newTestServer(t, providerVault(t))
		replies := runAs(s, tc.host, reqHeaders(false, ":method", "POST", ":path", tc.path,
			"authorization", "Bearer "+providerProxyKey(tc.key)))
		imm := replies[0].GetImmediateResponse()
		switch {
		case tc.status != 0 && (imm == nil || int(imm.GetStatus().GetCode()) != tc.status || !strings.Contains(string(imm.GetBody()), "the "+tc.host+" route")):
			t.Errorf("%s key on %s: want a %d naming the %s route, got %v", tc.key, tc.host, tc.status, tc.host, replies[0])
		case tc.status == 0 && setValue(replies[0].GetRequestHeaders().GetResponse(), "authorization") != "Bearer real-"+tc.key:
			t.Errorf("%s key on %s: reply %v", tc.key, tc.host, replies[0])
		}
	}
}
