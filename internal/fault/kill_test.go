package fault

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/testenv"
)

// TestKill9MidBurst: tollgate is SIGKILLed while calls are in flight and
// started again on the same spool folder; the burst goes on against the new
// process. Every call answered, before the kill or after, has exactly one
// row. Calls cut by the kill may have a row or not (the provider may have
// answered them); they are sent, not answered.
//
// Twice: with ClickHouse healthy, and with ClickHouse hung (SIGSTOP) from a
// third of the burst until after the kill, so that the kill finds the
// records of many answered calls not yet in ClickHouse.
func TestKill9MidBurst(t *testing.T) {
	ch := testenv.StartClickHouse(t)
	t.Cleanup(func() {
		if ch.Running() {
			ch.Resume()
			ch.Kill()
		}
	})
	for _, hung := range []bool{false, true} {
		name := map[bool]string{false: "ClickHouse up", true: "ClickHouse hung"}[hung]
		t.Run(name, func(t *testing.T) { kill9(t, ch, hung, name) })
	}
}

func kill9(t *testing.T, ch *testenv.ClickHouseServer, hung bool, name string) {
	db := newLogDB(t, ch.URL(), "kill9")
	s := newStack(t, "--clickhouse", db.url)
	n, conc := size(300, 6000), size(8, 16)
	rate := float64(size(0, 200))
	g := s.start(t)
	db.waitMigrated()

	b := newBurst()
	ctx, cancel := context.WithCancel(context.Background())
	sentBefore := make(chan int, 1)
	go func() {
		sentBefore <- b.drive(ctx, g.url(""), call{path: "/v1/chat/completions", body: chatBody}, n, conc, rate)
	}()
	if hung {
		testenv.WaitFor(t, 120*time.Second, "a third answered", func() bool { return b.answered.Load() >= int64(n/3) })
		ch.Pause()
	}
	testenv.WaitFor(t, 120*time.Second, "half answered", func() bool { return b.answered.Load() >= int64(n/2) })
	cancel() // no new calls; the ones in flight are cut by the kill
	g.kill()
	first := <-sentBefore
	answeredBefore := b.answered.Load()
	if hung {
		ch.Resume()
	}

	g = s.start(t)
	b.drive(context.Background(), g.url(""), call{path: "/v1/chat/completions", body: chatBody}, n-first, conc, rate)
	g.stop()

	sent, answered := b.ids(200)
	c := db.waitRows(answered, 60*time.Second)
	lost, missing := c.lost(answered)
	report(t, figures{scenario: "kill -9 mid-burst, restart (" + name + ")", sent: len(sent), answered: len(answered),
		rows: c.final, lost: lost, duplicated: c.duplicated(),
		note: fmt.Sprintf("killed after %d answered; cut by the kill: %d", answeredBefore, b.count(0))})
	if lost != 0 || c.duplicated() != 0 {
		t.Errorf("answered calls without a row: %d (e.g. %v); duplicated rows: %d", lost, missing, c.duplicated())
	}
	for _, id := range answered {
		if c.perID[id] != 1 {
			t.Errorf("answered call %s has %d rows with FINAL, want 1", id, c.perID[id])
			break
		}
	}
	if len(sent) != n || len(answered) < n-conc {
		t.Errorf("%d of %d calls sent, %d answered: at most the %d in flight may be cut", len(sent), n, len(answered), conc)
	}
}
