package erasure

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/tollgate-dev/tollgate/record"
	"github.com/tollgate-dev/tollgate/storage/chstore/chtest"
)

// TestListIncrementalAndBounded: a Sync after the first reads what was
// recorded since (an erasure asked for later is seen), and the list holds
// at most its bound, forgetting the oldest erasures first.
func TestListIncrementalAndBounded(t *testing.T) {
	conn, db := internalDB(t)
	ctx := context.Background()
	base := time.Now().UTC().Add(-time.Hour)
	clock := base
	store := NewStore(conn, db, func() time.Time { return clock })
	ask := func(user string) {
		t.Helper()
		if _, err := store.Request(ctx, "t", Subject{Kind: User, Value: user}, "test"); err != nil {
			t.Fatal(err)
		}
		clock = clock.Add(time.Minute)
	}
	erased := func(l *List, user string) bool {
		return l.Erased(&record.Record{Tenant: "t", UserID: user, CreatedAt: base.Add(-time.Hour)})
	}
	ask("u1")
	ask("u2")
	ask("u3")
	l := NewList(conn, db)
	l.max = 2
	if err := l.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if erased(l, "u1") || !erased(l, "u2") || !erased(l, "u3") {
		t.Errorf("after the first sync: u1 %v u2 %v u3 %v; want the newest two", erased(l, "u1"), erased(l, "u2"), erased(l, "u3"))
	}
	ask("u4")
	if err := l.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if !erased(l, "u4") || erased(l, "u2") || !erased(l, "u3") || l.n != 2 {
		t.Errorf("after the next sync: u2 %v u3 %v u4 %v, %d held; want u3 and u4", erased(l, "u2"), erased(l, "u3"), erased(l, "u4"), l.n)
	}
}

// TestPendingTakesTenantsInTurn: tenant a's three erasures, asked for
// first, do not all come before tenant b's one: each tenant's oldest
// comes first.
func TestPendingTakesTenantsInTurn(t *testing.T) {
	conn, db := internalDB(t)
	ctx := context.Background()
	clock := time.Now().UTC().Add(-time.Hour)
	store := NewStore(conn, db, func() time.Time { return clock })
	for _, who := range [][2]string{{"a", "1"}, {"a", "2"}, {"a", "3"}, {"b", "1"}, {"b", "2"}} {
		if _, err := store.Request(ctx, who[0], Subject{Kind: User, Value: who[1]}, "test"); err != nil {
			t.Fatal(err)
		}
		clock = clock.Add(time.Second)
	}
	list, err := store.pending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range list {
		got = append(got, e.Tenant+e.Subject.Value)
	}
	if want := []string{"a1", "b1", "a2", "b2", "a3"}; !slices.Equal(got, want) {
		t.Errorf("pending order %v, want %v", got, want)
	}
}

// internalDB migrates a database of its own on the test ClickHouse.
func internalDB(t *testing.T) (driver.Conn, string) {
	t.Helper()
	_, conn, db := chtest.FreshDatabase(t, "erasure_in")
	return conn, db
}
