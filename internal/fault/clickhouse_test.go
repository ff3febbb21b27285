package fault

import (
	"context"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/testenv"
)

// TestClickHouseKilledMidBurst: a private ClickHouse is SIGKILLed a third
// of the way into a burst and started again at two thirds. Calls never wait
// for ClickHouse, so every one is answered; the records of the outage go to
// the spool and are replayed: every call has exactly one row.
func TestClickHouseKilledMidBurst(t *testing.T) {
	ch := testenv.StartClickHouse(t)
	t.Cleanup(func() {
		if ch.Running() {
			ch.Kill() // throw-away data: no graceful stop to wait for
		}
	})
	db := newLogDB(t, ch.URL(), "chkill")
	s := newStack(t, "--clickhouse", db.url)
	n, conc := size(400, 6000), size(8, 16)
	rate := float64(size(0, 200))
	g := s.start(t)
	db.waitMigrated()

	b := newBurst()
	done := make(chan int, 1)
	go func() {
		done <- b.drive(context.Background(), g.url(""), call{path: "/v1/chat/completions", body: chatBody}, n, conc, rate)
	}()
	testenv.WaitFor(t, 120*time.Second, "a third answered", func() bool { return b.done.Load() >= int64(n/3) })
	ch.Kill()
	testenv.WaitFor(t, 120*time.Second, "two thirds answered", func() bool { return b.done.Load() >= int64(2*n/3) })
	ch.Start()
	<-done

	sent, answered := b.ids(200)
	// The spool is replayed while tollgate runs; then a clean stop.
	c := db.waitRows(sent, 120*time.Second)
	spooled := g.metric("tollgate_log_rows_spooled_total")
	dropped := g.metric("tollgate_log_rows_dropped_total")
	g.stop()
	c = db.waitRows(sent, 10*time.Second)
	lost, missing := c.lost(sent)
	report(t, figures{scenario: "ClickHouse killed mid-burst, restarted", sent: len(sent), answered: len(answered),
		rows: c.final, lost: lost, duplicated: c.duplicated(), dropped: int(dropped)})
	t.Logf("%v records went through the spool", spooled)
	if len(answered) != n || len(sent) != n {
		t.Errorf("%d sent, %d answered, want all %d: a call must not wait for ClickHouse", len(sent), len(answered), n)
	}
	if lost != 0 || c.duplicated() != 0 || c.final != n || dropped != 0 {
		t.Errorf("rows %d for %d calls: %d lost (e.g. %v), %d duplicated, %v dropped; want exactly one each",
			c.final, n, lost, missing, c.duplicated(), dropped)
	}
}
