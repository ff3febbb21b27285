package app

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate-dev/tollgate/storage/chschema"
	"github.com/tollgate-dev/tollgate/storage/chstore"
	"github.com/tollgate-dev/tollgate/storage/erasure"
	"github.com/tollgate-dev/tollgate/storage/housekeeping"
	"github.com/tollgate-dev/tollgate/storage/redisstore"
	"github.com/tollgate-dev/tollgate/storage/retention"
)

// The erasure and retention jobs (docs/privacy.md), in the gateway role:
// every pass in one process at a time when Redis is shared (a lease),
// else in each process (their steps are idempotent).

const (
	erasureEvery   = 5 * time.Second
	retentionEvery = time.Hour
)

// erasureGrace is the erasures' wait before their mutations; 0: the
// default (chstore.ErasureGrace). Tests shorten it.
var erasureGrace time.Duration

// erasureList is the log writer's erasure list (chstore.Options.NewErasures).
func erasureList(conn driver.Conn, db string) chstore.Erasures { return erasure.NewList(conn, db) }

// startHousekeeping starts the jobs on the API's ClickHouse pool; the
// returned func stops them (before the pool closes). gateStore is the
// gate's store: the Redis one erases cache entries and holds the leases.
func startHousekeeping(cfg *Config, ch *apiClickHouse, gateStore io.Closer, reg prometheus.Registerer, log *slog.Logger) (func(), error) {
	if ch == nil {
		if cfg.Retention.Duration > 0 || cfg.BodyRetention.Duration > 0 {
			return nil, fmt.Errorf("retention: --retention and --body-retention need ClickHouse (--clickhouse)")
		}
		return func() {}, nil
	}
	bodyRetention, err := bodyRetention(cfg)
	if err != nil {
		return nil, err
	}
	target, err := chschema.ParseURL(cfg.ClickHouse)
	if err != nil {
		return nil, err
	}
	rs, _ := gateStore.(*redisstore.Store)
	owner := leaseOwner()
	lease := func(name string, ttl time.Duration) (housekeeping.Lease, time.Duration) {
		if rs == nil {
			return nil, 0
		}
		return func(ctx context.Context) (bool, error) { return rs.TryLease(ctx, name, owner, ttl) }, ttl
	}
	eo := erasure.Options{Conn: ch.conn, DB: ch.db, Cluster: target.Cluster, Grace: erasureGrace, Logger: log, Registerer: reg}
	if rs != nil {
		eo.Caches = rs
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	// The leases are renewed while a pass runs (housekeeping.Job.LeaseTTL).
	el, ettl := lease("erasure", 3*erasureEvery)
	jobs := []housekeeping.Job{{Name: "erasure", Interval: erasureEvery, Lease: el, LeaseTTL: ettl,
		Pass: erasure.NewRunner(eo).Pass}}
	if cfg.Retention.Duration > 0 || bodyRetention > 0 {
		r := retention.New(retention.Options{Conn: ch.conn, DB: ch.db, Cluster: target.Cluster, Retention: cfg.Retention.Duration,
			BodyRetention: bodyRetention, Logger: log})
		rl, rttl := lease("retention", 3*retentionEvery)
		jobs = append(jobs, housekeeping.Job{Name: "retention", Interval: retentionEvery,
			Lease: rl, LeaseTTL: rttl, Pass: r.Pass})
		log.Info("retention on", "retention", cfg.Retention.Duration, "body_retention", bodyRetention)
	}
	for _, j := range jobs {
		go func() { housekeeping.Run(ctx, j, log); done <- struct{}{} }()
	}
	return func() {
		cancel()
		for range jobs {
			<-done
		}
	}, nil
}

// bodyRetention is --body-retention, or the --clickhouse URL's
// body_ttl_days when only that is set; both set must agree (docs/privacy.md).
func bodyRetention(cfg *Config) (time.Duration, error) {
	t, err := chschema.ParseURL(cfg.ClickHouse)
	if err != nil {
		return 0, err
	}
	urlDays := time.Duration(t.BodyTTLDays) * 24 * time.Hour
	flag := cfg.BodyRetention.Duration
	switch {
	case flag == 0:
		return urlDays, nil
	case urlDays != 0 && urlDays != flag:
		return 0, fmt.Errorf("body-retention %s and the --clickhouse URL's body_ttl_days=%d disagree: set one (body-retention is the one to prefer)",
			cfg.BodyRetention.String(), t.BodyTTLDays)
	}
	if r := cfg.Retention.Duration; r > 0 && flag > r {
		return 0, fmt.Errorf("body-retention %s is longer than retention %s: bodies go with their rows; shorten it or leave it unset", flag, r)
	}
	return flag, nil
}

// noneOrADay checks --retention and --body-retention: 0 (off) or at least
// a day. Retention is thought in days, and a value such as 1m (one minute,
// not a month) would erase nearly everything at the next pass.
func noneOrADay(d time.Duration) error {
	if d != 0 && d < 24*time.Hour {
		return fmt.Errorf("%s is less than a day: retention is at least 24h (write days as 90d; 1m is one minute); 0 keeps everything", d)
	}
	return nil
}

// leaseOwner names this process in the leases.
func leaseOwner() string {
	host, _ := os.Hostname()
	return strings.Join([]string{host, strconv.Itoa(os.Getpid()), rand.Text()[:8]}, "/")
}

// parseDuration is time.ParseDuration that also reads whole days, "90d",
// the unit retention is thought in.
func parseDuration(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(strings.TrimSpace(s), "d"); ok {
		d, err := strconv.Atoi(n)
		if err != nil || d < 0 || d > 100*365 {
			return 0, fmt.Errorf("duration %q: want a whole number of days such as 90d, or a Go duration such as 36h", s)
		}
		return time.Duration(d) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}
