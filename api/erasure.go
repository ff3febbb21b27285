package api

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/tollgate-dev/tollgate/helicone"
	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/storage/erasure"
)

// Erasure routes (docs/privacy.md): each erases a subject of the caller's
// tenant — the tenant of its Helicone key, as the feedback and query
// routes act (heliconeCaller) — and answers 202 with the erasure's id at
// once; the work is asynchronous (ClickHouse mutations), and
// GET /v1/erasures/{id} says when it is done.
//
//	DELETE /v1/users/{user_id}
//	DELETE /v1/requests/{id}
//	DELETE /v1/sessions/{session_id}
//	DELETE /v1/properties/{name}/{value}
//	GET    /v1/erasures/{id}

// ErasureStore records erasures and reports on them (*erasure.Store).
type ErasureStore interface {
	Request(ctx context.Context, tenant string, sub erasure.Subject, by string) (*erasure.Erasure, error)
	// Get returns tenant's erasure id, nil when unknown (or another
	// tenant's).
	Get(ctx context.Context, tenant, id string) (*erasure.Erasure, error)
	// Counts are how many of tenant's erasures are not done, and how
	// many were asked for in the last 24 hours.
	Counts(ctx context.Context, tenant string) (pending, lastDay uint64, err error)
}

// maxPendingErasures bounds a tenant's erasures in progress: each costs
// ClickHouse mutations, which rewrite table parts.
const maxPendingErasures = 100

// maxDailyErasures bounds a tenant's erasures per 24 hours: every log
// writer keeps each erasure in memory (erasure.List), so their number
// grows only this fast.
const maxDailyErasures = 1000

// erasureLocks holds a mutex per tenant: the limits are checked and the
// erasure recorded under it, so concurrent requests to one process cannot
// exceed them together. Across processes (several gateways) each may
// admit one past the limit at the same moment: the overshoot is at most
// the number of gateways minus one (docs/privacy.md).
var erasureLocks sync.Map // tenant → *sync.Mutex

func tenantLock(tenant string) *sync.Mutex {
	m, _ := erasureLocks.LoadOrStore(tenant, new(sync.Mutex))
	return m.(*sync.Mutex)
}

func (s *server) routeErasures(mux *http.ServeMux) {
	mux.Handle("DELETE /v1/users/{user_id}", s.erasureRoute(func(r *http.Request) erasure.Subject {
		return erasure.Subject{Kind: erasure.User, Value: r.PathValue("user_id")}
	}))
	mux.Handle("DELETE /v1/requests/{id}", s.erasureRoute(func(r *http.Request) erasure.Subject {
		return erasure.Subject{Kind: erasure.Request, Value: r.PathValue("id")}
	}))
	mux.Handle("DELETE /v1/sessions/{session_id}", s.erasureRoute(func(r *http.Request) erasure.Subject {
		return erasure.Subject{Kind: erasure.Session, Value: r.PathValue("session_id")}
	}))
	mux.Handle("DELETE /v1/properties/{name}/{value}", s.erasureRoute(func(r *http.Request) erasure.Subject {
		return erasure.Subject{Kind: erasure.Property, Key: r.PathValue("name"), Value: r.PathValue("value")}
	}))
	mux.Handle("GET /v1/erasures/{id}", s.erasureGuard(s.erasureStatus))
}

// erasureGuard authorizes like the Helicone routes (a tenant key, or the
// API's own access) and hands the handler the caller's tenant.
func (s *server) erasureGuard(h func(w http.ResponseWriter, r *http.Request, tenant string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tenant, status, msg := s.heliconeCaller(r)
		if status != 0 {
			if status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="tollgate"`)
			}
			writeError(w, status, http.StatusText(status), msg)
			return
		}
		if s.o.Erasures == nil {
			writeError(w, http.StatusServiceUnavailable, "unavailable", "erasure needs ClickHouse")
			return
		}
		h(w, r, tenant)
	})
}

func (s *server) erasureRoute(subject func(r *http.Request) erasure.Subject) http.Handler {
	return s.erasureGuard(func(w http.ResponseWriter, r *http.Request, tenant string) {
		sub := subject(r)
		if err := sub.Validate(); err != nil {
			writeError(w, http.StatusBadRequest, "bad_request", err.Error())
			return
		}
		mu := tenantLock(tenant)
		mu.Lock()
		defer mu.Unlock()
		pending, lastDay, err := s.o.Erasures.Counts(r.Context(), tenant)
		switch {
		case err != nil:
			s.o.Logger.Error("erasure: cannot count the pending ones", "err", err)
			writeError(w, http.StatusServiceUnavailable, "unavailable", "the erasure could not be recorded; retry")
			return
		case pending >= maxPendingErasures:
			w.Header().Set("Retry-After", "60")
			writeError(w, http.StatusTooManyRequests, "too_many_requests",
				fmt.Sprintf("%d erasures of this tenant are still pending; retry once some are done", pending))
			return
		case lastDay >= maxDailyErasures:
			w.Header().Set("Retry-After", "3600")
			writeError(w, http.StatusTooManyRequests, "too_many_requests",
				fmt.Sprintf("this tenant asked for %d erasures in the last 24 hours, the most allowed; retry later", lastDay))
			return
		}
		e, err := s.o.Erasures.Request(r.Context(), tenant, sub, s.requester(r))
		if err != nil {
			s.o.Logger.Error("erasure: cannot record the request", "err", err)
			writeError(w, http.StatusServiceUnavailable, "unavailable", "the erasure could not be recorded; retry")
			return
		}
		w.Header().Set("Location", "/v1/erasures/"+e.ID)
		writeJSON(w, http.StatusAccepted, erasureJSON(e))
	})
}

func (s *server) erasureStatus(w http.ResponseWriter, r *http.Request, tenant string) {
	id := r.PathValue("id")
	if len(id) > 64 {
		writeError(w, http.StatusNotFound, "not_found", "no such erasure")
		return
	}
	e, err := s.o.Erasures.Get(r.Context(), tenant, id)
	switch {
	case err != nil:
		s.o.Logger.Error("erasure: cannot read the status", "err", err)
		writeError(w, http.StatusServiceUnavailable, "unavailable", "the erasure's status could not be read; retry")
	case e == nil:
		writeError(w, http.StatusNotFound, "not_found", "no such erasure")
	default:
		writeJSON(w, http.StatusOK, erasureJSON(e))
	}
}

// requester names the credential behind a call for the audit log: a
// prefix of the key's SHA-256 (what the configuration holds of a tenant
// key), never the key.
func (s *server) requester(r *http.Request) string {
	key := r.Header.Get(helicone.Auth)
	if key == "" && !s.bearerIsAPIKey(r) {
		key = r.Header.Get("Authorization")
	}
	key = strings.TrimSpace(key)
	if len(key) > 7 && strings.EqualFold(key[:7], "bearer ") {
		key = strings.TrimSpace(key[7:])
	}
	switch {
	case s.keysConfigured && key != "":
		return "helicone-key:" + policies.HashKey(key)[:16]
	case s.bearerIsAPIKey(r):
		tok, _ := bearer(r.Header.Get("Authorization"))
		by := "api-key:" + policies.HashKey(tok)[:16]
		if key != "" {
			by += " helicone-key:" + policies.HashKey(key)[:16]
		}
		return by
	case key != "":
		return "loopback helicone-key:" + policies.HashKey(key)[:16]
	}
	return "loopback"
}

type erasureSubjectJSON struct {
	Kind  string `json:"kind"`
	Name  string `json:"name,omitempty"`
	Value string `json:"value"`
}

type erasureOut struct {
	ID          string             `json:"id"`
	Status      string             `json:"status"`
	Step        string             `json:"step"`
	Subject     erasureSubjectJSON `json:"subject"`
	RequestedBy string             `json:"requested_by"`
	RequestedAt time.Time          `json:"requested_at"`
	CompletedAt *time.Time         `json:"completed_at"`
	Detail      string             `json:"detail"`
}

func erasureJSON(e *erasure.Erasure) erasureOut {
	out := erasureOut{ID: e.ID, Status: e.Status, Step: e.Step, RequestedBy: e.RequestedBy, RequestedAt: e.RequestedAt,
		Subject: erasureSubjectJSON{Kind: string(e.Subject.Kind), Name: e.Subject.Key, Value: e.Subject.Value}, Detail: e.Detail}
	if e.Status == erasure.Done {
		t := e.CompletedAt
		out.CompletedAt = &t
	}
	return out
}

var _ ErasureStore = (*erasure.Store)(nil)
