package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/tollgate-dev/tollgate/helicone"
	"github.com/tollgate-dev/tollgate/storage/chquery"
	"github.com/tollgate-dev/tollgate/storage/chstore"
)

// Feedback and scores, as Helicone's API takes them. Each acts for the
// caller's tenant (heliconeCaller) on a request of that tenant only, and
// waits a few seconds for a request that has not reached the log yet
// (awaitRequest): rating a call right after it returned works.

// parseID accepts a request id in the canonical UUID form only (uuid.Parse
// also takes braces, a urn: prefix and no dashes).
func parseID(s string) (string, bool) {
	if len(s) != 36 {
		return "", false
	}
	u, err := uuid.Parse(s)
	if err != nil {
		return "", false
	}
	return u.String(), true
}

// requestIDAndBody reads the {id} of a /v1/request/{id}/… route and the
// body; when either is wrong it has answered.
func requestIDAndBody(w http.ResponseWriter, r *http.Request) (id string, body []byte, ok bool) {
	if id, ok = parseID(r.PathValue("id")); !ok {
		writeHeliconeError(w, http.StatusBadRequest, "id: must be a UUID")
		return "", nil, false
	}
	body, ok = readBody(w, r)
	return id, body, ok
}

// feedback: POST /v1/request/{id}/feedback {"rating": true|false} →
// {"data": null, "error": null}.
func (s *server) feedback(w http.ResponseWriter, r *http.Request, tenant string) {
	id, body, ok := requestIDAndBody(w, r)
	if !ok {
		return
	}
	var in struct {
		Rating *bool `json:"rating"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		writeHeliconeError(w, http.StatusBadRequest, `rating: body must be a JSON object {"rating": true|false}: `+err.Error())
		return
	}
	if in.Rating == nil {
		writeHeliconeError(w, http.StatusBadRequest, "rating: is required (true or false)")
		return
	}
	if status, msg := s.rate(r, id, tenant, *in.Rating); status != http.StatusOK {
		writeHeliconeError(w, status, msg)
		return
	}
	writeHeliconeData(w, http.StatusOK, nil)
}

// rate stores a rating of request id once it is known in tenant's log; it
// returns 200 or the status and message of the failure.
func (s *server) rate(r *http.Request, id, tenant string, rating bool) (int, string) {
	if s.o.Feedback == nil || s.o.Query == nil {
		return http.StatusServiceUnavailable, "feedback needs ClickHouse"
	}
	if status, msg := s.requireRequest(r, id, tenant); status != http.StatusOK {
		return status, msg
	}
	fb := chstore.Feedback{RequestID: id, Tenant: tenant, Rating: rating, CreatedAt: s.o.Now().UTC()}
	if err := s.o.Feedback(r.Context(), fb); err != nil {
		s.o.Logger.Error("api: storing feedback failed", "request_id", id, "err", err)
		return http.StatusServiceUnavailable, "storing feedback failed"
	}
	return http.StatusOK, ""
}

// requireRequest waits for request id in tenant's log: 200 once it is
// there, 404 when it does not arrive in time.
func (s *server) requireRequest(r *http.Request, id, tenant string) (int, string) {
	found, err := s.awaitRequest(r.Context(), id, tenant)
	switch {
	case err == errNeedQuery:
		return http.StatusServiceUnavailable, "needs ClickHouse"
	case err == errBusy:
		return http.StatusServiceUnavailable, err.Error() + "; retry later"
	case err != nil:
		s.o.Logger.Error("api: looking up a request failed", "request_id", id, "err", err)
		return http.StatusServiceUnavailable, "looking up the request failed: ClickHouse unavailable or overloaded"
	case !found:
		return http.StatusNotFound, errRequestNotFound
	}
	return http.StatusOK, ""
}

// legacyFeedback: POST /v1/feedback {"helicone-id": …, "rating": bool},
// Helicone's older form, answered as Helicone answered it: plain-text
// errors and {"message", "helicone_id"} on success.
func (s *server) legacyFeedback(w http.ResponseWriter, r *http.Request, tenant string) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	var in struct {
		ID     any `json:"helicone-id"`
		Rating any `json:"rating"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		writeText(w, http.StatusBadRequest, "Invalid JSON body: "+err.Error())
		return
	}
	idText, _ := in.ID.(string)
	id, ok := parseID(idText)
	if !ok {
		writeText(w, http.StatusBadRequest, "Invalid helicone-id format.")
		return
	}
	rating, ok := in.Rating.(bool)
	if !ok {
		writeText(w, http.StatusBadRequest, "Invalid rating format. Expected a boolean.")
		return
	}
	switch status, msg := s.rate(r, id, tenant, rating); {
	case status == http.StatusNotFound:
		writeText(w, status, fmt.Sprintf("Error: Request not found for heliconeId %q.", id))
		return
	case status != http.StatusOK:
		writeText(w, status, "Error: "+msg)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"message": "Feedback added successfully.", "helicone_id": id})
}

func writeText(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(msg))
}

// Limits of a score request.
const (
	maxScores        = 100
	maxScoreNameSize = 256
)

// score: POST /v1/request/{id}/score {"scores": {"name": number|boolean}}
// → 201 {"data": null, "error": null}.
func (s *server) score(w http.ResponseWriter, r *http.Request, tenant string) {
	id, body, ok := requestIDAndBody(w, r)
	if !ok {
		return
	}
	scores, perr := parseScores(body)
	if perr != nil {
		writeHeliconeError(w, http.StatusBadRequest, perr.name+": "+perr.why)
		return
	}
	if s.o.Query == nil {
		writeHeliconeError(w, http.StatusServiceUnavailable, "scores need ClickHouse")
		return
	}
	if status, msg := s.requireRequest(r, id, tenant); status != http.StatusOK {
		writeHeliconeError(w, status, msg)
		return
	}
	if err := s.o.Query.InsertScores(r.Context(), tenant, id, s.o.Now().UTC(), scores); err != nil {
		s.o.Logger.Error("api: storing scores failed", "request_id", id, "err", err)
		writeHeliconeError(w, http.StatusServiceUnavailable, "storing scores failed")
		return
	}
	writeHeliconeData(w, http.StatusCreated, nil)
}

// parseScores reads {"scores": {"name": number|boolean, …}}: numbers are
// stored as Float64 (Helicone keeps integers only), booleans as 1 or 0.
func parseScores(body []byte) ([]chquery.Score, *paramError) {
	var in struct {
		Scores map[string]json.RawMessage `json:"scores"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, &paramError{"scores", `body must be a JSON object {"scores": {"name": number|boolean}}`}
	}
	switch {
	case len(in.Scores) == 0:
		return nil, &paramError{"scores", "at least one score is required"}
	case len(in.Scores) > maxScores:
		return nil, &paramError{"scores", fmt.Sprintf("at most %d scores", maxScores)}
	}
	names := make([]string, 0, len(in.Scores))
	for name := range in.Scores {
		names = append(names, name)
	}
	sort.Strings(names)
	out := make([]chquery.Score, 0, len(names))
	for _, name := range names {
		field := "scores." + helicone.Truncate(name, 64)
		if name == "" || len(name) > maxScoreNameSize || !utf8.ValidString(name) {
			return nil, &paramError{field, fmt.Sprintf("a name is 1 to %d bytes of UTF-8", maxScoreNameSize)}
		}
		raw := bytes.TrimSpace(in.Scores[name])
		switch string(raw) {
		case "true", "false":
			v := 0.0
			if string(raw) == "true" {
				v = 1
			}
			out = append(out, chquery.Score{Name: name, Value: v, Bool: true})
			continue
		}
		var n json.Number
		if err := json.Unmarshal(raw, &n); err != nil || len(raw) == 0 || raw[0] == '"' {
			return nil, &paramError{field, "want a number or a boolean"}
		}
		v, err := strconv.ParseFloat(string(n), 64)
		if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
			return nil, &paramError{field, "want a finite number"}
		}
		out = append(out, chquery.Score{Name: name, Value: v})
	}
	return out, nil
}
