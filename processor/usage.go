package processor

import (
	"cmp"

	"github.com/tollgate-dev/tollgate/policies/tokenlimit"
	"github.com/tollgate-dev/tollgate/provider/tokens"
	"github.com/tollgate-dev/tollgate/record"
)

// estimateUsage fills the counts a successful stream ended without: a
// client that hangs up, an upstream reset or a timeout cuts an OpenAI
// stream before its usage chunk (its only count) and an Anthropic one
// before message_delta (message_start's output_tokens is a placeholder),
// and the provider bills what it produced all the same. The prompt is
// counted from the body sent, the completion from the text, tool-call
// arguments and thinking streamed, with the model's tokenizer (an
// estimate for models without a public one); counts the provider did
// report are kept. The record says so (usage_source "estimated"), and the
// cost and the cents charge include the counts (finish).
//
// A call cut before its response came, or before a buffered response's
// body did, was sent all the same: the provider read its prompt (and a
// call that is not streamed is usually answered whole, unseen). Its prompt
// is counted; the completion, unknown, is not.
func (s *Server) estimateUsage(c *call) {
	if c.free || !(c.status == 0 && c.forwarded || c.status >= 200 && c.status <= 299) {
		return
	}
	var promptOK, completionOK bool
	if c.stream != nil {
		promptOK, completionOK = c.stream.Reported()
	}
	if promptOK && completionOK {
		return
	}
	rec := c.rec
	model := cmp.Or(rec.ResponseModel, s.azurePriceModel(c), rec.Model)
	estimated := false
	if !completionOK && c.stream != nil {
		if n := c.stream.OutputTokens(tokens.ForModel(model)); n > rec.CompletionTokens {
			rec.CompletionTokens = n
			estimated = true
		}
	}
	if !promptOK && len(c.promptBody) > 0 {
		if n, ok := tokenlimit.CountPrompt(c.promptBody, model); ok && int64(n) > rec.PromptTokens {
			rec.PromptTokens = int64(n)
			estimated = true
		}
	}
	if estimated {
		rec.UsageSource = record.UsageEstimated
	}
}
