// Package api is Tollgate's HTTP API, served on the --http-listen port:
// feedback, out-of-band logging (Tollgate's own format and Helicone's
// manual-logger wire format) and the query API over ClickHouse.
//
// Routes:
//
//	POST /v1/request/{id}/feedback   {"rating": true|false} → {"data": null, "error": null}
//	POST /v1/request/{id}/score      {"scores": {"name": number|boolean}} (feedback.go)
//	POST /v1/feedback                Helicone's older {"helicone-id", "rating"}
//	POST /v1/request/query           Helicone's request query (helicone_query.go);
//	                                 also at /v1/request/query-clickhouse
//	POST /v1/log/request             protojson tollgate.v1.LogRequest → {"id": …}
//	POST /custom/v1/log              Helicone manual logger → {"id": …}
//	POST /oai/v1/log                 (provider openai)
//	POST /anthropic/v1/log           (provider anthropic)
//	POST /v1/traces                  OTLP/HTTP GenAI spans → records (otlptraces.go)
//	GET  /v1/requests                list, newest first, cursor pagination
//	GET  /v1/requests/{id}           one request with bodies (404 unknown)
//	GET  /v1/stats                   aggregates over a time range
//	POST /v1/prompts/{id}/versions   publish a prompt version (prompts.go)
//	GET  /v1/prompts/{id}            its versions; /versions/{n} one of them
//	GET  /v1/alerts                  alert rules; POST creates, DELETE /v1/alerts/{id}
//	GET  /v1/alerts/events           alert history, newest first (alerts.go)
//	DELETE /v1/users/{id}, /v1/requests/{id}, /v1/sessions/{id},
//	       /v1/properties/{name}/{value}   erase a subject → 202 {"id": …}
//	GET  /v1/erasures/{id}           an erasure's progress (erasure.go)
//
// Access: with Options.APIKey empty only loopback clients are served (403
// otherwise); with a key, `Authorization: Bearer <key>` is required (401).
// The Helicone routes (feedback, score, query) act for the tenant of the
// caller's Helicone key and also accept a configured tenant key alone
// (heliconeCaller).
// The manual-logger routes carry the Helicone key in Authorization, as
// Helicone's helpers send it: they accept the API key there, or a key that
// the tenant auth policy (policies.Auth, keys configured) recognises, or,
// with no API key set, any loopback client.
package api

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tollgate-dev/tollgate/helicone"
	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/prompt"
	"github.com/tollgate-dev/tollgate/provider"
	"github.com/tollgate-dev/tollgate/record"
	"github.com/tollgate-dev/tollgate/storage/chstore"
)

// maxBodyBytes bounds the request bodies the API reads.
const maxBodyBytes = 32 << 20

// Options configure the API handler.
type Options struct {
	// Sink receives the records of the out-of-band logging endpoints (the
	// same sink the processor writes to). Nil: those routes answer 503.
	Sink record.Sink
	// Feedback stores a rating (chstore.InsertFeedback). Nil: 503
	// "feedback needs ClickHouse".
	Feedback func(ctx context.Context, fb chstore.Feedback) error
	// Query runs the read API (a *chquery.Requests). Nil: 503 "query API
	// needs ClickHouse".
	Query Queries
	// Auth resolves tenants from Helicone keys. Nil: no keys configured.
	Auth *policies.Auth
	// Prices prices ingested calls. Nil: provider.DefaultPrices().
	Prices *provider.PriceTable
	// Prompts serves the prompt routes (a *prompt.Library). Nil:
	// 503 "prompts are not configured".
	Prompts prompt.Store
	// Alerts serves the alert routes (an *alerts.Manager). Nil: 503
	// "alerts need ClickHouse".
	Alerts AlertRules
	// Erasures records and reports erasures (an *erasure.Store,
	// erasure.go). Nil: 503 "erasure needs ClickHouse".
	Erasures ErasureStore
	// MaxLoggedBody cuts the request and response bodies of ingested calls
	// as the processor cuts proxied ones (--max-logged-body). Default
	// record.DefaultMaxBody.
	MaxLoggedBody int
	// APIKey protects the API; empty: loopback clients only.
	APIKey string
	// PromptLinkSecret signs the prompt body links of the Helicone prompt
	// SDK routes when APIKey is empty (with a key, the key signs them). It
	// must be the same on every replica, so that a link one issues works
	// on all; with neither, no link is issued (prompthelicone.go).
	PromptLinkSecret string
	// PublicURL is the address clients reach the API at (the dashboard's,
	// --dashboard-url, served on the same port); prompt body links are
	// built on it. Empty: on the Host the caller reached.
	PublicURL string
	// RequestWait is how long feedback and scores wait for a request that
	// has not reached the log yet. Zero: 5 s; negative: no wait.
	RequestWait time.Duration
	// Now is the clock (tests). Nil: time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

type server struct {
	o              Options
	keysConfigured bool
	waiters        chan struct{} // bounds the requests waiting in awaitRequest
	tenantWaiters  perTenant     // and each tenant's share of them
	queries        chan struct{} // bounds the Helicone queries in flight
	tenantQueries  perTenant     // and each tenant's share of them
}

// New returns the API handler.
func New(o Options) http.Handler {
	if o.Prices == nil {
		o.Prices = provider.DefaultPrices()
	}
	if o.Auth == nil {
		o.Auth, _ = policies.NewAuth(nil, false)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxLoggedBody <= 0 {
		o.MaxLoggedBody = record.DefaultMaxBody
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &server{o: o, waiters: make(chan struct{}, maxWaiters), queries: make(chan struct{}, maxHeliconeQueries)}
	s.keysConfigured = o.Auth.KeysConfigured()

	mux := http.NewServeMux()
	mux.Handle("POST /v1/request/{id}/feedback", s.heliconeRoute(s.feedback))
	mux.Handle("POST /v1/request/{id}/score", s.heliconeRoute(s.score))
	mux.Handle("POST /v1/feedback", s.heliconeRoute(s.legacyFeedback))
	mux.Handle("POST /v1/request/query", s.heliconeRoute(s.queryHelicone))
	mux.Handle("POST /v1/request/query-clickhouse", s.heliconeRoute(s.queryHelicone))
	mux.Handle("POST /v1/log/request", s.admin(s.logRequest))
	mux.Handle("POST /custom/v1/log", s.logger(s.manualLog("custom")))
	mux.Handle("POST /oai/v1/log", s.logger(s.manualLog(provider.OpenAI)))
	mux.Handle("POST /anthropic/v1/log", s.logger(s.manualLog(provider.Anthropic)))
	mux.Handle("POST /v1/traces", s.logger(s.traces)) // OTLP/HTTP GenAI spans (otlptraces.go)
	mux.Handle("GET /v1/requests", s.admin(s.listRequests))
	mux.Handle("GET /v1/requests/{id}", s.admin(s.getRequest))
	mux.Handle("GET /v1/stats", s.admin(s.stats))
	s.routePrompts(mux)
	s.routeAlerts(mux)
	s.routeErasures(mux)
	return mux
}

// admin guards the routes that need the API key (or loopback).
func (s *server) admin(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.o.APIKey == "" {
			if why := notLocal(r); why != "" {
				writeError(w, http.StatusForbidden, "forbidden", why)
				return
			}
		} else if !s.bearerIsAPIKey(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tollgate"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "Authorization: Bearer <api key> is required")
			return
		}
		h(w, r)
	})
}

// logger guards the manual-logger routes, whose Authorization header is
// the Helicone key.
func (s *server) logger(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case s.o.APIKey == "" && notLocal(r) == "":
		case s.o.APIKey != "" && s.bearerIsAPIKey(r):
		case s.keysConfigured && r.Header.Get("Authorization") != "":
			if _, err := s.o.Auth.Tenant(r.Header.Get("Authorization")); err != nil {
				writeError(w, http.StatusUnauthorized, "unauthorized", err.Error())
				return
			}
		case s.o.APIKey == "":
			writeError(w, http.StatusForbidden, "forbidden", "no API key is configured: only loopback clients may use the API")
			return
		default:
			writeError(w, http.StatusUnauthorized, "unauthorized", "Authorization: Bearer <api key or Helicone key> is required")
			return
		}
		h(w, r)
	})
}

func (s *server) bearerIsAPIKey(r *http.Request) bool {
	tok, ok := bearer(r.Header.Get("Authorization"))
	return ok && subtle.ConstantTimeCompare([]byte(tok), []byte(s.o.APIKey)) == 1
}

func bearer(h string) (string, bool) {
	h = strings.TrimSpace(h)
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:]), true
	}
	return "", false
}

func isLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// tenantOf resolves the tenant of an API call: Helicone-Auth when sent,
// else the default tenant.
func (s *server) tenantOf(r *http.Request) (string, error) {
	return s.o.Auth.Tenant(r.Header.Get(helicone.Auth))
}

// writeError answers in the OpenAI-style error shape the processor uses,
// without its "type" (the bytes as json.Encoder wrote them before).
func writeError(w http.ResponseWriter, status int, code, msg string) {
	b := helicone.AppendErrorBody(make([]byte, 0, 64+len(code)+len(msg)), helicone.EscapeHTML, "code", code, "message", msg)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// badParam answers 400 naming the parameter.
func badParam(w http.ResponseWriter, name, why string) {
	writeError(w, http.StatusBadRequest, "invalid_parameter", name+": "+why)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// LoopbackOnly serves only local clients (403 otherwise): what the API
// does without a key, for other handlers on the same port (the dashboard).
func LoopbackOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if why := notLocal(r); why != "" {
			writeError(w, http.StatusForbidden, "forbidden", why)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// notLocal says why a request may not use the keyless API ("" when it may).
// A loopback address is not enough: a web page the developer visits can
// reach 127.0.0.1 through its browser, by DNS rebinding (a foreign Host) or
// a cross-site form post (no preflight for text/plain). So the Host must be
// a loopback name, a browser's cross-site request is refused, and a POST
// must be JSON, which a page cannot send cross-site without a preflight this
// server never grants (other methods always need one).
func notLocal(r *http.Request) string {
	if !isLoopback(r) {
		return "no API key is configured: only loopback clients may use the API"
	}
	if !loopbackHost(r.Host) {
		return "no API key is configured: the Host header must be localhost, 127.0.0.1 or [::1]"
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site == "cross-site" || site == "same-site" {
		return "no API key is configured: cross-site browser requests are refused"
	}
	if origin := r.Header.Get("Origin"); origin != "" && origin != "null" {
		if u, err := url.Parse(origin); err != nil || !loopbackHost(u.Host) {
			return "no API key is configured: requests from another origin are refused"
		}
	} else if origin == "null" {
		return "no API key is configured: requests from another origin are refused"
	}
	if r.Method == http.MethodPost { // the one method a page can send cross-site without a preflight
		// application/x-protobuf (OTLP, /v1/traces) needs a preflight too.
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" && mt != "application/x-protobuf" {
			return "no API key is configured: send Content-Type: application/json"
		}
	}
	return ""
}

func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
