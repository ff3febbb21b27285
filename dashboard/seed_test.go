package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"

	"github.com/tollgate-dev/tollgate/record"
	"github.com/tollgate-dev/tollgate/storage/chstore"
	"github.com/tollgate-dev/tollgate/storage/chstore/chtest"
)

// freshDatabase is a migrated database of the test's own.
func freshDatabase(t *testing.T) (dsn string, conn driver.Conn, db string) {
	return chtest.FreshDatabase(t, "tollgate_dashboard")
}

// writeRecords stores the records through the processor's own writer.
func writeRecords(t *testing.T, dsn string, recs []*record.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	w, err := chstore.Open(ctx, chstore.Options{URL: dsn, SpoolDir: t.TempDir(), FlushInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		w.Write(r)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatalf("close writer: %v", err)
	}
}

// traffic is a day of realistic calls, with the cases the dashboard must
// show named so the test can find them.
type traffic struct {
	all []*record.Record

	openAIStream, anthropicStream *record.Record
	openAIText, anthropicText     string
	cacheHit, fallback, denied    *record.Record
	semanticHit                   *record.Record   // a paraphrase served from the semantic cache
	session                       []*record.Record // the trip planner's calls
	sessionID                     string
}

// price per million tokens (input, output): close to the list prices, and
// only used to give the seeded calls plausible costs.
var prices = map[string][2]float64{
	"gpt-4o-mini":       {0.15, 0.60},
	"gpt-4o":            {2.50, 10},
	"claude-sonnet-4-5": {3, 15},
	"claude-haiku-4-5":  {1, 5},
}

func providerOf(model string) string {
	if strings.HasPrefix(model, "claude") {
		return "anthropic"
	}
	return "openai"
}

// call is a successful call of model at t, for user.
func call(model, user string, t time.Time, in, out, latency int64) *record.Record {
	r := &record.Record{
		RequestID: uuid.Must(uuid.NewV7()).String(), CreatedAt: t, Tenant: "acme", UserID: user,
		Provider: providerOf(model), Model: model, ResponseModel: model, Method: "POST",
		Status: 200, PromptTokens: in, CompletionTokens: out, LatencyMs: latency, Attempts: 1,
		PolicyDecision: "allow",
	}
	p := prices[model]
	r.CostUSD = (float64(in)*p[0] + float64(out)*p[1]) / 1e6
	team := map[string]string{"alice": "search", "bob": "search", "carol": "billing", "dave": "support", "erin": "support"}[user]
	r.Properties = []record.Property{{Key: "env", Value: "prod"}, {Key: "team", Value: team}}
	r.WorkloadNamespace, r.WorkloadServiceAccount = "team-"+team, "default"
	r.WorkloadName = map[string]string{"search": "search-api", "billing": "billing-worker", "support": "support-bot"}[team]
	question := "Summarise the customer's last three tickets."
	if r.Provider == "openai" {
		r.Path = "/v1/chat/completions"
		r.RequestBody = mustJSON(map[string]any{"model": model, "messages": []any{
			map[string]string{"role": "system", "content": "You are a concise assistant."},
			map[string]string{"role": "user", "content": question}}})
		r.ResponseBody = mustJSON(map[string]any{"id": "chatcmpl-" + r.RequestID[:8], "object": "chat.completion", "model": model,
			"choices": []any{map[string]any{"index": 0, "finish_reason": "stop",
				"message": map[string]string{"role": "assistant", "content": "Three tickets, all about invoice exports; the last one is resolved."}}},
			"usage": map[string]int64{"prompt_tokens": in, "completion_tokens": out, "total_tokens": in + out}})
	} else {
		r.Path = "/v1/messages"
		r.RequestBody = mustJSON(map[string]any{"model": model, "max_tokens": 1024,
			"messages": []any{map[string]string{"role": "user", "content": question}}})
		r.ResponseBody = mustJSON(map[string]any{"id": "msg_" + r.RequestID[:8], "type": "message", "role": "assistant", "model": model,
			"content":     []any{map[string]string{"type": "text", "text": "Three tickets, all about invoice exports; the last one is resolved."}},
			"stop_reason": "end_turn", "usage": map[string]int64{"input_tokens": in, "output_tokens": out}})
	}
	return r
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func openAISSE(model string, chunks []string, in, out int64) string {
	var b strings.Builder
	for _, c := range chunks {
		fmt.Fprintf(&b, "data: %s\n\n", mustJSON(map[string]any{"object": "chat.completion.chunk", "model": model,
			"choices": []any{map[string]any{"index": 0, "delta": map[string]string{"content": c}}}}))
	}
	fmt.Fprintf(&b, "data: %s\n\n", mustJSON(map[string]any{"object": "chat.completion.chunk", "model": model, "choices": []any{},
		"usage": map[string]int64{"prompt_tokens": in, "completion_tokens": out}}))
	b.WriteString("data: [DONE]\n\n")
	return b.String()
}

func anthropicSSE(model string, chunks []string, in, out int64) string {
	var b strings.Builder
	ev := func(name string, v any) { fmt.Fprintf(&b, "event: %s\ndata: %s\n\n", name, mustJSON(v)) }
	ev("message_start", map[string]any{"type": "message_start", "message": map[string]any{"model": model, "usage": map[string]int64{"input_tokens": in}}})
	ev("content_block_start", map[string]any{"type": "content_block_start", "index": 0, "content_block": map[string]string{"type": "text", "text": ""}})
	for _, c := range chunks {
		ev("content_block_delta", map[string]any{"type": "content_block_delta", "index": 0, "delta": map[string]string{"type": "text_delta", "text": c}})
	}
	ev("content_block_stop", map[string]any{"type": "content_block_stop", "index": 0})
	ev("message_delta", map[string]any{"type": "message_delta", "delta": map[string]string{"stop_reason": "end_turn"}, "usage": map[string]int64{"output_tokens": out}})
	ev("message_stop", map[string]any{"type": "message_stop"})
	return b.String()
}

// newTraffic makes about 80 calls over the last 23 hours before now.
func newTraffic(now time.Time) *traffic {
	rng := mrand.New(mrand.NewPCG(7, 11))
	tr := &traffic{}
	add := func(r *record.Record) *record.Record { tr.all = append(tr.all, r); return r }

	models := []string{"gpt-4o-mini", "gpt-4o-mini", "gpt-4o-mini", "gpt-4o", "gpt-4o", "claude-sonnet-4-5", "claude-sonnet-4-5", "claude-haiku-4-5"}
	users := []string{"alice", "alice", "bob", "carol", "dave", "erin"}
	baseLatency := map[string]float64{"gpt-4o-mini": 650, "gpt-4o": 1400, "claude-sonnet-4-5": 1900, "claude-haiku-4-5": 750}
	for i := range 64 {
		t := now.Add(-time.Duration(60+i*21)*time.Minute - time.Duration(rng.IntN(600))*time.Second)
		model := models[rng.IntN(len(models))]
		in, out := int64(200+rng.IntN(2800)), int64(40+rng.IntN(760))
		latency := int64(baseLatency[model]*(0.6+rng.Float64()*1.2) + float64(out)*1.5)
		r := add(call(model, users[rng.IntN(len(users))], t, in, out, latency))
		if rng.IntN(10) < 4 {
			r.Stream, r.TTFTMs = true, latency*int64(12+rng.IntN(18))/100
			r.ResponseBody = openAISSE(model, []string{"Three tickets, ", "all about invoice exports."}, in, out)
			if r.Provider == "anthropic" {
				r.ResponseBody = anthropicSSE(model, []string{"Three tickets, ", "all about invoice exports."}, in, out)
			}
		}
		if rng.IntN(5) == 0 {
			r.Properties[0].Value = "staging"
		}
		switch n := rng.IntN(100); {
		case n < 4:
			r.Status, r.Error, r.CompletionTokens, r.CostUSD = 500, "upstream answered 500: the server had an error", 0, 0
			r.ResponseBody = `{"error":{"message":"The server had an error while processing your request.","type":"server_error"}}`
		case n < 7:
			r.Status, r.RateLimited, r.PromptTokens, r.CompletionTokens, r.CostUSD, r.LatencyMs, r.Attempts = 429, true, 0, 0, 0, 2, 0
			r.ResponseBody = `{"error":"rate limited by policy 1000;w=3600;u=request;s=user"}`
		case n < 9:
			r.Status, r.Error, r.CompletionTokens = record.StatusClientCancelled, "client went away", out/3
		}
	}
	original := tr.all[3]

	// The detail page's cases, in the last quarter hour (first page).
	minute := func(m int) time.Time { return now.Add(-time.Duration(m) * time.Minute) }
	tr.openAIText = "Tollgate records every call: who asked, which model answered, and what it cost."
	tr.openAIStream = add(call("gpt-4o", "alice", minute(3), 1250, 96, 2140))
	tr.openAIStream.Stream, tr.openAIStream.TTFTMs = true, 310
	tr.openAIStream.RequestBody = mustJSON(map[string]any{"model": "gpt-4o", "stream": true,
		"messages": []any{map[string]string{"role": "user", "content": "What does Tollgate record?"}}})
	tr.openAIStream.ResponseBody = openAISSE("gpt-4o", []string{"Tollgate records ", "every call: ", "who asked, ", "which model answered, ", "and what it cost."}, 1250, 96)

	tr.anthropicText = "Three hotels match your dates; the second is closest to the venue."
	tr.anthropicStream = add(call("claude-sonnet-4-5", "bob", minute(5), 2300, 140, 3350))
	tr.anthropicStream.Stream, tr.anthropicStream.TTFTMs = true, 540
	tr.anthropicStream.ResponseBody = anthropicSSE("claude-sonnet-4-5", []string{"Three hotels ", "match your dates; ", "the second is closest ", "to the venue."}, 2300, 140)

	tr.cacheHit = add(call(original.Model, original.UserID, minute(7), original.PromptTokens, original.CompletionTokens, 4))
	tr.cacheHit.CacheHit, tr.cacheHit.CacheReferenceID, tr.cacheHit.CostUSD, tr.cacheHit.Attempts = true, original.RequestID, 0, 0
	tr.cacheHit.Status, tr.cacheHit.Error, tr.cacheHit.RateLimited = 200, "", false

	tr.semanticHit = add(call(original.Model, "frank", minute(8), original.PromptTokens, original.CompletionTokens, 6))
	tr.semanticHit.CacheHit, tr.semanticHit.CacheReferenceID, tr.semanticHit.CacheSimilarity = true, original.RequestID, 0.97
	tr.semanticHit.CostUSD, tr.semanticHit.Attempts = 0, 0
	tr.semanticHit.Status, tr.semanticHit.Error, tr.semanticHit.RateLimited = 200, "", false

	tr.fallback = add(call("gpt-4o", "dave", minute(9), 900, 210, 4820))
	tr.fallback.ResponseModel, tr.fallback.FallbackIndex, tr.fallback.Attempts = "gpt-4o-mini", 1, 2
	tr.fallback.RetryPolicy = "num=3 factor=2 min_timeout_ms=1000 max_timeout_ms=10000"

	prompt := add(call("gpt-4o-mini", "erin", minute(11), 640, 180, 980))
	prompt.PromptID, prompt.PromptVersion, prompt.RequestName = "support-reply", 3, "support reply"

	tr.denied = add(call("claude-sonnet-4-5", "carol", minute(13), 0, 0, 1))
	tr.denied.Status, tr.denied.CostUSD, tr.denied.Attempts, tr.denied.ResponseBody = 403, 0, 0, `{"error":"egress policy: provider anthropic is not allowed in staging"}`
	tr.denied.Properties[0].Value = "staging"
	tr.denied.PolicyRule, tr.denied.PolicyDecision = "no-anthropic-in-staging", "deny: provider anthropic is not allowed in staging"

	failed := add(call("gpt-4o", "alice", minute(15), 1800, 0, 30120))
	failed.Status, failed.Error, failed.CostUSD, failed.Attempts = 500, "upstream answered 500 after 3 attempts: overloaded", 0, 3
	failed.ResponseBody = `{"error":{"message":"The server is overloaded.","type":"server_error"}}`

	// A session of an agent, as Helicone-Session-Path nests its steps.
	tr.sessionID = "trip-7f3a2c"
	steps := []struct{ path, name, model string }{
		{"/plan", "plan itinerary", "gpt-4o"},
		{"/plan/flights", "search flights", "gpt-4o-mini"},
		{"/plan/flights", "rank flights", "gpt-4o-mini"},
		{"/plan/hotels", "search hotels", "claude-sonnet-4-5"},
		{"/plan/hotels/compare", "compare two hotels", "claude-haiku-4-5"},
		{"/plan/hotels/compare", "compare prices", "claude-haiku-4-5"},
		{"/summary", "summarise trip", "gpt-4o"},
	}
	for i, s := range steps {
		r := add(call(s.model, "carol", minute(40).Add(time.Duration(i*17)*time.Second), int64(900+i*150), int64(120+i*40), int64(800+i*260)))
		r.SessionID, r.SessionName, r.SessionPath, r.RequestName = tr.sessionID, "Trip planner", s.path, s.name
		tr.session = append(tr.session, r)
	}
	return tr
}

// newestFirst is the API's order: second of created_at, then id, descending.
func newestFirst(recs []*record.Record) []string {
	s := slices.Clone(recs)
	slices.SortFunc(s, func(a, b *record.Record) int {
		if c := b.CreatedAt.Unix() - a.CreatedAt.Unix(); c != 0 {
			return int(c)
		}
		return strings.Compare(b.RequestID, a.RequestID)
	})
	ids := make([]string, len(s))
	for i, r := range s {
		ids[i] = r.RequestID
	}
	return ids
}
