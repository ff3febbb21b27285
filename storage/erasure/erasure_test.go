package erasure_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/tollgate-dev/tollgate/internal/testenv"
	"github.com/tollgate-dev/tollgate/policies/gate"
	"github.com/tollgate-dev/tollgate/policies/ratelimit"
	"github.com/tollgate-dev/tollgate/policies/semcache"
	"github.com/tollgate-dev/tollgate/record"
	"github.com/tollgate-dev/tollgate/storage/chquery"
	"github.com/tollgate-dev/tollgate/storage/chstore"
	"github.com/tollgate-dev/tollgate/storage/chstore/chtest"
	"github.com/tollgate-dev/tollgate/storage/erasure"
	"github.com/tollgate-dev/tollgate/storage/redisstore"
)

// freshDB migrates a database of its own on the test ClickHouse and
// returns its URL, name and a connection; dropped at the end.
func freshDB(t *testing.T) (string, string, driver.Conn) {
	t.Helper()
	url, conn, db := chtest.FreshDatabase(t, "erasure")
	return url, db, conn
}

func rec(tenant, user string, i int, at time.Time) *record.Record {
	return &record.Record{
		RequestID: record.NewID(), CreatedAt: at.Add(time.Duration(i) * time.Millisecond), Tenant: tenant, UserID: user,
		SessionID: "s-" + user, Properties: []record.Property{{Key: "app", Value: "web"}},
		Provider: "openai", Model: "gpt-4o-mini", Status: 200,
		RequestBody: `{"messages":[{"role":"user","content":"secret of ` + user + `"}]}`, ResponseBody: `{"choices":[]}`,
	}
}

func openWriter(t *testing.T, url, spool string, er chstore.Erasures) *chstore.Writer {
	t.Helper()
	w, err := chstore.Open(context.Background(), chstore.Options{URL: url, SpoolDir: spool, FlushInterval: 50 * time.Millisecond, Erasures: er})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func closeWriter(t *testing.T, w *chstore.Writer) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// rows counts tenant's rows of user in table (feedback and scores through
// the request ids given).
func count(t *testing.T, conn driver.Conn, q string, args ...any) uint64 {
	t.Helper()
	var n uint64
	if err := conn.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestEraseUser erases one user of one tenant everywhere: rows in
// ClickHouse (requests, feedback, scores), records in a spool written
// while ClickHouse was unreachable, exact and semantic cache entries in
// Redis (on every replica's semantic index). Another user of the tenant,
// and the same user id in another tenant, keep everything. The erasure
// is pending, then done, and its audit row says who asked and when it
// completed.
func TestEraseUser(t *testing.T) {
	url, db, conn := freshDB(t)
	ctx := context.Background()
	now := time.Now().UTC()

	// In ClickHouse: 3 calls each of a/u1, a/u2 and b/u1, rated and scored.
	w := openWriter(t, url, t.TempDir(), nil)
	var ids = map[string][]string{}
	for _, who := range [][2]string{{"a", "u1"}, {"a", "u2"}, {"b", "u1"}} {
		for i := range 3 {
			r := rec(who[0], who[1], i, now.Add(-time.Hour))
			ids[who[0]+"/"+who[1]] = append(ids[who[0]+"/"+who[1]], r.RequestID)
			w.Write(r)
		}
	}
	closeWriter(t, w)
	q := chquery.NewRequests(conn, db, nil)
	for who, list := range ids {
		tenant := strings.Split(who, "/")[0]
		for _, id := range list {
			if err := chstore.InsertFeedback(ctx, conn, db, chstore.Feedback{RequestID: id, Tenant: tenant, Rating: true}); err != nil {
				t.Fatal(err)
			}
			if err := q.InsertScores(ctx, tenant, id, now, []chquery.Score{{Name: "quality", Value: 1}}); err != nil {
				t.Fatal(err)
			}
		}
	}

	// In a spool: ClickHouse unreachable (nothing listens on port 1).
	spool := t.TempDir()
	down := openWriter(t, "clickhouse://127.0.0.1:1/"+db+"?dial_timeout=200ms", spool, nil)
	for i := range 4 {
		r := rec("a", "u1", 10+i, now.Add(-time.Minute))
		ids["spool a/u1"] = append(ids["spool a/u1"], r.RequestID)
		down.Write(r)
	}
	r := rec("a", "u2", 20, now.Add(-time.Minute))
	ids["spool a/u2"] = append(ids["spool a/u2"], r.RequestID)
	down.Write(r)
	closeWriter(t, down)
	if n := spoolFiles(t, spool); n == 0 {
		t.Fatal("nothing was spooled")
	}

	// In Redis: exact entries through the index, semantic ones through two
	// replicas' caches.
	prefix := fmt.Sprintf("erasure-test-%x:", rand.Uint64())
	rs, err := redisstore.Open(testenv.RedisURL(t), redisstore.Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	index := func(tenant, user string) []string {
		return []string{gate.ErasureIndexKey(tenant, "user", user), gate.ErasureIndexKey(tenant, "session", "s-"+user)}
	}
	exact := map[string]string{}
	for _, who := range [][2]string{{"a", "u1"}, {"a", "u2"}, {"b", "u1"}} {
		ck := ratelimit.TenantKeyPrefix(who[0]) + "c:" + who[1]
		if _, err := rs.FillIndexed(ctx, ck, 1, []byte("answer for "+who[1]), time.Hour, index(who[0], who[1])); err != nil {
			t.Fatal(err)
		}
		exact[who[0]+"/"+who[1]] = prefix + gate.CacheSlotKey(ck, 0)
	}
	vec := []float32{1, 0, 0}
	newCache := func() *semcache.Cache {
		c, err := semcache.New(semcache.Options{Store: rs.Semantic(100), Embedder: fixedEmbedder(vec)})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	replica1, replica2 := newCache(), newCache()
	semScope := func(tenant, user string) string { return ratelimit.TenantKeyPrefix(tenant) + "sc:" + user }
	for _, who := range [][2]string{{"a", "u1"}, {"a", "u2"}, {"b", "u1"}} {
		replica1.Add(ctx, semScope(who[0], who[1]), "r", vec, []byte("semantic answer"), time.Hour, index(who[0], who[1])...)
	}
	replica2.Follow(ctx)

	// Erase a/u1.
	store := erasure.NewStore(conn, db, nil)
	e, err := store.Request(ctx, "a", erasure.Subject{Kind: erasure.User, Value: "u1"}, "api-key:0123abcd")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := store.Get(ctx, "a", e.ID); err != nil || got == nil || got.Status != erasure.Pending {
		t.Fatalf("status after the request: %+v, %v", got, err)
	}
	if got, err := store.Get(ctx, "b", e.ID); err != nil || got != nil {
		t.Errorf("tenant b sees tenant a's erasure: %+v, %v", got, err)
	}
	if n, err := store.PendingCount(ctx, "a"); err != nil || n != 1 {
		t.Errorf("PendingCount(a) = %d, %v; want 1", n, err)
	}

	// The runner, past the grace period (its clock an hour ahead).
	runner := erasure.NewRunner(erasure.Options{Conn: conn, DB: db, Caches: rs,
		Now: func() time.Time { return time.Now().Add(time.Hour) }})
	testenv.Eventually(t, 60*time.Second, func() error {
		if err := runner.Pass(ctx); err != nil {
			return err
		}
		got, err := store.Get(ctx, "a", e.ID)
		if err != nil {
			return err
		}
		if got.Status != erasure.Done {
			return fmt.Errorf("status %s, step %s", got.Status, got.Step)
		}
		return nil
	})

	// The spooling process reaches ClickHouse only now, after the erasure
	// is done (its mutations cannot see the spool): the replay drops a/u1's
	// records through the erasure list.
	list := erasure.NewList(conn, db)
	back := openWriter(t, url, spool, list)
	testenv.WaitFor(t, 30*time.Second, "spool replayed", func() bool { return spoolFiles(t, spool) == 0 })
	closeWriter(t, back)
	if n := count(t, conn, fmt.Sprintf("SELECT count() FROM %s.requests WHERE request_id IN (%s)", db, quoted(ids["spool a/u2"]))); n != 1 {
		t.Errorf("a/u2's spooled record: %d rows, want 1", n)
	}

	// Nothing of a/u1 anywhere.
	for _, table := range []string{"requests", "feedback", "scores"} {
		all := append(append([]string{}, ids["a/u1"]...), ids["spool a/u1"]...)
		if n := count(t, conn, fmt.Sprintf("SELECT count() FROM %s.%s WHERE request_id IN (%s)", db, table, quoted(all))); n != 0 {
			t.Errorf("%s: %d rows of a/u1 left", table, n)
		}
	}
	if n := count(t, conn, fmt.Sprintf("SELECT count() FROM %s.requests WHERE tenant = 'a' AND user_id = 'u1'", db)); n != 0 {
		t.Errorf("%d requests rows of a/u1 left", n)
	}
	// The others keep theirs.
	for _, who := range []string{"a/u2", "b/u1"} {
		for _, table := range []string{"requests", "feedback", "scores"} {
			if n := count(t, conn, fmt.Sprintf("SELECT count() FROM %s.%s WHERE request_id IN (%s)", db, table, quoted(ids[who]))); n != 3 {
				t.Errorf("%s: %s has %d rows, want 3", table, who, n)
			}
		}
	}
	c := rs.Client()
	if c.Exists(ctx, exact["a/u1"]).Val() != 0 {
		t.Error("a/u1's exact cache entry is still there")
	}
	for _, who := range []string{"a/u2", "b/u1"} {
		if c.Exists(ctx, exact[who]).Val() != 1 {
			t.Errorf("%s's exact cache entry is gone", who)
		}
	}
	replica1.Follow(ctx)
	replica2.Follow(ctx)
	later := newCache()
	later.Follow(ctx)
	for i, r := range []*semcache.Cache{replica1, replica2, later} {
		if _, m, _ := r.Lookup(ctx, semScope("a", "u1"), "q", 0.5); m != nil {
			t.Errorf("replica %d still finds a/u1's semantic entry", i+1)
		}
		for _, who := range [][2]string{{"a", "u2"}, {"b", "u1"}} {
			if _, m, _ := r.Lookup(ctx, semScope(who[0], who[1]), "q", 0.5); m == nil {
				t.Errorf("replica %d lost %s/%s's semantic entry", i+1, who[0], who[1])
			}
		}
	}

	if n, err := store.PendingCount(ctx, "a"); err != nil || n != 0 {
		t.Errorf("PendingCount(a) after done = %d, %v", n, err)
	}
	// The audit row.
	got, err := store.Get(ctx, "a", e.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.RequestedBy != "api-key:0123abcd" || got.Subject != (erasure.Subject{Kind: erasure.User, Value: "u1"}) ||
		got.CompletedAt.Before(got.RequestedAt) || got.Step != "done" {
		t.Errorf("audit row %+v", got)
	}
	for _, want := range []string{"request rows: 3", "feedback rows: 3", "score rows: 3", "cache entries: 2"} {
		if !strings.Contains(got.Detail, want) {
			t.Errorf("detail %q lacks %q", got.Detail, want)
		}
	}
}

func spoolFiles(t *testing.T, dir string) int {
	n := 0
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.Contains(p, string(filepath.Separator)+"wal") && !strings.HasSuffix(p, ".lock") {
			n++
		}
		return nil
	})
	return n
}

func quoted(ids []string) string {
	q := make([]string, len(ids))
	for i, id := range ids {
		q[i] = "toUUID('" + id + "')"
	}
	return strings.Join(q, ", ")
}

type fixedEmbedder []float32

func (f fixedEmbedder) Embed(context.Context, string) ([]float32, error) {
	return append([]float32(nil), f...), nil
}
