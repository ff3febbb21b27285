package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/storage/erasure"
)

// fakeErasures keeps erasures in memory, scoped by tenant like the real
// store.
type fakeErasures struct {
	mu   sync.Mutex
	list []*erasure.Erasure
}

func (f *fakeErasures) Request(_ context.Context, tenant string, sub erasure.Subject, by string) (*erasure.Erasure, error) {
	if err := sub.Validate(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	e := &erasure.Erasure{ID: "e" + string(rune('0'+len(f.list))), Tenant: tenant, Subject: sub, RequestedBy: by,
		RequestedAt: time.Unix(1700000000, 0).UTC(), Status: erasure.Pending, Step: "wait"}
	f.list = append(f.list, e)
	return e, nil
}

func (f *fakeErasures) PendingCount(_ context.Context, tenant string) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var n uint64
	for _, e := range f.list {
		if e.Tenant == tenant && e.Status != erasure.Done {
			n++
		}
	}
	return n, nil
}

func (f *fakeErasures) Get(_ context.Context, tenant, id string) (*erasure.Erasure, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range f.list {
		if e.ID == id && e.Tenant == tenant {
			return e, nil
		}
	}
	return nil, nil
}

// TestErasureRoutes: each route records an erasure of the caller's
// tenant (from its Helicone key) with the subject from the path and a
// credential name that is not the key; 202 with the id and a Location;
// another tenant cannot see it; bad subjects are 400, unknown keys 401.
func TestErasureRoutes(t *testing.T) {
	auth, err := policies.NewAuth([]policies.APIKey{
		{SHA256: policies.HashKey("sk-acme"), Tenant: "acme"},
		{SHA256: policies.HashKey("sk-globex"), Tenant: "globex"},
	}, true)
	if err != nil {
		t.Fatal(err)
	}
	store := &fakeErasures{}
	h := New(Options{Auth: auth, Erasures: store, APIKey: "admin-key"})
	acme := map[string]string{"Authorization": "Bearer sk-acme"}

	for _, c := range []struct {
		path string
		want erasure.Subject
	}{
		{"/v1/users/alice%40example.com", erasure.Subject{Kind: erasure.User, Value: "alice@example.com"}},
		{"/v1/requests/0190F3A2-7C4B-7D4E-8A1B-1234567890AB", erasure.Subject{Kind: erasure.Request, Value: "0190f3a2-7c4b-7d4e-8a1b-1234567890ab"}},
		{"/v1/sessions/s-1", erasure.Subject{Kind: erasure.Session, Value: "s-1"}},
		{"/v1/properties/Env/prod", erasure.Subject{Kind: erasure.Property, Key: "env", Value: "prod"}},
	} {
		rr := do(t, h, http.MethodDelete, c.path, "10.0.0.1:5000", acme, "", nil)
		if rr.Code != http.StatusAccepted {
			t.Fatalf("DELETE %s: %d %s", c.path, rr.Code, rr.Body)
		}
		var out erasureOut
		if err := json.Unmarshal(rr.Body.Bytes(), &out); err != nil {
			t.Fatal(err)
		}
		e := store.list[len(store.list)-1]
		if e.Tenant != "acme" || e.Subject != c.want || out.ID != e.ID || out.Status != "pending" || out.CompletedAt != nil {
			t.Errorf("DELETE %s recorded %+v, answered %+v", c.path, e, out)
		}
		if rr.Header().Get("Location") != "/v1/erasures/"+e.ID {
			t.Errorf("Location %q", rr.Header().Get("Location"))
		}
		if strings.Contains(e.RequestedBy, "sk-acme") || !strings.HasPrefix(e.RequestedBy, "helicone-key:") {
			t.Errorf("requested_by %q", e.RequestedBy)
		}
	}

	id := store.list[0].ID
	var got erasureOut
	if rr := do(t, h, http.MethodGet, "/v1/erasures/"+id, "10.0.0.1:5000", acme, "", &got); rr.Code != http.StatusOK || got.ID != id {
		t.Errorf("GET own erasure: %d %s", rr.Code, rr.Body)
	}
	store.list[0].Status, store.list[0].CompletedAt = erasure.Done, time.Unix(1700000100, 0).UTC()
	if do(t, h, http.MethodGet, "/v1/erasures/"+id, "10.0.0.1:5000", acme, "", &got); got.Status != "done" || got.CompletedAt == nil {
		t.Errorf("GET after done: %+v", got)
	}
	if rr := do(t, h, http.MethodGet, "/v1/erasures/"+id, "10.0.0.1:5000", map[string]string{"Authorization": "Bearer sk-globex"}, "", nil); rr.Code != http.StatusNotFound {
		t.Errorf("another tenant's GET: %d, want 404", rr.Code)
	}
	for _, c := range []struct {
		path    string
		headers map[string]string
		want    int
	}{
		{"/v1/requests/not-a-uuid", acme, http.StatusBadRequest},
		{"/v1/users/" + strings.Repeat("x", 2000), acme, http.StatusBadRequest},
		{"/v1/users/bob", map[string]string{"Authorization": "Bearer sk-unknown"}, http.StatusUnauthorized},
		{"/v1/users/bob", nil, http.StatusUnauthorized},
	} {
		if rr := do(t, h, http.MethodDelete, c.path, "10.0.0.1:5000", c.headers, "", nil); rr.Code != c.want {
			t.Errorf("DELETE %.40s: %d, want %d (%s)", c.path, rr.Code, c.want, rr.Body)
		}
	}
	// The admin key acts for the tenant its Helicone-Auth names; the audit
	// row names both keys by hash.
	rr := do(t, h, http.MethodDelete, "/v1/users/carol", "10.0.0.1:5000",
		map[string]string{"Authorization": "Bearer admin-key", "Helicone-Auth": "Bearer sk-globex"}, "", nil)
	if e := store.list[len(store.list)-1]; rr.Code != http.StatusAccepted || e.Tenant != "globex" || strings.Contains(e.RequestedBy, "admin-key") {
		t.Errorf("admin DELETE: %d, %+v", rr.Code, e)
	}
	// A tenant with too many erasures pending waits (429); the others do not.
	for range maxPendingErasures {
		store.Request(context.Background(), "acme", erasure.Subject{Kind: erasure.User, Value: "x"}, "test")
	}
	if rr := do(t, h, http.MethodDelete, "/v1/users/dave", "10.0.0.1:5000", acme, "", nil); rr.Code != http.StatusTooManyRequests {
		t.Errorf("over the pending cap: %d, want 429", rr.Code)
	}
	if rr := do(t, h, http.MethodDelete, "/v1/users/dave", "10.0.0.1:5000", map[string]string{"Authorization": "Bearer sk-globex"}, "", nil); rr.Code != http.StatusAccepted {
		t.Errorf("another tenant under the cap: %d, want 202", rr.Code)
	}
	// Without ClickHouse: 503.
	if rr := do(t, New(Options{Auth: auth}), http.MethodDelete, "/v1/users/bob", "10.0.0.1:5000", acme, "", nil); rr.Code != http.StatusServiceUnavailable {
		t.Errorf("no store: %d", rr.Code)
	}
}
