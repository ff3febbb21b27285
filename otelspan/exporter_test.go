package otelspan

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tollgate-dev/tollgate/record"
)

// queueOnly is an Exporter whose building goroutine never runs, so that
// what Offer queued stays there to be looked at.
func queueOnly(ratio float64, capacity int) *Exporter {
	return &Exporter{ratio: ratio, capacity: capacity, m: newMetrics(prometheus.NewRegistry()), wake: make(chan struct{}, 1)}
}

const (
	sampledParent   = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	unsampledParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
)

func TestOfferDropsAndCountsWhenTheQueueIsFull(t *testing.T) {
	e := queueOnly(1, 2)
	for range 3 {
		e.Offer(&record.Record{RequestID: "r"}, "", "")
	}
	if len(e.queue) != 2 || testutil.ToFloat64(e.m.dropped) != 1 {
		t.Errorf("queue %d, dropped %v; want 2 queued and 1 dropped", len(e.queue), testutil.ToFloat64(e.m.dropped))
	}
	select {
	case <-e.wake:
	default:
		t.Error("a half-full queue did not wake the builder")
	}
}

func TestOfferSamplesByParentThenRatio(t *testing.T) {
	for _, tc := range []struct {
		name        string
		ratio       float64
		traceparent string
		queued      bool
	}{
		{"sampled parent, ratio 0", 0, sampledParent, true},
		{"unsampled parent, ratio 1", 1, unsampledParent, false},
		{"no parent, ratio 0", 0, "", false},
		{"no parent, ratio 1", 1, "", true},
		{"malformed parent is no parent, ratio 0", 0, "00-zz-00f067aa0ba902b7-01", false},
		{"malformed parent is no parent, ratio 1", 1, "garbage", true},
	} {
		e := queueOnly(tc.ratio, 10)
		e.Offer(&record.Record{}, tc.traceparent, "")
		if got := len(e.queue) == 1; got != tc.queued {
			t.Errorf("%s: queued %v, want %v", tc.name, got, tc.queued)
		}
		if !tc.queued && testutil.ToFloat64(e.m.unsampled) != 1 {
			t.Errorf("%s: not counted as unsampled", tc.name)
		}
	}
	e := queueOnly(1, 10)
	e.Offer(&record.Record{}, sampledParent, "congo=t61rcWkgMzE")
	if p := e.queue[0].parent; p.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || p.TraceState().String() != "congo=t61rcWkgMzE" || !p.IsRemote() {
		t.Errorf("parent %+v", p)
	}
}

func TestQueuedCallsKeepNoBodies(t *testing.T) {
	e := queueOnly(1, 10)
	e.Offer(&record.Record{
		RequestBody:  `{"model":"gpt-4o","messages":[],"max_completion_tokens":64,"temperature":0.7}`,
		ResponseBody: `{"id":"chatcmpl-42","object":"chat.completion"}`,
		Error:        strings.Repeat("x", 10_000),
	}, "", "")
	d := e.queue[0]
	if d.rec.RequestBody != "" || d.rec.ResponseBody != "" || len(d.rec.Error) > maxErrorLen {
		t.Errorf("queued call keeps bodies (%d, %d bytes) or a long error (%d)", len(d.rec.RequestBody), len(d.rec.ResponseBody), len(d.rec.Error))
	}
	if d.responseID != "chatcmpl-42" || d.maxTokens != 64 || !d.hasTemp || d.temperature != 0.7 {
		t.Errorf("read from the bodies: id %q max_tokens %d temperature %v", d.responseID, d.maxTokens, d.temperature)
	}
}

func TestResponseID(t *testing.T) {
	for body, want := range map[string]string{
		`{"id":"chatcmpl-1","choices":[]}`:                                                             "chatcmpl-1",
		`{"type":"message","id":"msg_01"}`:                                                             "msg_01",
		`{"responseId":"gem-3","candidates":[]}`:                                                       "gem-3",
		"data: {\"id\":\"chatcmpl-2\",\"choices\":[]}\n\ndata: [DONE]\n\n":                             "chatcmpl-2",
		"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_02\"}}\n\n": "msg_02",
		"<html>bad gateway</html>":                                                                     "",
		"":                                                                                             "",
	} {
		if got := responseID(body); got != want {
			t.Errorf("responseID(%q) = %q, want %q", body, got, want)
		}
	}
}

func TestOperation(t *testing.T) {
	for path, want := range map[string]string{
		"/v1/chat/completions": "chat", "/v1/messages": "chat", "/v1/responses": "chat",
		"/v1/completions": "text_completion", "/v1/embeddings": "embeddings",
		"/openai/deployments/prod/chat/completions":       "chat",
		"/v1beta/models/gemini-2.0-flash:generateContent": "generate_content",
		"/v1/models": "models", "/v1/messages/count_tokens": "count_tokens", "/elsewhere": "unknown",
	} {
		if got := Operation(path); got != want {
			t.Errorf("Operation(%q) = %q, want %q", path, got, want)
		}
	}
}

func TestProviderNamesReadBack(t *testing.T) {
	for _, p := range []string{"openai", "anthropic", "azure", "gemini", "groq", "together", "mistral", "xai", "api.example.com"} {
		if got := FromProviderName(ProviderName(p)); got != p {
			t.Errorf("%s → %s → %s", p, ProviderName(p), got)
		}
		if got := FromProviderName(systemName(p)); got != p {
			t.Errorf("gen_ai.system: %s → %s → %s", p, systemName(p), got)
		}
	}
	if ProviderName("azure") != "azure.ai.openai" || ProviderName("gemini") != "gcp.gemini" {
		t.Error("azure and gemini do not take the convention's names")
	}
}

func TestTracesURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://collector:4318":              "http://collector:4318/v1/traces",
		"http://collector:4318/":             "http://collector:4318/v1/traces",
		"https://otel.example.com/v1/traces": "https://otel.example.com/v1/traces",
		"https://gw.example.com/otlp":        "https://gw.example.com/otlp/v1/traces",
	} {
		if got, err := TracesURL(in); err != nil || got != want {
			t.Errorf("TracesURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"collector:4318", "ftp://x", "http://", "http://c:4318/?a=b"} {
		if _, err := TracesURL(bad); err == nil {
			t.Errorf("TracesURL(%q) accepted", bad)
		}
	}
}

// BenchmarkOffer is what a call pays on its stream's goroutine once its
// exchange is over: the trace context parse, the copy into the queue.
func BenchmarkOffer(b *testing.B) {
	rec := &record.Record{RequestID: "0190c3a4-0000-7000-8000-000000000001", Model: "gpt-4o-mini", Provider: "openai",
		Path: "/v1/chat/completions", RequestBody: `{"model":"gpt-4o-mini","max_tokens":64,"messages":[{"role":"user","content":"hello there"}]}`,
		ResponseBody: `{"id":"chatcmpl-42","object":"chat.completion","choices":[]}`}
	for _, bc := range []struct {
		name, traceparent string
		ratio             float64
	}{{"sampled-parent", sampledParent, 1}, {"no-parent", "", 1}, {"unsampled", "", 0}} {
		b.Run(bc.name, func(b *testing.B) {
			e := queueOnly(bc.ratio, 4096)
			b.ReportAllocs()
			for b.Loop() {
				e.Offer(rec, bc.traceparent, "")
				if len(e.queue) == e.capacity {
					e.queue = e.queue[:0]
				}
			}
		})
	}
}

// BenchmarkOfferParallel: many streams ending at once with large request
// bodies (the scan for max_tokens reads up to 256 KiB): the scan runs on
// each stream's goroutine, outside the queue's lock, so the streams do
// not wait on one another's scans.
func BenchmarkOfferParallel(b *testing.B) {
	body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"` + strings.Repeat("x", 200<<10) + `"}],"max_tokens":64}`
	rec := &record.Record{RequestID: "0190c3a4-0000-7000-8000-000000000001", Model: "gpt-4o-mini", Provider: "openai",
		Path: "/v1/chat/completions", RequestBody: body, ResponseBody: `{"id":"chatcmpl-42","object":"chat.completion","choices":[]}`}
	e := queueOnly(1, 1<<30)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			e.Offer(rec, "", "")
		}
	})
}
