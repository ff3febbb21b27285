package app

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/testenv"
	"github.com/tollgate-dev/tollgate/storage/chstore/chtest"
)

// Only `tollgate migrate` changes the schema: serve does not by default;
// dev, the one-machine mode, does; --migrate opts serve in.
func TestMigrateDefaults(t *testing.T) {
	for _, tc := range []struct {
		cmd  string
		args []string
		want bool
	}{
		{"serve", nil, false},
		{"serve", []string{"--migrate"}, true},
		{"dev", nil, true},
		{"dev", []string{"--migrate=false"}, false},
	} {
		cfg, _, err := loadConfig(tc.cmd, tc.args, env(nil), tc.cmd == "dev")
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Migrate != tc.want {
			t.Errorf("%s %v: migrate = %v, want %v", tc.cmd, tc.args, cfg.Migrate, tc.want)
		}
	}
}

// TestServeWaitsForMigrate: `tollgate serve` on a database nobody has
// migrated creates nothing there, keeps answering, and says on /readyz and
// in /metrics that it is not writing and why; once `tollgate migrate` has
// run, the record that waited arrives, once.
func TestServeWaitsForMigrate(t *testing.T) {
	chURL, conn, db := chtest.EmptyDatabase(t, "tollgate_wait")
	addr := startServe(t, "--clickhouse", chURL, "--spool-dir", t.TempDir(), "--log-flush-interval", "50ms")
	base := "http://" + addr

	// A record through the logging API (apiCalls' Helicone manual log).
	if code, body := httpCall(t, "POST", base+"/oai/v1/log", apiCalls[7].body, nil); code/100 != 2 {
		t.Fatalf("POST /oai/v1/log: %d %s", code, body)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		code, body := httpCall(t, "GET", base+"/readyz", "", nil)
		// Generic: the database's name and versions are for the logs.
		if code != 200 || !strings.Contains(body, "tollgate migrate") || strings.Contains(body, db) {
			return fmt.Errorf("/readyz: %d %q", code, body)
		}
		if _, m := httpCall(t, "GET", base+"/metrics", "", nil); !strings.Contains(m, "\ntollgate_clickhouse_schema_behind 1\n") {
			return fmt.Errorf("/metrics: no tollgate_clickhouse_schema_behind 1")
		}
		return nil
	})
	var dbs uint64
	if err := conn.QueryRow(context.Background(), "SELECT count() FROM system.databases WHERE name = ?", db).Scan(&dbs); err != nil || dbs != 0 {
		t.Fatalf("serve created database %s (%d, %v)", db, dbs, err)
	}

	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := Run(ctx, []string{"migrate", "--clickhouse", chURL}, &out, &out); err != nil {
		t.Fatalf("tollgate migrate: %v\n%s", err, out.String())
	}
	testenv.Eventually(t, 60*time.Second, func() error {
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM "+db+".requests").Scan(&n); err != nil || n != 1 {
			return fmt.Errorf("rows in %s.requests: %d, %v; want 1", db, n, err)
		}
		if code, body := httpCall(t, "GET", base+"/readyz", "", nil); code != 200 || body != "ready\n" {
			return fmt.Errorf("/readyz after migrate: %d %q", code, body)
		}
		if _, m := httpCall(t, "GET", base+"/metrics", "", nil); !strings.Contains(m, "\ntollgate_clickhouse_schema_behind 0\n") {
			return fmt.Errorf("/metrics: no tollgate_clickhouse_schema_behind 0")
		}
		return nil
	})
}

// TestDevMigratesBeforeWriting: `tollgate dev` migrates a new database
// before its writer starts, so its first schema check passes: no error
// line, and the call's record is in ClickHouse once dev has stopped.
func TestDevMigratesBeforeWriting(t *testing.T) {
	chURL, conn, db := chtest.EmptyDatabase(t, "tollgate_devmig")
	d := startDev(t, "--clickhouse", chURL, "--spool-dir", t.TempDir())
	resp, body := call{path: "/v1/chat/completions", body: `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`}.do(t, d)
	if resp.StatusCode != 200 {
		t.Fatalf("call: %d %s", resp.StatusCode, body)
	}
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	var n uint64
	if err := conn.QueryRow(context.Background(), "SELECT count() FROM "+db+".requests").Scan(&n); err != nil || n != 1 {
		t.Errorf("rows in %s.requests after dev stopped: %d, %v; want 1", db, n, err)
	}
	if out := d.stderr.String(); strings.Contains(out, "NOT WRITING") || strings.Contains(out, "level=ERROR") {
		t.Errorf("dev logged an error on a database it migrates itself:\n%s", out)
	}
}
