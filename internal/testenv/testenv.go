// Package testenv tells tests where the Redis and ClickHouse servers of the
// test environment are, and starts private server instances for tests that
// need to stop, kill or restart a server.
//
// The shared servers are started by scripts/testenv.sh (run by `make test`),
// which exports their addresses as TOLLGATE_TEST_* variables. When a
// variable is missing the accessors skip the test, so that a plain
// `go test ./...` on a laptop without servers stays green, unless
// TOLLGATE_TEST_REQUIRE_SERVERS=1 (set by the script, so under `make test`
// and CI), where a missing server is a failure: a test that silently skips
// in CI proves nothing.
//
// The shared servers are used by every package's test binary at once (go
// test runs packages in parallel), so tests must not stop or restart them,
// and should use their own database / key prefix. A test that needs to take
// a server down uses StartRedis or StartClickHouse to get a private one.
package testenv

import (
	"net"
	"net/url"
	"os"
	"testing"
)

// Names of the variables exported by scripts/testenv.sh.
const (
	EnvRequireServers = "TOLLGATE_TEST_REQUIRE_SERVERS"
	// EnvTmpDir is the script's temporary folder; private servers put their
	// files there so the script's clean-up finds them even if a test binary
	// dies without stopping them.
	EnvTmpDir = "TOLLGATE_TEST_TMPDIR"

	EnvRedis       = "TOLLGATE_TEST_REDIS"        // redis://127.0.0.1:PORT
	EnvRedisServer = "TOLLGATE_TEST_REDIS_SERVER" // path of redis-server
	EnvRedisDir    = "TOLLGATE_TEST_REDIS_DIR"    // working dir of the shared Redis

	EnvClickHouse       = "TOLLGATE_TEST_CLICKHOUSE"        // clickhouse://127.0.0.1:PORT (native protocol)
	EnvClickHouseHTTP   = "TOLLGATE_TEST_CLICKHOUSE_HTTP"   // http://127.0.0.1:PORT
	EnvClickHouseServer = "TOLLGATE_TEST_CLICKHOUSE_SERVER" // path of clickhouse-server
	EnvClickHouseConfig = "TOLLGATE_TEST_CLICKHOUSE_CONFIG" // config.xml of the shared ClickHouse
	EnvClickHouseData   = "TOLLGATE_TEST_CLICKHOUSE_DATA"   // its <path>
)

// RequireServers reports whether missing servers are a failure rather than
// a reason to skip.
func RequireServers() bool {
	return os.Getenv(EnvRequireServers) == "1"
}

// lookup returns the value of the variable, or ends the test (skip or fail,
// see the package comment) when it is empty.
func lookup(t testing.TB, name string) string {
	t.Helper()
	if v := os.Getenv(name); v != "" {
		return v
	}
	missing(t, name+" is not set")
	return ""
}

// missing ends the test because the environment lacks something.
func missing(t testing.TB, what string) {
	t.Helper()
	if RequireServers() {
		t.Fatalf("%s although %s=1; run the tests through `make test` (scripts/testenv.sh)", what, EnvRequireServers)
		return
	}
	t.Skipf("%s: skipping; run `make test` to start private Redis and ClickHouse servers", what)
}

// RedisURL is the shared Redis, as redis://127.0.0.1:PORT (no database
// number: it is 0; tests should prefix their keys to stay apart).
func RedisURL(t testing.TB) string {
	t.Helper()
	return lookup(t, EnvRedis)
}

// RedisAddr is the shared Redis as host:port.
func RedisAddr(t testing.TB) string {
	t.Helper()
	return hostPort(t, EnvRedis, RedisURL(t))
}

// ClickHouseURL is the shared ClickHouse as clickhouse://127.0.0.1:PORT, the
// form Tollgate's --clickhouse flag takes (append "/database").
func ClickHouseURL(t testing.TB) string {
	t.Helper()
	return lookup(t, EnvClickHouse)
}

// ClickHouseAddr is the shared ClickHouse's native-protocol address
// (host:port), for clickhouse.Options.Addr.
func ClickHouseAddr(t testing.TB) string {
	t.Helper()
	return hostPort(t, EnvClickHouse, ClickHouseURL(t))
}

// hostPort extracts host:port from a URL-valued variable; a malformed value
// is a bug in the environment, so it always fails.
func hostPort(t testing.TB, name, raw string) string {
	t.Helper()
	if raw == "" {
		return "" // already skipped or failed
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		t.Fatalf("%s=%q: want scheme://host:port", name, raw)
		return ""
	}
	if _, _, err := net.SplitHostPort(u.Host); err != nil {
		t.Fatalf("%s=%q: want scheme://host:port: %v", name, raw, err)
		return ""
	}
	return u.Host
}
