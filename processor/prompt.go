package processor

import (
	"context"
	"errors"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/tollgate-dev/tollgate/helicone"
	"github.com/tollgate-dev/tollgate/policies/egress"
	"github.com/tollgate-dev/tollgate/policies/prompt"
	"github.com/tollgate-dev/tollgate/record"
)

// Prompts finds a prompt template by id and version (0: the latest); a
// prompt.Library. Most lookups are answered from its cache.
type Prompts interface {
	PromptVersion(ctx context.Context, id string, version int) (prompt.Version, error)
}

// promptInputPrefix names the properties a prompt's variables are logged as.
const promptInputPrefix = "prompt."

// applyPrompt renders Helicone-Prompt-Id's template with
// Helicone-Prompt-Variables into the body: the template's messages (and
// system) replace the request's, its model applies when the request names
// none. Values go in as JSON strings, so they can never change the body's
// structure.
func (s *Server) applyPrompt(c *call, body []byte) ([]byte, *clientError) {
	hh, rec := &c.helicone, c.rec
	if s.prompts == nil {
		return nil, &clientError{status: 503, code: "prompts_unavailable", message: "Helicone-Prompt-Id: prompts are not configured on this gateway"}
	}
	v, err := s.prompts.PromptVersion(c.ctx, hh.PromptID, hh.PromptVersion)
	switch {
	case errors.Is(err, prompt.ErrNotFound):
		return nil, badRequest("unknown_prompt", "Helicone-Prompt-Id: %v", err)
	case err != nil:
		s.log.Warn("prompt store unavailable", "prompt", helicone.Truncate(hh.PromptID, 128), "err", err)
		return nil, &clientError{status: 503, code: "prompts_unavailable", message: "Helicone-Prompt-Id: the prompt store is unavailable; try again"}
	}
	vars, err := prompt.ParseVariables([]byte(hh.PromptVariables))
	if err != nil {
		return nil, badRequest("invalid_header", "%v", err)
	}
	rendered, err := prompt.RenderVars(v, vars)
	if err != nil {
		return nil, badRequest("prompt_variable_missing", "%v", err)
	}
	if len(body) == 0 || !gjson.ValidBytes(body) || !gjson.ParseBytes(body).IsObject() {
		body = []byte("{}")
	}
	out, err := sjson.SetRawBytes(body, "messages", rendered.Messages)
	if err == nil && rendered.System != nil {
		out, err = sjson.SetRawBytes(out, "system", rendered.System)
	}
	if err == nil && rendered.Model != "" && gjson.GetBytes(out, "model").String() == "" {
		out, err = sjson.SetBytes(out, "model", rendered.Model)
	}
	if err != nil {
		return nil, badRequest("invalid_body", "request body cannot take the prompt: %v", err)
	}
	rec.PromptID, rec.PromptVersion = v.ID, int32(v.Version)
	s.logPromptInputs(c, vars)
	return out, nil
}

// logPromptInputs keeps the variables as properties: they are request
// content, so they follow the request body's logging (Helicone-Omit-Request,
// the egress policy's omit or redact).
func (s *Server) logPromptInputs(c *call, vars map[string]string) {
	d := c.egress
	if c.helicone.OmitRequest || (d != nil && d.RequestBody == egress.LogOmit) {
		return
	}
	rec := c.rec
	for name, value := range vars {
		if d != nil && d.RequestBody == egress.LogRedact {
			value = string(d.Redact([]byte(value)))
		}
		rec.Properties = append(rec.Properties, record.Property{Key: promptInputPrefix + name, Value: helicone.Truncate(value, helicone.MaxPropertyValueLength)})
	}
	rec.Properties = record.SortProperties(rec.Properties)
}
