package fault

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tollgate-dev/tollgate/internal/testenv"
)

// TestRedisKilled: two tollgates share a private Redis, one failing open
// (the default) and one with --ratelimit-fail-closed. Every call carries a
// rate-limit policy of quota q. With Redis up each admits exactly q of 2q
// calls (429 for the rest); with Redis killed the fail-open one answers all
// 2q (the limit is not enforced while Redis is down) and the fail-closed
// one refuses all 2q with a 503; with Redis back (empty: no persistence) a
// fresh bucket admits q again. Every call, answered or refused, is logged.
func TestRedisKilled(t *testing.T) {
	rd := testenv.StartRedis(t)
	db := newLogDB(t, testenv.ClickHouseURL(t), "redis")
	q := size(5, 100)
	open := newStack(t, "--clickhouse", db.url, "--redis", rd.URL()).start(t)
	closed := newStack(t, "--clickhouse", db.url, "--redis", rd.URL(), "--ratelimit-fail-closed").start(t)
	db.waitMigrated()

	type phase struct {
		name string
		b    *burst
	}
	var all []phase
	// send runs 2q calls of one phase against g, all under one fresh
	// bucket (a user of their own), and returns the statuses.
	send := func(g *tollgate, name string) *burst {
		user := "fault-" + uuid.NewString()
		policy := fmt.Sprintf("%d;w=3600;s=user", q)
		b := newBurst()
		b.drive(context.Background(), g.url(""), call{path: "/v1/chat/completions", body: chatBody, header: func(int) http.Header {
			return http.Header{"Helicone-Ratelimit-Policy": {policy}, "Helicone-User-Id": {user}}
		}}, 2*q, 4, 0)
		all = append(all, phase{name, b})
		return b
	}
	expect := func(b *burst, what string, ok, limited, unavailable int) {
		t.Helper()
		if b.count(200) != ok || b.count(429) != limited || b.count(503) != unavailable || b.count(0) != 0 {
			t.Errorf("%s: %d answered, %d rate-limited (429), %d refused (503), %d without answer; want %d, %d, %d, 0",
				what, b.count(200), b.count(429), b.count(503), b.count(0), ok, limited, unavailable)
		}
	}

	expect(send(open, "fail-open, Redis up"), "fail-open, Redis up", q, q, 0)
	expect(send(closed, "fail-closed, Redis up"), "fail-closed, Redis up", q, q, 0)
	rd.Kill()
	failOpen := open.metric("tollgate_ratelimit_checks_total", `result="fail_open"`)
	expect(send(open, "fail-open, Redis down"), "fail-open, Redis down", 2*q, 0, 0)
	expect(send(closed, "fail-closed, Redis down"), "fail-closed, Redis down", 0, 0, 2*q)
	failOpen = open.metric("tollgate_ratelimit_checks_total", `result="fail_open"`) - failOpen
	rd.Start()
	// The client redials on its own (after a failed dial it waits a
	// moment): a probe with a bucket of its own tells when it has.
	for _, g := range []*tollgate{open, closed} {
		testenv.Eventually(t, 30*time.Second, func() error {
			failed := g.metric("tollgate_ratelimit_checks_total", `result="fail_`)
			p := newBurst()
			p.drive(context.Background(), g.url(""), call{path: "/v1/chat/completions", body: chatBody, header: func(int) http.Header {
				return http.Header{"Helicone-Ratelimit-Policy": {"1;w=3600;s=user"}, "Helicone-User-Id": {"probe-" + uuid.NewString()}}
			}}, 1, 1, 0)
			if p.count(200) != 1 || g.metric("tollgate_ratelimit_checks_total", `result="fail_`) != failed {
				return fmt.Errorf("Redis not reached again yet")
			}
			return nil
		})
	}
	expect(send(open, "fail-open, Redis back"), "fail-open, Redis back", q, q, 0)
	expect(send(closed, "fail-closed, Redis back"), "fail-closed, Redis back", q, q, 0)
	if failOpen != float64(2*q) {
		t.Errorf("tollgate_ratelimit_checks_total{result=fail_open} rose by %v while Redis was down, want %d", failOpen, 2*q)
	}
	open.stop()
	closed.stop()

	for _, p := range all {
		sent, answered := p.b.ids(200)
		c := db.waitRows(sent, 60*time.Second)
		lost, missing := c.lost(sent)
		dup := 0
		for _, id := range sent {
			dup += max(c.perID[id]-1, 0)
		}
		report(t, figures{scenario: "Redis killed: " + p.name, sent: len(sent), answered: len(answered),
			rows: len(sent) - lost + dup, lost: lost, duplicated: dup,
			note: fmt.Sprintf("%d rate-limited (429), %d refused (503)", p.b.count(429), p.b.count(503))})
		if lost != 0 || dup != 0 {
			t.Errorf("%s: %d calls without a row (e.g. %v), %d duplicated: every call, refused or not, is logged once", p.name, lost, missing, dup)
		}
	}
}
