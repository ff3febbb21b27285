package processor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/tollgate-dev/tollgate/helicone"
	"github.com/tollgate-dev/tollgate/policies/egress"
	"github.com/tollgate-dev/tollgate/policies/prompt"
	"github.com/tollgate-dev/tollgate/provider"
	"github.com/tollgate-dev/tollgate/record"
)

// Prompts finds a prompt template by id and version (0: the latest); a
// prompt.Library. Most lookups are answered from its cache.
type Prompts interface {
	PromptVersion(ctx context.Context, id string, version int) (prompt.Version, error)
}

// promptObserver versions a prompt from the calls that name it, as
// Helicone does with its legacy prompts; a prompt.Library. The versions
// are the calling tenant's and only number its calls: they are never
// rendered. Observe never waits for the store.
type promptObserver interface {
	Observe(tenant, id string, tpl prompt.Template) int
}

// promptInputPrefix names the properties a prompt's variables are logged as.
const promptInputPrefix = "prompt."

// unknownBodyPrompt is Helicone's answer to a prompt_id it has no version
// of (worker/src/lib/db/PromptStore.ts).
const unknownBodyPrompt = "Invalid prompt ID - no valid version found"

// wantsPrompt says whether the body phase has prompt work: a
// Helicone-Prompt-Id, or an OpenAI chat completion whose body may name a
// prompt itself (Helicone's prompt_id … fields).
func (s *Server) wantsPrompt(c *call, body []byte) bool {
	if c.helicone.PromptID != "" {
		return true
	}
	return c.endpoint == provider.EndpointChatCompletions && c.format == provider.OpenAI && namesPromptField(body)
}

// namesPromptField says whether body holds "prompt_id", "inputs",
// "version_id" or "environment" (quotes included) anywhere. One pass over
// the body's quotes: four bytes.Contains took a pass each, and JSON is
// mostly quotes for them to stop at (a seventh of a call's CPU).
func namesPromptField(body []byte) bool {
	for i := 0; ; {
		j := bytes.IndexByte(body[i:], '"')
		if j < 0 {
			return false
		}
		i += j + 1
		rest := body[i:]
		if bytes.HasPrefix(rest, []byte(`prompt_id"`)) || bytes.HasPrefix(rest, []byte(`inputs"`)) ||
			bytes.HasPrefix(rest, []byte(`version_id"`)) || bytes.HasPrefix(rest, []byte(`environment"`)) {
			return true
		}
	}
}

// applyPrompt does a call's prompt work on its body and returns the body
// to send, nil when it is unchanged. In order:
//   - a chat completion body naming a prompt (prompt_id …) is compiled
//     from the stored version, as Helicone's gateway does;
//   - Helicone-Prompt-Id with a request to render (Helicone-Prompt-Variables,
//     or a chat body without messages) fills the stored template,
//     Tollgate's own prompts;
//   - otherwise Helicone-Prompt-Id tags the call, as Helicone's legacy
//     prompts do: markers are taken out, their values logged, and the
//     template seen versions the tenant's prompt in the background.
//
// Rendering and compiling read published prompts only (the API's and the
// prompt folder's, the operator's, shared by every tenant); a tenant's
// seen versions are never rendered, for it or for anyone else.
func (s *Server) applyPrompt(c *call, body []byte) ([]byte, *clientError) {
	if c.endpoint == provider.EndpointChatCompletions && c.format == provider.OpenAI {
		p, named, err := prompt.ParseBodyPrompt(body)
		if err != nil {
			return nil, heliconePromptError(err.Error())
		}
		if named {
			return s.compileBodyPrompt(c, body, p)
		}
	}
	if c.helicone.PromptID == "" {
		return nil, nil
	}
	mode, cerr := promptMode(c)
	if cerr != nil {
		return nil, cerr
	}
	if strings.TrimSpace(c.helicone.PromptVariables) != "" || needsTemplate(c, body) {
		return s.renderPrompt(c, body)
	}
	out := s.tagPrompt(c, body)
	if mode == "deactivated" {
		return nil, nil // tagged and versioned, but the provider gets the markers
	}
	return out, nil
}

// promptMode reads Helicone-Prompt-Mode: production (the default) and
// testing take the markers out of what the provider gets, deactivated
// leaves them in; anything else is an error, as Helicone's
// RequestWrapper.getPromptMode throws "Invalid prompt mode".
func promptMode(c *call) (string, *clientError) {
	for _, h := range c.reqHeaders {
		if !strings.EqualFold(h.GetKey(), promptModeHeader) {
			continue
		}
		switch v := strings.TrimSpace(headerValue(h)); v {
		case "", "production", "testing", "deactivated":
			return v, nil
		default:
			return "", badRequest("invalid_header", "%v", &helicone.BadHeaderError{Header: "Helicone-Prompt-Mode",
				Reason: "must be production, testing or deactivated, got " + strconv.Quote(helicone.Truncate(v, 32))})
		}
	}
	return "", nil
}

const promptModeHeader = "helicone-prompt-mode"

// needsTemplate: a chat body without messages cannot go to the provider
// as it is, so it asks for the template (the way Tollgate's prompts were
// always called: -d '{}'). Helicone-style calls always carry their
// messages.
func needsTemplate(c *call, body []byte) bool {
	return (c.endpoint == provider.EndpointChatCompletions || c.endpoint == provider.EndpointMessages) &&
		!gjson.GetBytes(body, "messages").Exists()
}

// renderPrompt fills Helicone-Prompt-Id's template with
// Helicone-Prompt-Variables into the body: the template's messages (and
// system) replace the request's, its model applies when the request names
// none. Values go in as JSON strings, so they can never change the body's
// structure.
func (s *Server) renderPrompt(c *call, body []byte) ([]byte, *clientError) {
	hh, rec := &c.helicone, c.rec
	var fe *prompt.FieldError
	if err := prompt.ValidateID(hh.PromptID); errors.As(err, &fe) {
		return nil, badRequest("invalid_header", "%v", &helicone.BadHeaderError{Header: helicone.Canonical(helicone.PromptID), Reason: fe.Reason})
	}
	vars, err := prompt.ParseVariables([]byte(hh.PromptVariables))
	if err != nil {
		return nil, badRequest("invalid_header", "%v", err)
	}
	if s.prompts == nil {
		return nil, &clientError{status: 503, code: "prompts_unavailable", message: "Helicone-Prompt-Id: prompts are not configured on this gateway"}
	}
	v, err := s.prompts.PromptVersion(c.ctx, hh.PromptID, hh.PromptVersion)
	switch {
	case errors.Is(err, prompt.ErrNotFound):
		return nil, badRequest("unknown_prompt", "Helicone-Prompt-Id: %v", err)
	case err != nil:
		s.log.Warn("prompt store unavailable", "prompt", hh.PromptID, "err", err)
		return nil, &clientError{status: 503, code: "prompts_unavailable", message: "Helicone-Prompt-Id: the prompt store is unavailable; try again"}
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

// tagPrompt is Helicone's legacy prompt: the call is tagged with the id
// (and Helicone-Prompt-Version when sent), each
// <helicone-prompt-input key="k">value</helicone-prompt-input> is replaced
// by its value for the provider and logged as the property prompt.k, and
// the template (the body with the markers closed) versions the tenant's prompt
// off the request path. A body that is not JSON goes on unchanged. Returns the
// body without markers, nil when it had none.
func (s *Server) tagPrompt(c *call, body []byte) []byte {
	hh, rec := &c.helicone, c.rec
	rec.PromptID = helicone.Truncate(hh.PromptID, prompt.MaxIDLen)
	rec.PromptVersion = int32(hh.PromptVersion)
	marked, err := prompt.ExtractMarkers(body)
	if err != nil {
		return nil
	}
	// The template is request content: a call whose body is kept out of
	// the log (or redacted) does not make a version either.
	d := c.egress
	keep := !hh.OmitRequest && (d == nil || d.RequestBody != egress.LogOmit && d.RequestBody != egress.LogRedact)
	if obs, ok := s.prompts.(promptObserver); ok && keep {
		if tpl, ok := prompt.TemplateOf(marked.Template); ok {
			if n := obs.Observe(rec.Tenant, hh.PromptID, tpl); rec.PromptVersion == 0 {
				rec.PromptVersion = int32(n)
			}
		}
	}
	if marked.Inputs == nil {
		return nil
	}
	s.logPromptInputs(c, marked.Inputs)
	return marked.Body
}

// compileBodyPrompt merges the stored version a chat completion body names
// (prompt_id, version_id, environment) with the body and its inputs, as
// Helicone's gateway does (PromptManager.getMergedPromptBody): the
// version is version_id when it is a version of the prompt, else the
// latest, as Helicone falls back to production for an unknown version or
// environment (Tollgate keeps no environments). Errors are Helicone's:
// 400 with {"error": message}.
func (s *Server) compileBodyPrompt(c *call, body []byte, p prompt.BodyPrompt) ([]byte, *clientError) {
	rec := c.rec
	if s.prompts == nil || prompt.ValidateID(p.ID) != nil {
		return nil, heliconePromptError(unknownBodyPrompt)
	}
	var v prompt.Version
	err := prompt.ErrNotFound
	if n := p.VersionNumber(); n > 0 {
		v, err = s.prompts.PromptVersion(c.ctx, p.ID, n)
	}
	if errors.Is(err, prompt.ErrNotFound) {
		v, err = s.prompts.PromptVersion(c.ctx, p.ID, 0)
	}
	switch {
	case errors.Is(err, prompt.ErrNotFound):
		return nil, heliconePromptError(unknownBodyPrompt)
	case err != nil:
		s.log.Warn("prompt store unavailable", "prompt", p.ID, "err", err)
		return nil, &clientError{status: 503, code: "prompts_unavailable", message: "prompt_id: the prompt store is unavailable; try again"}
	}
	out, err := prompt.Compile(body, v, p.Inputs)
	var bad *prompt.InvalidInputsError
	switch {
	case errors.As(err, &bad):
		return nil, heliconePromptError(bad.Error())
	case err != nil:
		return nil, badRequest("invalid_body", "request body cannot take the prompt: %v", err)
	}
	rec.PromptID, rec.PromptVersion = v.ID, int32(v.Version)
	if len(p.Inputs) > 0 {
		vars := make(map[string]string, len(p.Inputs))
		for name, raw := range p.Inputs {
			vars[name] = prompt.InputText(raw)
		}
		s.logPromptInputs(c, vars)
	}
	return out, nil
}

// heliconePromptError is a prompt error as Helicone's gateway answers it:
// 400, {"error": message}, type invalid_prompt.
func heliconePromptError(message string) *clientError {
	raw, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{message})
	return &clientError{status: 400, code: "invalid_prompt", message: message, raw: raw}
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
