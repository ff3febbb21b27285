package sdktest

import (
	"math"
	"testing"

	"github.com/tollgate-dev/tollgate/mockprovider"
	"github.com/tollgate-dev/tollgate/record"
)

// price is provider/prices.yaml's entry for a model the tests call, in
// USD per million tokens.
type price struct{ input, output float64 }

var prices = map[string]price{
	"gpt-4o-mini":                             {0.15, 0.60},
	"claude-sonnet-4-5":                       {3.00, 15.00},
	"gemini-2.0-flash":                        {0.10, 0.40},
	"meta-llama/Llama-3.3-70B-Instruct-Turbo": {0.88, 0.88},
}

// want is what one SDK call should have seen and Tollgate recorded.
type want struct {
	provider   string
	model      string // the record's model
	priceModel string // the model it is priced as ("" for model)
	stream     bool
	tools      bool
	prompt     int64 // the mock's count for the body it received
}

// checkResult asserts what the SDK returned: the mock's text or its tool
// call, decoded by the SDK from the stream or the body, and the usage.
func checkResult(t *testing.T, name string, r result, w want) {
	t.Helper()
	if w.tools {
		if len(r.ToolCalls) != 1 || r.ToolCalls[0].Name != "get_weather" || r.ToolCalls[0].Arguments != mockprovider.ToolArguments ||
			r.ToolCalls[0].ID == "" || (r.FinishReason != "tool_calls" && r.FinishReason != "tool_use") {
			t.Errorf("%s: tool calls %+v finish %q, want one get_weather(%s)", name, r.ToolCalls, r.FinishReason, mockprovider.ToolArguments)
		}
	} else if r.Content != mockprovider.CompletionText || len(r.ToolCalls) != 0 {
		t.Errorf("%s: content %q tool calls %+v, want the mock's text", name, r.Content, r.ToolCalls)
	}
	if r.Usage.Input != w.prompt || r.Usage.Output != mockprovider.CompletionTokens {
		t.Errorf("%s: usage %+v, want %d in, %d out", name, r.Usage, w.prompt, mockprovider.CompletionTokens)
	}
	if w.stream && r.Chunks < 3 {
		t.Errorf("%s: %d stream events, want the stream event by event", name, r.Chunks)
	}
}

// checkRecord asserts the record names the provider and model, the
// tokens, the stream and the cost at the model's price.
func checkRecord(t *testing.T, name string, rec *record.Record, w want) {
	t.Helper()
	if rec == nil {
		t.Errorf("%s: no record", name)
		return
	}
	pm := w.priceModel
	if pm == "" {
		pm = w.model
	}
	p, ok := prices[pm]
	if !ok {
		t.Fatalf("%s: no test price for %s", name, pm)
	}
	cost := (float64(w.prompt)*p.input + float64(mockprovider.CompletionTokens)*p.output) / 1e6
	if rec.Status != 200 || rec.Provider != w.provider || rec.Model != w.model || rec.Stream != w.stream ||
		rec.PromptTokens != w.prompt || rec.CompletionTokens != mockprovider.CompletionTokens ||
		math.Abs(rec.CostUSD-cost) > 1e-9*cost {
		t.Errorf("%s: record status %d provider %q model %q stream %v tokens %d/%d cost %v; want 200 %q %q %v %d/%d %v",
			name, rec.Status, rec.Provider, rec.Model, rec.Stream, rec.PromptTokens, rec.CompletionTokens, rec.CostUSD,
			w.provider, w.model, w.stream, w.prompt, mockprovider.CompletionTokens, cost)
	}
}
