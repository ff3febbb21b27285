package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate-dev/tollgate/policies/prompt"
)

// Helicone's prompt SDKs (HeliconePromptManager in @helicone/helpers and
// helicone-helpers for Python) find a version through three query routes
// and then download its body from the version's s3_url, with no
// credentials. Tollgate answers the same routes from its prompt store and
// makes s3_url a signed link to the body here:
//
//	POST /v1/prompt-2025/query/production-version  {"promptId"}
//	POST /v1/prompt-2025/query/environment-version {"promptId", "environment"}
//	POST /v1/prompt-2025/query/version             {"promptVersionId"}
//	    → {"data": {id, model, prompt_id, major_version, minor_version,
//	                commit_message, environment, created_at, s3_url}, "error": null}
//	GET  /v1/prompt-2025/body/{id}/{version}?expires=…&sig=…
//	    → the version as a chat completion body {"model", "messages"}
//
// A version's id is "<prompt id>@<number>" (also what a body's version_id
// takes); Tollgate keeps no environments, so every environment is the
// latest version, as the gateway's fallback has it.
//
// The routes serve published prompts only (the API's and the prompt
// folder's: the operator's, the same for every tenant), to a caller
// heliconeCaller admits, as the SDK calls them with its Helicone key. A
// tenant's seen versions (prompt.Library.Observe) are never served.
//
// The link is signed with a key derived from a secret every replica shares
// (--api-key, else --prompt-link-secret), so that any replica serves a
// link any other issued; without either, s3_url is left out and the SDK
// fails with "No S3 URL provided" (it fetches only a URL). The link is
// built on --dashboard-url, the public address of the API's port, when
// set; otherwise on the Host (and X-Forwarded-Proto) of the query, which
// the caller controls: a false one only misleads that caller, as the link
// goes back to it alone.

func (s *server) routeHeliconePrompts(mux *http.ServeMux) {
	query := s.heliconeRoute(func(w http.ResponseWriter, r *http.Request, _ string) { s.queryPromptVersion(w, r) })
	mux.Handle("POST /v1/prompt-2025/query/production-version", query)
	mux.Handle("POST /v1/prompt-2025/query/environment-version", query)
	mux.Handle("POST /v1/prompt-2025/query/version", query)
	mux.HandleFunc("GET /v1/prompt-2025/body/{id}/{version}", s.promptBody)
}

// bodyLinkTTL is how long an s3_url works: the SDKs fetch it at once.
const bodyLinkTTL = 10 * time.Minute

type heliconePromptVersion struct {
	ID            string `json:"id"`
	Model         string `json:"model"`
	PromptID      string `json:"prompt_id"`
	MajorVersion  int    `json:"major_version"`
	MinorVersion  int    `json:"minor_version"`
	CommitMessage string `json:"commit_message"`
	Environment   string `json:"environment,omitempty"`
	CreatedAt     string `json:"created_at"`
	S3URL         string `json:"s3_url,omitempty"`
}

// queryPromptVersion answers the three query routes.
func (s *server) queryPromptVersion(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	var q struct {
		PromptID        string `json:"promptId"`
		PromptVersionID string `json:"promptVersionId"`
		Environment     string `json:"environment"`
	}
	if err := json.Unmarshal(body, &q); err != nil {
		writeHeliconeError(w, http.StatusBadRequest, "body must be a JSON object")
		return
	}
	id, n := q.PromptID, 0
	if q.PromptVersionID != "" {
		var found bool
		id, n, found = splitVersionID(q.PromptVersionID)
		if !found {
			writeHeliconeError(w, http.StatusNotFound, "Prompt version not found")
			return
		}
	}
	if prompt.ValidateID(id) != nil {
		writeHeliconeError(w, http.StatusNotFound, "Prompt not found")
		return
	}
	if s.o.Prompts == nil {
		writeHeliconeError(w, http.StatusServiceUnavailable, "prompts are not configured")
		return
	}
	v, err := s.o.Prompts.PromptVersion(r.Context(), id, n)
	switch {
	case errors.Is(err, prompt.ErrNotFound):
		writeHeliconeError(w, http.StatusNotFound, err.Error())
		return
	case err != nil:
		s.o.Logger.Error("api: prompt store failed", "err", err)
		writeHeliconeError(w, http.StatusServiceUnavailable, "the prompt store is unavailable")
		return
	}
	out := heliconePromptVersion{
		ID: v.ID + "@" + strconv.Itoa(v.Version), Model: v.Model, PromptID: v.ID,
		MajorVersion: v.Version, Environment: q.Environment, S3URL: s.bodyLink(r, v),
	}
	if out.S3URL == "" {
		s.o.Logger.Warn("api: a Helicone prompt SDK asked for a prompt body link, and none can be signed: set --api-key or --prompt-link-secret", "prompt_id", v.ID)
	}
	if !v.CreatedAt.IsZero() {
		out.CreatedAt = v.CreatedAt.UTC().Format(time.RFC3339Nano)
	}
	writeHeliconeData(w, http.StatusOK, out)
}

// splitVersionID reads "<prompt id>@<number>".
func splitVersionID(vid string) (id string, n int, ok bool) {
	id, num, ok := strings.Cut(vid, "@")
	if !ok {
		return "", 0, false
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 1 {
		return "", 0, false
	}
	return id, n, true
}

// promptBody serves a version's body to a holder of a signed link, or to
// a caller the query routes would take.
func (s *server) promptBody(w http.ResponseWriter, r *http.Request) {
	id, raw := r.PathValue("id"), r.PathValue("version")
	n, err := strconv.Atoi(raw)
	if prompt.ValidateID(id) != nil || err != nil || n < 1 {
		writeError(w, http.StatusNotFound, "not_found", "no such prompt version")
		return
	}
	if !s.linkSigned(r, id, n) {
		s.heliconeRoute(func(w http.ResponseWriter, r *http.Request, _ string) { s.writePromptBody(w, r, id, n) }).ServeHTTP(w, r)
		return
	}
	s.writePromptBody(w, r, id, n)
}

func (s *server) writePromptBody(w http.ResponseWriter, r *http.Request, id string, n int) {
	if !s.needPrompts(w) {
		return
	}
	v, err := s.o.Prompts.PromptVersion(r.Context(), id, n)
	if err != nil {
		s.promptFailed(w, err)
		return
	}
	out := map[string]any{"messages": v.Messages}
	if v.Model != "" {
		out["model"] = v.Model
	}
	if v.System != nil {
		out["system"] = v.System
	}
	writeJSON(w, http.StatusOK, out)
}

// bodyLink is the absolute, signed URL of a version's body, "" when no
// shared secret can sign it.
func (s *server) bodyLink(r *http.Request, v prompt.Version) string {
	key := s.linkKey()
	if key == nil {
		return ""
	}
	expires := strconv.FormatInt(s.o.Now().Add(bodyLinkTTL).Unix(), 10)
	q := url.Values{"expires": {expires}, "sig": {linkSignature(key, v.ID, v.Version, expires)}}
	return s.publicBase(r) + "/v1/prompt-2025/body/" + v.ID + "/" + strconv.Itoa(v.Version) + "?" + q.Encode()
}

// publicBase is where clients reach the API: PublicURL (without a
// trailing slash) when set, else the scheme and Host of r.
func (s *server) publicBase(r *http.Request) string {
	if s.o.PublicURL != "" {
		return strings.TrimSuffix(s.o.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (s *server) linkSigned(r *http.Request, id string, n int) bool {
	key := s.linkKey()
	expires, sig := r.URL.Query().Get("expires"), r.URL.Query().Get("sig")
	at, err := strconv.ParseInt(expires, 10, 64)
	if key == nil || err != nil || sig == "" || s.o.Now().Unix() > at {
		return false
	}
	return hmac.Equal([]byte(sig), []byte(linkSignature(key, id, n, expires)))
}

func linkSignature(key []byte, id string, n int, expires string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "\n" + strconv.Itoa(n) + "\n" + expires))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// linkKey signs body links: derived from the API key, else from the
// link secret, both the same on every replica; nil without either (a
// key of this process alone would make another replica refuse the link).
func (s *server) linkKey() []byte {
	secret := s.o.APIKey
	if secret == "" {
		secret = s.o.PromptLinkSecret
	}
	if secret == "" {
		return nil
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("tollgate prompt body link"))
	return m.Sum(nil)
}
