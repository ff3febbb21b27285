package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/tollgate-dev/tollgate/internal/testenv"
	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/record"
	"github.com/tollgate-dev/tollgate/storage/chstore"
	"github.com/tollgate-dev/tollgate/storage/chstore/chtest"
	"github.com/tollgate-dev/tollgate/storage/erasure"
)

// erasureDB migrates a database of its own on the test ClickHouse and
// returns its URL, name and a connection; dropped at the end.
func erasureDB(t *testing.T) (string, string, driver.Conn) {
	t.Helper()
	u, conn, db := chtest.FreshDatabase(t, "api_erasure")
	return u, db, conn
}

func erasureAuth(t *testing.T) *policies.Auth {
	t.Helper()
	auth, err := policies.NewAuth([]policies.APIKey{
		{SHA256: policies.HashKey("sk-acme"), Tenant: "acme"},
		{SHA256: policies.HashKey("sk-globex"), Tenant: "globex"},
	}, true)
	if err != nil {
		t.Fatal(err)
	}
	return auth
}

var (
	acme   = map[string]string{"Authorization": "Bearer sk-acme"}
	globex = map[string]string{"Authorization": "Bearer sk-globex"}
)

// TestErasureRoutes: each route records an erasure of the caller's
// tenant (from its Helicone key) in ClickHouse with the subject from the
// path and a credential name that is not the key; 202 with the id and a
// Location; GET reports it, pending then done; another tenant gets 404;
// bad subjects are 400, unknown keys 401.
func TestErasureRoutes(t *testing.T) {
	_, db, conn := erasureDB(t)
	ctx := context.Background()
	store := erasure.NewStore(conn, db, nil)
	h := New(Options{Auth: erasureAuth(t), Erasures: store, APIKey: "admin-key"})

	var ids []string
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
		e, err := store.Get(ctx, "acme", out.ID)
		if err != nil || e == nil {
			t.Fatalf("DELETE %s: erasure %s not recorded: %v", c.path, out.ID, err)
		}
		if e.Subject != c.want || out.Status != "pending" || out.CompletedAt != nil {
			t.Errorf("DELETE %s recorded %+v, answered %+v", c.path, e, out)
		}
		if rr.Header().Get("Location") != "/v1/erasures/"+e.ID {
			t.Errorf("Location %q", rr.Header().Get("Location"))
		}
		if strings.Contains(e.RequestedBy, "sk-acme") || !strings.HasPrefix(e.RequestedBy, "helicone-key:") {
			t.Errorf("requested_by %q", e.RequestedBy)
		}
		ids = append(ids, out.ID)
	}

	id := ids[0]
	var got erasureOut
	if rr := do(t, h, http.MethodGet, "/v1/erasures/"+id, "10.0.0.1:5000", acme, "", &got); rr.Code != http.StatusOK || got.ID != id || got.Status != "pending" {
		t.Errorf("GET own erasure: %d %s", rr.Code, rr.Body)
	}
	if rr := do(t, h, http.MethodGet, "/v1/erasures/"+id, "10.0.0.1:5000", globex, "", nil); rr.Code != http.StatusNotFound {
		t.Errorf("another tenant's GET: %d, want 404", rr.Code)
	}
	// Carried out (nothing to delete): done, with its completion time.
	runner := erasure.NewRunner(erasure.Options{Conn: conn, DB: db, Now: func() time.Time { return time.Now().Add(time.Hour) }})
	testenv.Eventually(t, 30*time.Second, func() error {
		if err := runner.Pass(ctx); err != nil {
			return err
		}
		if do(t, h, http.MethodGet, "/v1/erasures/"+id, "10.0.0.1:5000", acme, "", &got); got.Status != "done" || got.CompletedAt == nil {
			return fmt.Errorf("GET: %+v", got)
		}
		return nil
	})
	if rr := do(t, h, http.MethodGet, "/v1/erasures/"+id, "10.0.0.1:5000", globex, "", nil); rr.Code != http.StatusNotFound {
		t.Errorf("another tenant's GET once done: %d, want 404", rr.Code)
	}

	for _, c := range []struct {
		path    string
		headers map[string]string
		want    int
	}{
		{"/v1/requests/not-a-uuid", acme, http.StatusBadRequest},
		{"/v1/users/" + strings.Repeat("x", 257), acme, http.StatusBadRequest},
		{"/v1/properties/" + strings.Repeat("k", 257) + "/v", acme, http.StatusBadRequest},
		{"/v1/users/%FF%FE", acme, http.StatusBadRequest},
		{"/v1/users/bob", map[string]string{"Authorization": "Bearer sk-unknown"}, http.StatusUnauthorized},
		{"/v1/users/bob", nil, http.StatusUnauthorized},
	} {
		if rr := do(t, h, http.MethodDelete, c.path, "10.0.0.1:5000", c.headers, "", nil); rr.Code != c.want {
			t.Errorf("DELETE %.40s: %d, want %d (%s)", c.path, rr.Code, c.want, rr.Body)
		}
	}
	// The admin key acts for the tenant its Helicone-Auth names; the audit
	// row names both keys by hash.
	var out erasureOut
	rr := do(t, h, http.MethodDelete, "/v1/users/carol", "10.0.0.1:5000",
		map[string]string{"Authorization": "Bearer admin-key", "Helicone-Auth": "Bearer sk-globex"}, "", nil)
	_ = json.Unmarshal(rr.Body.Bytes(), &out)
	if e, err := store.Get(ctx, "globex", out.ID); rr.Code != http.StatusAccepted || err != nil || e == nil || strings.Contains(e.RequestedBy, "admin-key") {
		t.Errorf("admin DELETE: %d, %+v %v", rr.Code, e, err)
	}
	// Without ClickHouse: 503.
	if rr := do(t, New(Options{Auth: erasureAuth(t)}), http.MethodDelete, "/v1/users/bob", "10.0.0.1:5000", acme, "", nil); rr.Code != http.StatusServiceUnavailable {
		t.Errorf("no store: %d", rr.Code)
	}
}

// TestErasureLimits: a tenant with 95 erasures pending and 20 more asked
// for at once gets exactly 5 (the cap of 100 is checked and the erasure
// recorded together); another tenant is not held back; a tenant that
// asked for the daily most is refused until a day has passed.
func TestErasureLimits(t *testing.T) {
	_, db, conn := erasureDB(t)
	ctx := context.Background()
	store := erasure.NewStore(conn, db, nil)
	h := New(Options{Auth: erasureAuth(t), Erasures: store})
	for i := range maxPendingErasures - 5 {
		if _, err := store.Request(ctx, "acme", erasure.Subject{Kind: erasure.User, Value: fmt.Sprint("u", i)}, "test"); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	codes := make([]int, 20)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = do(t, h, http.MethodDelete, fmt.Sprint("/v1/users/c", i), "10.0.0.1:5000", acme, "", nil).Code
		}()
	}
	wg.Wait()
	accepted := 0
	for _, c := range codes {
		if c == http.StatusAccepted {
			accepted++
		} else if c != http.StatusTooManyRequests {
			t.Errorf("status %d", c)
		}
	}
	if pending, _, err := store.Counts(ctx, "acme"); accepted != 5 || err != nil || pending != maxPendingErasures {
		t.Errorf("%d of 20 accepted, %d pending (%v); want 5 and %d", accepted, pending, err, maxPendingErasures)
	}
	if rr := do(t, h, http.MethodDelete, "/v1/users/dave", "10.0.0.1:5000", globex, "", nil); rr.Code != http.StatusAccepted {
		t.Errorf("another tenant under the cap: %d, want 202", rr.Code)
	}

	// The daily limit: globex asked for the most in the last day (done).
	if err := conn.Exec(ctx, fmt.Sprintf(`INSERT INTO %s.erasures (id, tenant, kind, subject, subject_key, requested_by, requested_at, status, step, detail, completed_at, version)
		SELECT toString(generateUUIDv4()), 'globex', 'user', toString(number), '', 'test', now() - 3600, 'done', 'done', '', now(), 1 FROM system.numbers LIMIT %d`,
		db, maxDailyErasures)); err != nil {
		t.Fatal(err)
	}
	rr := do(t, h, http.MethodDelete, "/v1/users/erin", "10.0.0.1:5000", globex, "", nil)
	if rr.Code != http.StatusTooManyRequests || !strings.Contains(rr.Body.String(), "24 hours") {
		t.Errorf("over the daily limit: %d %s, want 429", rr.Code, rr.Body)
	}
	// A day later they count no more.
	later := erasure.NewStore(conn, db, func() time.Time { return time.Now().Add(25 * time.Hour) })
	if rr := do(t, New(Options{Auth: erasureAuth(t), Erasures: later}), http.MethodDelete, "/v1/users/erin", "10.0.0.1:5000", globex, "", nil); rr.Code != http.StatusAccepted {
		t.Errorf("a day later: %d %s, want 202", rr.Code, rr.Body)
	}
}

// TestErasureAwkwardSubjects: a user id and a property name and value with
// a quote, a backslash, a question mark and non-ASCII letters go from the
// path to ClickHouse intact: the erasure removes exactly that subject's
// rows, and a subject differing only by those characters keeps its own.
func TestErasureAwkwardSubjects(t *testing.T) {
	u, db, conn := erasureDB(t)
	ctx := context.Background()
	store := erasure.NewStore(conn, db, nil)
	h := New(Options{Auth: erasureAuth(t), Erasures: store})

	user := `o'brien\?ü 名前`
	propName, propValue := `ré'gion\?`, `nörd'\?`
	w, err := chstore.Open(ctx, chstore.Options{URL: u, SpoolDir: t.TempDir(), FlushInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC().Add(-time.Hour)
	mk := func(user, k, v string) *record.Record {
		return &record.Record{RequestID: record.NewID(), CreatedAt: at, Tenant: "acme", UserID: user,
			Properties: []record.Property{{Key: k, Value: v}}, Status: 200}
	}
	byUser, byProp := mk(user, "x", "y"), mk("plain", propName, propValue)
	keptUser, keptProp := mk(`obrien?u 名前`, "x", "y"), mk("plain", `ré'gion\?`, `nord'\?`)
	for _, r := range []*record.Record{byUser, byProp, keptUser, keptProp} {
		w.Write(r)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := w.Close(cctx); err != nil {
		t.Fatal(err)
	}

	for _, p := range []string{
		"/v1/users/" + url.PathEscape(user),
		"/v1/properties/" + url.PathEscape(strings.ToUpper(propName)) + "/" + url.PathEscape(propValue),
	} {
		rr := do(t, h, http.MethodDelete, p, "10.0.0.1:5000", acme, "", nil)
		if rr.Code != http.StatusAccepted {
			t.Fatalf("DELETE %s: %d %s", p, rr.Code, rr.Body)
		}
		var out erasureOut
		_ = json.Unmarshal(rr.Body.Bytes(), &out)
		e, err := store.Get(ctx, "acme", out.ID)
		if err != nil || e == nil {
			t.Fatalf("DELETE %s not recorded: %v", p, err)
		}
		if want := (erasure.Subject{Kind: erasure.User, Value: user}); e.Subject.Kind == erasure.User && e.Subject != want {
			t.Errorf("recorded %+v, want %+v", e.Subject, want)
		}
		if want := (erasure.Subject{Kind: erasure.Property, Key: strings.ToLower(propName), Value: propValue}); e.Subject.Kind == erasure.Property && e.Subject != want {
			t.Errorf("recorded %+v, want %+v", e.Subject, want)
		}
	}
	runner := erasure.NewRunner(erasure.Options{Conn: conn, DB: db, Now: func() time.Time { return time.Now().Add(time.Hour) }})
	testenv.Eventually(t, 60*time.Second, func() error {
		if err := runner.Pass(ctx); err != nil {
			return err
		}
		if n, _, err := store.Counts(ctx, "acme"); err != nil || n != 0 {
			return fmt.Errorf("%d pending, %v", n, err)
		}
		return nil
	})
	for _, c := range []struct {
		r    *record.Record
		want uint64
	}{{byUser, 0}, {byProp, 0}, {keptUser, 1}, {keptProp, 1}} {
		var n uint64
		if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT count() FROM %s.requests WHERE request_id = toUUID(?)", db), c.r.RequestID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != c.want {
			t.Errorf("user %q, property %q=%q: %d rows, want %d", c.r.UserID, c.r.Properties[0].Key, c.r.Properties[0].Value, n, c.want)
		}
	}
}
