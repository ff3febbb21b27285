package processor

import (
	"context"
	"fmt"
	"strings"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/tollgate-dev/tollgate/policies/gate"
	"github.com/tollgate-dev/tollgate/record"
	"github.com/tollgate-dev/tollgate/storage/memstore"
)

// The mock providers' streams: the same answer streamed in cutN chunks,
// ending with the provider's own usage. OpenAI streams a token a chunk and
// counts the prompt with o200k_base (26 tokens for cutChatBody: 15 of
// text, 2 roles, 3 a message and 3 of reply priming); Anthropic streams a
// few tokens a delta and reports the prompt in message_start.
const (
	cutN            = 16
	cutChatBody     = `{"model":"o1-pro","stream":true,"messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Write a haiku about recursion in programming."}]}`
	cutChatPrompt   = 26
	cutClaudeBody   = `{"model":"claude-opus-4-1","stream":true,"max_tokens":256,"messages":[{"role":"user","content":"Write a haiku about recursion in programming."}]}`
	cutClaudePrompt = 19
)

// cutChatPieces are single o200k_base tokens, as OpenAI streams them.
var cutChatPieces = []string{"Functions", " call", " themselves", "\n", "each", " frame", " a", " smaller", " world", "\n",
	"base", " case", " brings", " us", " home", "."}

// cutClaudePieces are 12-character deltas: 3 tokens each at the estimate
// Claude is counted with (four characters a token), so the mock's full
// output is 3 × cutN.
var cutClaudePieces = func() []string {
	var out []string
	for i := range cutN {
		out = append(out, fmt.Sprintf("line %02d, ok.", i))
	}
	return out
}()

func openAIChunk(content string) string {
	return `data: {"id":"c","object":"chat.completion.chunk","model":"o1-pro-2025-03-19","choices":[{"index":0,"delta":{"content":` +
		fmt.Sprintf("%q", content) + `},"finish_reason":null}],"usage":null}` + "\n\n"
}

// openAICut is the mock's chat stream: the role chunk, cutN content
// chunks, the finish chunk, the usage chunk and [DONE]; cut after k
// content chunks when k < cutN.
func openAICut(k int) []string {
	chunks := []string{`data: {"id":"c","object":"chat.completion.chunk","model":"o1-pro-2025-03-19","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}],"usage":null}` + "\n\n"}
	for _, p := range cutChatPieces[:k] {
		chunks = append(chunks, openAIChunk(p))
	}
	if k < cutN {
		return chunks
	}
	return append(chunks,
		`data: {"id":"c","object":"chat.completion.chunk","model":"o1-pro-2025-03-19","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}`+"\n\n",
		fmt.Sprintf(`data: {"id":"c","object":"chat.completion.chunk","model":"o1-pro-2025-03-19","choices":[],"usage":{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}}`+"\n\n",
			cutChatPrompt, cutN, cutChatPrompt+cutN),
		"data: [DONE]\n\n")
}

// anthropicCut is the mock's messages stream, cut after message_start and
// k deltas when k < cutN.
func anthropicCut(k int) []string {
	chunks := []string{
		fmt.Sprintf(`event: message_start`+"\n"+`data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-opus-4-1-20250805","content":[],"usage":{"input_tokens":%d,"output_tokens":1}}}`+"\n\n", cutClaudePrompt),
		`event: content_block_start` + "\n" + `data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}` + "\n\n",
	}
	for _, p := range cutClaudePieces[:k] {
		chunks = append(chunks, `event: content_block_delta`+"\n"+`data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":`+fmt.Sprintf("%q", p)+`}}`+"\n\n")
	}
	if k < cutN {
		return chunks
	}
	return append(chunks,
		`event: content_block_stop`+"\n"+`data: {"type":"content_block_stop","index":0}`+"\n\n",
		fmt.Sprintf(`event: message_delta`+"\n"+`data: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":%d}}`+"\n\n", 3*cutN),
		`event: message_stop`+"\n"+`data: {"type":"message_stop"}`+"\n\n")
}

// streamScript is a streamed call whose response is chunks; a cut stream
// (cut true) has no end_of_stream and ends with the client's cancel.
func streamScript(path, body string, chunks []string, cut bool) []*extprocv3.ProcessingRequest {
	script := []*extprocv3.ProcessingRequest{
		reqHeaders(false, ":method", "POST", ":path", path, "content-type", "application/json", "authorization", "Bearer sk-provider"),
		reqBody(body),
		respHeaders(false, ":status", "200", "content-type", "text/event-stream"),
	}
	for i, c := range chunks {
		script = append(script, respBody(c, !cut && i == len(chunks)-1))
	}
	return script
}

// within: got is within 10% or 3 tokens of want, whichever is wider.
func within(got, want int64) bool {
	tol := max(want/10, 3)
	return got >= want-tol && got <= want+tol
}

// A stream the client hangs up on after k of cutN chunks is logged with
// the tokens it consumed: the provider's own full usage scaled to k/cutN
// (the prompt whole), within 10% or 3 tokens; usage_source "estimated",
// a cost. The full stream keeps the provider's counts ("provider").
func TestCutStreamIsCounted(t *testing.T) {
	type want struct{ prompt, completion int64 }
	cases := []struct {
		name, path, body string
		chunks           func(k int) []string
		full             want
	}{
		{"openai", "/v1/chat/completions", cutChatBody, openAICut, want{cutChatPrompt, cutN}},
		{"anthropic", "/v1/messages", cutClaudeBody, anthropicCut, want{cutClaudePrompt, 3 * cutN}},
	}
	for _, tc := range cases {
		for _, k := range []int{0, 1, 7, 12, cutN} {
			t.Run(fmt.Sprintf("%s/%d of %d", tc.name, k, cutN), func(t *testing.T) {
				s, sink := newTestServer(t)
				_, _ = run(s, cancelled, streamScript(tc.path, tc.body, tc.chunks(k), k < cutN)...)
				recs := sink.Records()
				if len(recs) != 1 {
					t.Fatalf("%d records", len(recs))
				}
				r := recs[0]
				t.Logf("%d/%d tokens, $%.6f, %q", r.PromptTokens, r.CompletionTokens, r.CostUSD, r.UsageSource)
				exp := want{tc.full.prompt, tc.full.completion * int64(k) / cutN}
				if !within(r.PromptTokens, exp.prompt) || !within(r.CompletionTokens, exp.completion) {
					t.Errorf("tokens %d/%d, want %d/%d within 10%% or 3", r.PromptTokens, r.CompletionTokens, exp.prompt, exp.completion)
				}
				src, status := record.UsageEstimated, int32(record.StatusClientCancelled)
				if k == cutN {
					src, status = record.UsageProvider, 200
					if r.PromptTokens != exp.prompt || r.CompletionTokens != exp.completion {
						t.Errorf("full stream: tokens %d/%d, want the provider's %d/%d", r.PromptTokens, r.CompletionTokens, exp.prompt, exp.completion)
					}
				}
				if tc.name == "anthropic" && k == 0 {
					src = record.UsageProvider // message_start's counts, nothing streamed to count
				}
				if r.UsageSource != src || r.Status != status || r.CostUSD <= 0 {
					t.Errorf("usage_source %q status %d cost %v, want %q, %d and a cost", r.UsageSource, r.Status, r.CostUSD, src, status)
				}
			})
		}
	}
}

// A stream cut after a tool call's arguments began counts them too.
func TestCutStreamCountsToolCallArguments(t *testing.T) {
	s, sink := newTestServer(t)
	chunk := func(args string) string {
		return `data: {"id":"c","model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":` +
			fmt.Sprintf("%q", args) + `}}]}}],"usage":null}` + "\n\n"
	}
	var chunks []string
	for range 10 {
		chunks = append(chunks, chunk(`{"city": "Paris", `))
	}
	_, _ = run(s, cancelled, streamScript("/v1/chat/completions",
		`{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"weather?"}]}`, chunks, true)...)
	r := sink.Records()[0]
	t.Logf("%d completion tokens", r.CompletionTokens)
	if r.CompletionTokens < 40 || r.UsageSource != record.UsageEstimated {
		t.Errorf("tool call arguments: %d completion tokens (%q), want about 60", r.CompletionTokens, r.UsageSource)
	}
}

// A cents limit charges a cut stream what it consumed: with the real gate
// and the in-process store, a budget lets through as many streams cut
// after cutN/2 chunks as full streams of cutN/2 chunks (the same tokens,
// the same cost) before it refuses them.
func TestCentsBudgetChargesCutStreams(t *testing.T) {
	half := cutN / 2
	// fullHalf is a complete stream that answers with half the chunks and
	// reports its usage; cutHalf the full answer cut after as many.
	fullHalf := func() []string {
		chunks := openAICut(half)
		return append(chunks,
			fmt.Sprintf(`data: {"id":"c","object":"chat.completion.chunk","model":"o1-pro-2025-03-19","choices":[],"usage":{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}}`+"\n\n",
				cutChatPrompt, half, cutChatPrompt+half),
			"data: [DONE]\n\n")
	}
	admitted := func(chunks []string, cut bool) (n int, charged float64) {
		s, sink := newTestServer(t, func(o *Options) {
			o.Gate = gate.New(gate.Options{Store: memstore.New(memstore.Options{})})
		})
		for range 100 {
			script := streamScript("/v1/chat/completions", cutChatBody, chunks, cut)
			script[0] = reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions", "content-type", "application/json",
				"authorization", "Bearer sk-provider", "helicone-ratelimit-policy", "20;w=3600;u=cents")
			f := &fakeStream{ctx: context.Background(), script: script, end: cancelled}
			_ = s.Process(f)
			recs := sink.Records()
			last := recs[len(recs)-1]
			if last.RateLimited {
				return n, charged
			}
			n++
			charged += last.CostUSD
		}
		t.Fatal("the budget never refused a call")
		return 0, 0
	}
	full, fullUSD := admitted(fullHalf(), false)
	cut, cutUSD := admitted(openAICut(half), true)
	if cut != full {
		t.Errorf("a 20-cent budget admitted %d cut streams ($%.4f) and %d full ones ($%.4f): want as many", cut, cutUSD, full, fullUSD)
	}
	if full < 2 {
		t.Errorf("only %d calls within the budget: the test proves nothing", full)
	}
	t.Logf("20-cent budget: %d full streams ($%.4f), %d cut ones ($%.4f)", full, fullUSD, cut, cutUSD)
}

// A call that is not streamed, cut before its response (or before a
// buffered response's body), was sent: its prompt is billed and counted
// (estimated), the completion it never saw is not. A call cut before it
// was sent costs nothing.
func TestCutCallBeforeItsAnswerCountsThePrompt(t *testing.T) {
	body := strings.Replace(cutChatBody, `"stream":true`, `"stream":false`, 1)
	headers := reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions", "content-type", "application/json", "authorization", "Bearer sk-provider")
	for _, tc := range []struct {
		name   string
		script []*extprocv3.ProcessingRequest
		prompt int64
	}{
		{"before the response", []*extprocv3.ProcessingRequest{headers, reqBody(body)}, cutChatPrompt},
		{"before the body", []*extprocv3.ProcessingRequest{headers, reqBody(body), respHeaders(false, ":status", "200", "content-type", "application/json")}, cutChatPrompt},
		{"before it was sent", []*extprocv3.ProcessingRequest{headers}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, sink := newTestServer(t)
			_, _ = run(s, cancelled, tc.script...)
			r := sink.Records()[0]
			if !within(r.PromptTokens, tc.prompt) || r.CompletionTokens != 0 {
				t.Fatalf("tokens %d/%d, want %d/0", r.PromptTokens, r.CompletionTokens, tc.prompt)
			}
			sent := tc.prompt > 0
			if (r.UsageSource == record.UsageEstimated) != sent || (r.CostUSD > 0) != sent || r.Status != record.StatusClientCancelled {
				t.Errorf("usage_source %q cost %v status %d", r.UsageSource, r.CostUSD, r.Status)
			}
		})
	}
}

// A client that goes away just as the last chunk of a stream passes, so
// that the reply to it cannot be sent, still had the whole answer: its
// call is charged to the cents budget like any other, not free.
func TestStreamCutWhileAnsweringItsLastChunkIsCharged(t *testing.T) {
	s, sink := newTestServer(t, func(o *Options) {
		o.Gate = gate.New(gate.Options{Store: memstore.New(memstore.Options{})})
	})
	call := func(failLastReply bool) *record.Record {
		script := streamScript("/v1/chat/completions", cutChatBody, openAICut(cutN), false)
		// A one-cent budget: one o1-pro stream of these tokens spends it.
		script[0] = reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions", "content-type", "application/json",
			"authorization", "Bearer sk-provider", "helicone-ratelimit-policy", "1;w=3600;u=cents")
		f := &fakeStream{ctx: context.Background(), script: script, end: cancelled}
		if failLastReply {
			f.failSendAt = len(script)
		}
		_ = s.Process(f)
		recs := sink.Records()
		return recs[len(recs)-1]
	}
	first := call(true)
	if first.RateLimited || first.CostUSD*100 < 1 {
		t.Fatalf("first stream logged as rate-limited %v at $%.4f: want admitted, costing more than the budget", first.RateLimited, first.CostUSD)
	}
	if second := call(false); !second.RateLimited {
		t.Fatalf("a stream whose last reply could not be sent was not charged: the next call was admitted (status %d)", second.Status)
	}
}
