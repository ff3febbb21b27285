package erasure_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/testenv"
	"github.com/tollgate-dev/tollgate/record"
	"github.com/tollgate-dev/tollgate/storage/erasure"
)

// TestEraseSessionPropertyRequest: the other kinds of subject select the
// right rows of requests (and their feedback): a session, a property
// value (its name in any case), one request id; the same subjects in
// another tenant, and the calls of no erased subject, stay. A writer with
// the erasure list then drops a late record of the session created before
// the erasure (or up to ClockMargin after it, a clock ahead), and inserts
// one created after that.
func TestEraseSessionPropertyRequest(t *testing.T) {
	url, db, conn := freshDB(t)
	ctx := context.Background()
	at := time.Now().UTC().Add(-time.Hour)
	mk := func(tenant, session, env string) *record.Record {
		return &record.Record{RequestID: record.NewID(), CreatedAt: at, Tenant: tenant, UserID: "u", SessionID: session,
			Properties: []record.Property{{Key: "env", Value: env}}, Status: 200}
	}
	w := openWriter(t, url, t.TempDir(), nil)
	ids := map[string]string{}
	for _, tenant := range []string{"a", "b"} {
		for _, c := range [][3]string{{"bySession", "s1", "prod"}, {"byProperty", "s2", "dev"}, {"byRequest", "s3", "prod"}, {"kept", "s4", "test"}} {
			r := mk(tenant, c[1], c[2])
			ids[tenant+"/"+c[0]] = r.RequestID
			w.Write(r)
		}
	}
	// Logged by a process whose clock runs two minutes ahead: created
	// "after" the erasure below by its clock, erased all the same
	// (erasure.ClockMargin).
	skewed := mk("a", "s1", "prod")
	skewed.CreatedAt = time.Now().UTC().Add(2 * time.Minute)
	ids["a/skewed"] = skewed.RequestID
	w.Write(skewed)
	closeWriter(t, w)
	store := erasure.NewStore(conn, db, nil)
	var list []string
	for _, sub := range []erasure.Subject{
		{Kind: erasure.Session, Value: "s1"},
		{Kind: erasure.Property, Key: "ENV", Value: "dev"},
		{Kind: erasure.Request, Value: ids["a/byRequest"]},
	} {
		e, err := store.Request(ctx, "a", sub, "test")
		if err != nil {
			t.Fatal(err)
		}
		list = append(list, e.ID)
	}
	runner := erasure.NewRunner(erasure.Options{Conn: conn, DB: db, Now: func() time.Time { return time.Now().Add(time.Hour) }})
	testenv.Eventually(t, 60*time.Second, func() error {
		if err := runner.Pass(ctx); err != nil {
			return err
		}
		for _, id := range list {
			if e, err := store.Get(ctx, "a", id); err != nil || e.Status != erasure.Done {
				return fmt.Errorf("%s: %+v %v", id, e, err)
			}
		}
		return nil
	})
	rows, err := conn.Query(ctx, fmt.Sprintf("SELECT toString(request_id) FROM %s.requests FINAL ORDER BY tenant, session_id", db))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		got = append(got, id)
	}
	rows.Close()
	want := []string{ids["a/kept"], ids["b/bySession"], ids["b/byProperty"], ids["b/byRequest"], ids["b/kept"]}
	if !slices.Equal(got, want) {
		t.Errorf("rows left %v, want %v", got, want)
	}

	w = openWriter(t, url, t.TempDir(), erasure.NewList(conn, db))
	late, ahead, after := mk("a", "s1", "x"), mk("a", "s1", "x"), mk("a", "s1", "x")
	ahead.CreatedAt = time.Now().Add(time.Minute) // a clock ahead, within the margin
	after.CreatedAt = time.Now().Add(erasure.ClockMargin + 2*time.Second)
	w.Write(late)
	w.Write(ahead)
	w.Write(after)
	closeWriter(t, w)
	for _, c := range []struct {
		r    *record.Record
		want uint64
	}{{late, 0}, {ahead, 0}, {after, 1}} {
		if n := count(t, conn, fmt.Sprintf("SELECT count() FROM %s.requests WHERE request_id = toUUID(?)", db), c.r.RequestID); n != c.want {
			t.Errorf("record of %v: %d rows, want %d", c.r.CreatedAt, n, c.want)
		}
	}
}
