package processor

import (
	"cmp"
	"fmt"
	"strconv"

	"github.com/tollgate-dev/tollgate/helicone"
	"github.com/tollgate-dev/tollgate/policies/tokenlimit"
	"github.com/tollgate-dev/tollgate/provider"
	"github.com/tollgate-dev/tollgate/record"
)

// limitTokens applies Helicone-Token-Limit-Exception-Handler to the body
// (policies/tokenlimit), before the body is parsed, priced, checked against
// the egress policy and keyed for the cache, so that all of them see what
// the provider will get: with fallback, the model sent is the one logged,
// priced and checked. It runs after a prompt template is rendered, as the
// rendered prompt is what must fit. A call without the header returns at
// the first line.
//
// It stays before the gate (admit) although a cache hit or a rate-limited
// call then pays for it too. After the gate, the egress check, which runs
// before it, would judge the body's model list ("gpt-4o,gpt-4o-mini")
// rather than the model fallback sends, and the cache would key the body
// as the client wrote it rather than the body its stored reply answers (the
// same only while the price table's windows stay the same); moving the
// parse, the egress check and the key after it too would split the gate's
// decision in two. The work is bounded instead: Apply encodes at most
// tokenlimit's exactWork bytes (tens of milliseconds on the slowest input)
// and estimates past it, and cuts no prompt of more than
// tokenlimit.MaxTexts texts or messages (a warning says so), so running it
// for a call the gate then answers costs little.
//
// The record notes what was done in properties: tollgate-token-limit (the
// outcome: fits, truncated, middle-out, fallback, over, unknown-context,
// no-room, skipped), and when known tollgate-token-limit-model (the model
// measured against), -limit (the prompt tokens allowed), -tokens (the
// prompt's as counted) and -sent (after a cut). Helicone notes nothing.
func (s *Server) limitTokens(c *call, body []byte) (out []byte, changed bool) {
	raw := c.helicone.TokenLimit
	if raw == "" {
		return body, false
	}
	mode, ok := tokenlimit.ParseMode(raw)
	if !ok {
		// Helicone's switch over the handler has no case for another
		// value and leaves the body alone (HeliconeProxyRequest.ts,
		// applyTokenLimitExceptionHandler).
		c.helicone.Warnings.Add(helicone.TokenLimitExceptionHandler,
			fmt.Sprintf("%q is not truncate, middle-out or fallback; the prompt is sent as is", helicone.Truncate(raw, 64)))
		return body, false
	}
	switch c.endpoint {
	case provider.EndpointChatCompletions, provider.EndpointMessages, provider.EndpointResponses:
	default:
		c.helicone.Warnings.Add(helicone.TokenLimitExceptionHandler,
			"applies to chat completions, messages and responses; this body is sent as is")
		return body, false
	}
	format := c.format
	r := tokenlimit.Apply(tokenlimit.Request{
		Mode:  mode,
		Body:  body,
		Model: cmp.Or(c.helicone.ModelOverride, s.azurePriceModel(c)),
		Context: func(model string) (int, bool) {
			return s.prices.Context(format, model)
		},
	})
	if r.TooManyTexts {
		c.helicone.Warnings.Add(helicone.TokenLimitExceptionHandler,
			fmt.Sprintf("the prompt has more than %d texts or messages, too many to cut; it is sent as is", tokenlimit.MaxTexts))
	}
	rec := c.rec
	note := func(key, value string) {
		rec.Properties = append(rec.Properties, record.Property{Key: "tollgate-token-limit" + key, Value: value})
	}
	note("", string(r.Outcome))
	if r.Model != "" {
		note("-model", helicone.Truncate(r.Model, 256))
	}
	if r.Limit > 0 {
		note("-limit", strconv.Itoa(r.Limit))
	}
	if r.Tokens > 0 {
		note("-tokens", strconv.Itoa(r.Tokens))
	}
	if r.Body != nil && r.SentSize > 0 {
		note("-sent", strconv.Itoa(r.SentSize))
	}
	rec.Properties = record.SortProperties(rec.Properties)
	if r.Body == nil {
		return body, false
	}
	return r.Body, true
}
