package processor

import (
	"context"
	"strconv"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/tollgate-dev/tollgate/helicone"
	"github.com/tollgate-dev/tollgate/policies/screen"
	"github.com/tollgate-dev/tollgate/provider"
	"github.com/tollgate-dev/tollgate/record"
)

// Screen runs the pre-call checks Helicone-Moderations-Enabled and
// Helicone-LLM-Security-Enabled ask for (screen.Screen). Check returns once
// they are done, within their timeouts, which are kept below Envoy's
// message_timeout: the body-phase reply waits for them.
type Screen interface {
	Check(ctx context.Context, req screen.Request) screen.Verdict
}

// The record's properties a check leaves: its outcome (passed, flagged,
// error, timeout, busy, skipped, unconfigured) and, when it called out,
// its time in ms.
var screenProperty = map[string]string{
	screen.CheckModeration:  "tollgate-moderation",
	screen.CheckLLMSecurity: "tollgate-llm-security",
}

// screenCall runs the checks a call asked for, after the gate: Helicone
// answers from its cache and applies rate limits first
// (worker/src/lib/HeliconeProxyRequest/ProxyForwarder.ts), so a cache hit
// or a 429 costs no check. Only OpenAI chat completions are checked, as
// there (provider OPENAI, a chat/completions path); another call that asks
// goes on unchecked, with a warning. A call that asks for neither returns
// at the first line.
func (s *Server) screenCall(c *call, body []byte) *extprocv3.ProcessingResponse {
	hh := &c.helicone
	if !hh.Moderations && !hh.LLMSecurity {
		return nil
	}
	if c.endpoint != provider.EndpointChatCompletions || c.rec.Provider != provider.OpenAI {
		s.screenWarning(c, "applies to OpenAI chat completions only (/v1/chat/completions to OpenAI); this call was not checked")
		return nil
	}
	if s.screen == nil {
		s.screenWarning(c, "is not available on this gateway; the call was not checked")
		return nil
	}
	v := s.screen.Check(c.ctx, screen.Request{
		Body:          body,
		Moderation:    hh.Moderations,
		LLMSecurity:   hh.LLMSecurity,
		Advanced:      hh.LLMSecurityAdvanced,
		Authorization: s.openAICredential(c),
		Organization:  findHeader(c.reqHeaders, "openai-organization"),
		Project:       findHeader(c.reqHeaders, "openai-project"),
		RequestID:     c.rec.RequestID,
	})
	rec := c.rec
	for _, r := range v.Results {
		key := screenProperty[r.Check]
		rec.Properties = append(rec.Properties, record.Property{Key: key, Value: string(r.Outcome)})
		switch r.Outcome {
		case screen.Skipped:
		case screen.Unconfigured:
			hh.Warnings.Add(helicone.LLMSecurityEnabled, "no classifier is configured on this gateway (--llm-security-url); the call was not checked")
		default:
			rec.Properties = append(rec.Properties, record.Property{Key: key + "-ms", Value: strconv.FormatInt(r.Duration.Milliseconds(), 10)})
		}
	}
	rec.Properties = record.SortProperties(rec.Properties)
	if b := v.Block; b != nil {
		return s.reject(c, &clientError{status: b.Status, code: b.Code, message: b.Reason, raw: b.Body})
	}
	return nil
}

// screenWarning notes, for each check asked for, why it did not run.
func (s *Server) screenWarning(c *call, reason string) {
	if c.helicone.Moderations {
		c.helicone.Warnings.Add(helicone.ModerationsEnabled, reason)
	}
	if c.helicone.LLMSecurity {
		c.helicone.Warnings.Add(helicone.LLMSecurityEnabled, reason)
	}
}

// openAICredential is the OpenAI key the call goes to the provider with:
// its Authorization, or the provider key a key-vault proxy key stands for
// (swapped in the request-headers phase, vault.go), as Helicone's
// moderation call carries the request's headers after its own swap
// (worker/src/lib/managers/ModerationManager.ts).
func (s *Server) openAICredential(c *call) string {
	if c.swappedHeader == "authorization" {
		return c.swappedValue // the very key the call goes on with
	}
	return findHeader(c.reqHeaders, "authorization") // a proxy key here was refused already
}
