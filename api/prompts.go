package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate-dev/tollgate/policies/prompt"
)

// The prompt routes (DESIGN §4, "Prompts"):
//
//	POST /v1/prompts/{id}/versions      publish {"model", "messages", "system"}
//	                                    → 201 {"id", "version"}; 409 for a file's id
//	GET  /v1/prompts/{id}               {"id", "versions": [version, …]}
//	GET  /v1/prompts/{id}/versions/{n}  one version (n a number or "latest")

func (s *server) routePrompts(mux *http.ServeMux) {
	mux.Handle("POST /v1/prompts/{id}/versions", s.admin(s.publishPrompt))
	mux.Handle("GET /v1/prompts/{id}", s.admin(s.listPromptVersions))
	mux.Handle("GET /v1/prompts/{id}/versions/{version}", s.admin(s.getPromptVersion))
	s.routeHeliconePrompts(mux)
}

// promptVersionJSON is one version as the API shows it.
type promptVersionJSON struct {
	ID        string          `json:"id,omitempty"` // set when shown alone
	Version   int             `json:"version"`
	Model     string          `json:"model,omitempty"`
	Messages  json.RawMessage `json:"messages"`
	System    json.RawMessage `json:"system,omitempty"`
	Variables []string        `json:"variables"`            // the placeholders it uses
	CreatedAt *time.Time      `json:"created_at,omitempty"` // absent for a file's version
	Source    string          `json:"source"`               // "api" or "file"
	File      string          `json:"file,omitempty"`
}

func toPromptVersionJSON(v prompt.Version) promptVersionJSON {
	out := promptVersionJSON{
		Version: v.Version, Model: v.Model, Messages: v.Messages, System: v.System,
		Variables: prompt.Placeholders(v), Source: "api", File: v.File,
	}
	if v.File != "" {
		out.Source = "file"
	}
	if !v.CreatedAt.IsZero() {
		t := v.CreatedAt.UTC()
		out.CreatedAt = &t
	}
	return out
}

func (s *server) needPrompts(w http.ResponseWriter) bool {
	if s.o.Prompts == nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "prompts are not configured")
		return false
	}
	return true
}

// publishPrompt: POST /v1/prompts/{id}/versions.
func (s *server) publishPrompt(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := prompt.ValidateID(id); err != nil {
		s.promptFailed(w, err)
		return
	}
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	tpl, field, why := decodePromptTemplate(body)
	if field != "" {
		badParam(w, field, why)
		return
	}
	if !s.needPrompts(w) {
		return
	}
	v, err := s.o.Prompts.PublishPrompt(r.Context(), id, tpl)
	if err != nil {
		s.promptFailed(w, err)
		return
	}
	s.o.Logger.Info("api: prompt published", "prompt_id", id, "version", v.Version)
	writeJSON(w, http.StatusCreated, map[string]any{"id": id, "version": v.Version})
}

// decodePromptTemplate reads a publish body; field != "" names what is
// wrong with it.
func decodePromptTemplate(body []byte) (tpl prompt.Template, field, why string) {
	var in map[string]json.RawMessage
	if err := json.Unmarshal(body, &in); err != nil || in == nil {
		return tpl, "body", `must be a JSON object {"model": "…", "messages": [...]}`
	}
	unknown := make([]string, 0, len(in))
	for k := range in {
		if k != "model" && k != "messages" && k != "system" {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return tpl, unknown[0], "is not a field of a prompt version (model, messages, system)"
	}
	if m := bytes.TrimSpace(in["model"]); len(m) > 0 && string(m) != "null" && json.Unmarshal(m, &tpl.Model) != nil {
		return tpl, "model", "must be a string"
	}
	tpl.Messages, tpl.System = in["messages"], in["system"]
	tpl, err := prompt.NormalizeTemplate(tpl)
	var fe *prompt.FieldError
	if errors.As(err, &fe) {
		return tpl, fe.Field, fe.Reason
	}
	return tpl, "", ""
}

// listPromptVersions: GET /v1/prompts/{id}.
func (s *server) listPromptVersions(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := prompt.ValidateID(id); err != nil {
		s.promptFailed(w, err)
		return
	}
	if !s.needPrompts(w) {
		return
	}
	vs, err := s.o.Prompts.PromptVersions(r.Context(), id)
	if err != nil {
		s.promptFailed(w, err)
		return
	}
	out := struct {
		ID       string              `json:"id"`
		Versions []promptVersionJSON `json:"versions"`
	}{ID: id, Versions: make([]promptVersionJSON, 0, len(vs))}
	for _, v := range vs {
		out.Versions = append(out.Versions, toPromptVersionJSON(v))
	}
	writeJSON(w, http.StatusOK, out)
}

// getPromptVersion: GET /v1/prompts/{id}/versions/{version}.
func (s *server) getPromptVersion(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := prompt.ValidateID(id); err != nil {
		s.promptFailed(w, err)
		return
	}
	n := 0
	if raw := r.PathValue("version"); !strings.EqualFold(raw, "latest") {
		var err error
		if n, err = strconv.Atoi(raw); err != nil || n < 1 {
			badParam(w, "version", "want a positive integer or latest")
			return
		}
	}
	if !s.needPrompts(w) {
		return
	}
	v, err := s.o.Prompts.PromptVersion(r.Context(), id, n)
	if err != nil {
		s.promptFailed(w, err)
		return
	}
	out := toPromptVersionJSON(v)
	out.ID = id
	writeJSON(w, http.StatusOK, out)
}

// promptFailed maps a prompt error to its status.
func (s *server) promptFailed(w http.ResponseWriter, err error) {
	var fe *prompt.FieldError
	switch {
	case errors.As(err, &fe):
		badParam(w, fe.Field, fe.Reason)
	case errors.Is(err, prompt.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, prompt.ErrReadOnly):
		writeError(w, http.StatusConflict, "conflict", err.Error())
	case errors.Is(err, prompt.ErrNoStore):
		writeError(w, http.StatusServiceUnavailable, "unavailable", err.Error())
	default:
		s.o.Logger.Error("api: prompt store failed", "err", err)
		writeError(w, http.StatusServiceUnavailable, "unavailable", "prompt store unavailable")
	}
}
