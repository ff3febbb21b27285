package api

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/tollgate-dev/tollgate/helicone"
)

// The routes Helicone's SDKs and users call (feedback, scores, the request
// query) answer in Helicone's {data, error} shape and act for one tenant:
// the tenant of the caller's Helicone key. A tenant never rates, scores or
// reads another tenant's request.

// heliconeCaller says for which tenant a call to a Helicone route acts, or
// why it may not (status and message). The Helicone key is Helicone-Auth,
// else the Authorization header (Helicone's REST API takes the key there)
// unless that holds the API key.
//
//   - Keys configured (tenants from configured Helicone keys): a key that
//     is one of them is a credential of its own and selects its tenant; an
//     unknown key is a 401.
//   - Otherwise any key would do (its tenant is a hash of it), so it
//     proves nothing: the caller needs the API's own access, the API key
//     or, without one, a loopback client; the key then only names the
//     tenant (none: the default tenant).
func (s *server) heliconeCaller(r *http.Request) (tenant string, status int, msg string) {
	key := r.Header.Get(helicone.Auth)
	if key == "" && !s.bearerIsAPIKey(r) {
		key = r.Header.Get("Authorization")
	}
	if s.keysConfigured && key != "" {
		t, err := s.o.Auth.Tenant(key)
		if err != nil {
			return "", http.StatusUnauthorized, err.Error()
		}
		return t, 0, ""
	}
	if s.o.APIKey == "" {
		if why := notLocal(r); why != "" {
			return "", http.StatusForbidden, why
		}
	} else if !s.bearerIsAPIKey(r) {
		return "", http.StatusUnauthorized, "Authorization: Bearer <api key>, or a configured Helicone key, is required"
	}
	t, err := s.o.Auth.Tenant(key)
	if err != nil {
		return "", http.StatusUnauthorized, err.Error()
	}
	return t, 0, ""
}

// heliconeRoute guards a Helicone route and hands it the caller's tenant.
func (s *server) heliconeRoute(h func(w http.ResponseWriter, r *http.Request, tenant string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tenant, status, msg := s.heliconeCaller(r)
		if status != 0 {
			if status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="tollgate"`)
			}
			writeHeliconeError(w, status, msg)
			return
		}
		h(w, r, tenant)
	})
}

// heliconeResult is Helicone's response body: data, or an error message.
type heliconeResult struct {
	Data  any     `json:"data"`
	Error *string `json:"error"`
}

func writeHeliconeData(w http.ResponseWriter, status int, data any) {
	writeJSON(w, status, heliconeResult{Data: data})
}

func writeHeliconeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, heliconeResult{Error: &msg})
}

// errRequestNotFound is Helicone's answer when the request never arrived.
const errRequestNotFound = "Request not found"

// Waiting for a request that has not arrived. A client often rates a call
// right after it returns, before the log writer's next flush has reached
// ClickHouse (and the call may have gone through another replica), so the
// lookup is retried with backoff for a few seconds. The wait is bounded in
// time and in number: past maxWaiters concurrent waits, or maxTenantWaiters
// of one tenant (so that one tenant rating unknown ids cannot keep the
// others from waiting), a request not found at once is answered 503 (busy,
// retry) rather than waited for.
const (
	defaultRequestWait = 5 * time.Second
	firstPoll          = 50 * time.Millisecond
	maxPoll            = time.Second
	maxWaiters         = 64
	maxTenantWaiters   = 16
)

var (
	errNeedQuery = errors.New("needs ClickHouse")
	errBusy      = errors.New("too many calls are waiting for their requests to be logged")
)

// awaitRequest reports whether request id is (or arrives within the wait)
// in tenant's log.
func (s *server) awaitRequest(ctx context.Context, id, tenant string) (bool, error) {
	if s.o.Query == nil {
		return false, errNeedQuery
	}
	ok, err := s.o.Query.Exists(ctx, id, tenant)
	if ok || err != nil || s.o.RequestWait < 0 {
		return ok, err
	}
	if !s.tenantWaiters.acquire(tenant, maxTenantWaiters) {
		return false, errBusy
	}
	defer s.tenantWaiters.release(tenant)
	select {
	case s.waiters <- struct{}{}:
		defer func() { <-s.waiters }()
	default:
		return false, errBusy
	}
	wait := s.o.RequestWait
	if wait == 0 {
		wait = defaultRequestWait
	}
	deadline := time.Now().Add(wait)
	for d := firstPoll; ; d = min(2*d, maxPoll) {
		left := time.Until(deadline)
		if left <= 0 {
			return false, nil
		}
		t := time.NewTimer(min(d, left))
		select {
		case <-ctx.Done():
			t.Stop()
			return false, ctx.Err()
		case <-t.C:
		}
		if ok, err := s.o.Query.Exists(ctx, id, tenant); ok || err != nil {
			return ok, err
		}
	}
}

// perTenant counts what each tenant holds of a shared resource.
type perTenant struct {
	mu sync.Mutex
	n  map[string]int
}

// acquire takes one for tenant unless it holds max already.
func (p *perTenant) acquire(tenant string, max int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n[tenant] >= max {
		return false
	}
	if p.n == nil {
		p.n = map[string]int{}
	}
	p.n[tenant]++
	return true
}

func (p *perTenant) release(tenant string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n[tenant]--; p.n[tenant] <= 0 {
		delete(p.n, tenant)
	}
}
