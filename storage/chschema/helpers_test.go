package chschema

// Helpers for the tests against the shared ClickHouse of
// scripts/testenv.sh (the same as chstore's own): each test uses its own
// database.

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"

	"github.com/tollgate-dev/tollgate/internal/testenv"
)

// testLogger: see testenv.Logger.
func testLogger(t testing.TB) (*slog.Logger, *testenv.LogBuffer) {
	return testenv.Logger(t, "migration log")
}

// chConn opens a native connection to addr (host:port).
func chConn(t testing.TB, addr string) driver.Conn {
	t.Helper()
	conn, err := clickhouse.Open(&clickhouse.Options{
		Protocol:    clickhouse.Native,
		Addr:        []string{addr},
		Auth:        clickhouse.Auth{Username: "default"},
		DialTimeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// openURL opens a connection with the options of a --clickhouse URL,
// closed when the test ends.
func openURL(t testing.TB, url string) driver.Conn {
	t.Helper()
	tg, err := ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := clickhouse.Open(tg.Options)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// testDB names a fresh database on the server at baseURL
// (clickhouse://host:port), migrated, dropped when the test ends. It
// returns the database's URL and a connection for checks.
func testDB(t testing.TB, baseURL string) (string, string, driver.Conn) {
	t.Helper()
	db := fmt.Sprintf("chschema_%d_%04x", time.Now().UnixNano()%1e9, rand.N(1<<16))
	url := baseURL + "/" + db
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	log, _ := testLogger(t)
	if err := Migrate(ctx, url, log); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	conn := chConn(t, strings.TrimPrefix(baseURL, "clickhouse://"))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db)
	})
	return url, db, conn
}

// sharedURL is the shared test server (skip or fail when absent).
func sharedURL(t testing.TB) string {
	t.Helper()
	return testenv.ClickHouseURL(t)
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

var testIDNamespace = uuid.MustParse("0f6f3c1e-2a57-4c4e-8d7a-1b2c3d4e5f60")

// testID is a deterministic request id (as chstore's tests make them).
func testID(tag string, i int) string {
	return uuid.NewSHA1(testIDNamespace, fmt.Appendf(nil, "%s-%d", tag, i)).String()
}
