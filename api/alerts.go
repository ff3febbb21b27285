package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/tollgate-dev/tollgate/alerts"
)

// The alert routes:
//
//	GET    /v1/alerts                {"rules": [rule, …]}, file rules with "read_only": true
//	POST   /v1/alerts                create a rule → 201 rule; 400 naming the field;
//	                                 409 when the id is taken (also when another
//	                                 replica created it at the same moment)
//	DELETE /v1/alerts/{id}           → {"ok": true}; 404 unknown; 409 for a file's rule,
//	                                 or when another replica re-created it meanwhile
//	GET    /v1/alerts/events?limit=N {"events": [event, …]}, newest first (N 1–500, default 50)
//
// A rule: {"id", "name", "metric": "cost_usd"|"error_rate"|"latency_p95_ms",
// "threshold", "window": "15m", "scope": {"model", "user", "property":
// {"name", "value"}}, "webhook_url", "webhook_url_set", "cooldown": "1h",
// "enabled", "read_only"}. POST takes the whole webhook_url; answers show
// only its origin, followed by "/…" when the URL has a path or query
// ("https://hooks.example.com/…"), since those often hold a token, and
// "webhook_url_set": true. A shortened URL posted back is a 400.
//
// An event: {"rule_id", "rule_name", "metric", "value", "threshold",
// "window", "fired_at", "delivered", "delivery_attempts",
// "delivery_error"}. delivery_attempts counts the delivery tries that
// ended (an undelivered event is tried again while its incident lasts, up
// to 5 tries); delivery_error names neither the URL nor the host or its
// addresses.

// AlertRules is what the alert routes use (an *alerts.Manager).
type AlertRules interface {
	Rules(ctx context.Context) ([]alerts.Rule, error)
	Create(ctx context.Context, r alerts.Rule) (alerts.Rule, error)
	Delete(ctx context.Context, id string) error
	Events(ctx context.Context, limit int) ([]alerts.Event, error)
}

func (s *server) routeAlerts(mux *http.ServeMux) {
	mux.Handle("GET /v1/alerts", s.admin(s.listAlerts))
	mux.Handle("POST /v1/alerts", s.admin(s.createAlert))
	mux.Handle("DELETE /v1/alerts/{id}", s.admin(s.deleteAlert))
	mux.Handle("GET /v1/alerts/events", s.admin(s.alertEvents))
}

func (s *server) needAlerts(w http.ResponseWriter) bool {
	if s.o.Alerts == nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "alerts need ClickHouse")
		return false
	}
	return true
}

// listAlerts: GET /v1/alerts.
func (s *server) listAlerts(w http.ResponseWriter, r *http.Request) {
	if !s.needAlerts(w) {
		return
	}
	rules, err := s.o.Alerts.Rules(r.Context())
	if err != nil {
		s.alertFailed(w, err)
		return
	}
	if rules == nil {
		rules = []alerts.Rule{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"rules": rules})
}

// createAlert: POST /v1/alerts.
func (s *server) createAlert(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	rule, err := alerts.DecodeRule(body)
	if err != nil {
		s.alertFailed(w, err)
		return
	}
	if !s.needAlerts(w) {
		return
	}
	created, err := s.o.Alerts.Create(r.Context(), rule)
	if err != nil {
		s.alertFailed(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, created)
}

// deleteAlert: DELETE /v1/alerts/{id}.
func (s *server) deleteAlert(w http.ResponseWriter, r *http.Request) {
	if !s.needAlerts(w) {
		return
	}
	if err := s.o.Alerts.Delete(r.Context(), r.PathValue("id")); err != nil {
		s.alertFailed(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// alertEvents: GET /v1/alerts/events?limit=N.
func (s *server) alertEvents(w http.ResponseWriter, r *http.Request) {
	limit := defaultLimit
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			badParam(w, "limit", "want an integer from 1 to 500")
			return
		}
		limit = n
	}
	if !s.needAlerts(w) {
		return
	}
	events, err := s.o.Alerts.Events(r.Context(), limit)
	if err != nil {
		s.alertFailed(w, err)
		return
	}
	if events == nil {
		events = []alerts.Event{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": events})
}

// alertFailed maps an alerts error to its status.
func (s *server) alertFailed(w http.ResponseWriter, err error) {
	var fe *alerts.FieldError
	switch {
	case errors.As(err, &fe):
		badParam(w, fe.Field, fe.Reason)
	case errors.Is(err, alerts.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, alerts.ErrReadOnly), errors.Is(err, alerts.ErrExists), errors.Is(err, alerts.ErrConflict):
		writeError(w, http.StatusConflict, "conflict", err.Error())
	default:
		s.o.Logger.Error("api: alerts failed", "err", err)
		writeError(w, http.StatusServiceUnavailable, "unavailable", "alerts unavailable: ClickHouse unavailable or overloaded")
	}
}
