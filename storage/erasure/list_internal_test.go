package erasure

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/testenv"
	"github.com/tollgate-dev/tollgate/record"
	"github.com/tollgate-dev/tollgate/storage/chschema"
)

// TestListIncrementalAndBounded: a Sync after the first reads what was
// recorded since (an erasure asked for later is seen), and the list holds
// at most its bound, forgetting the oldest erasures first.
func TestListIncrementalAndBounded(t *testing.T) {
	db := fmt.Sprintf("erasure_list_%d_%04x", time.Now().UnixNano()%1e9, rand.N(1<<16))
	url := testenv.ClickHouseURL(t) + "/" + db
	ctx := context.Background()
	if err := chschema.Migrate(ctx, url, nil); err != nil {
		t.Fatal(err)
	}
	conn, _, err := chschema.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db)
		conn.Close()
	})
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
