package mockprovider_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/mockprovider"
)

// The mock sits under load tests at thousands of calls per second; these
// keep an eye on what one call costs it.

func BenchmarkChatCompletion(b *testing.B) {
	benchmark(b, "/v1/chat/completions", chatBody)
}

func BenchmarkChatStream(b *testing.B) {
	benchmark(b, "/v1/chat/completions",
		`{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Say hello"}]}`)
}

func BenchmarkMessagesStream(b *testing.B) {
	benchmark(b, "/v1/messages", strings.Replace(messagesBody, `"max_tokens"`, `"stream":true,"max_tokens"`, 1))
}

func benchmark(b *testing.B, path, body string) {
	m := mockprovider.New(mockprovider.Options{})
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		m.ServeHTTP(w, httptest.NewRequest("POST", path, strings.NewReader(body)))
		if w.Code != 200 {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}
