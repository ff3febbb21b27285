package testenv

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ZooKeeperServer is a private standalone ZooKeeper (Debian's zookeeper
// package), the coordination service a replicated ClickHouse needs.
type ZooKeeperServer struct {
	proc
	port int
}

// zooKeeperJars are the jars of Debian's zookeeper package: zookeeper.jar's
// manifest names its other dependencies (netty, jute, slf4j-api); the
// slf4j binding is ours to choose (simple: plain lines on stderr).
var zooKeeperJars = []string{"/usr/share/java/zookeeper.jar", "/usr/share/java/slf4j-simple.jar"}

// StartZooKeeper starts a standalone ZooKeeper on a free loopback port and
// stops it when the test ends. Without Java or the zookeeper package the
// test is skipped, or fails under `make test` (scripts/testenv.sh installs
// the package).
func StartZooKeeper(t testing.TB) *ZooKeeperServer {
	t.Helper()
	java, ok := findBinary(t, "", "java")
	if !ok {
		missing(t, "java not found (needed by ZooKeeper)")
		return nil
	}
	for _, jar := range zooKeeperJars {
		if !fileExists(jar) {
			missing(t, jar+" not found (Debian's zookeeper package)")
			return nil
		}
	}
	s := &ZooKeeperServer{}
	s.t, s.name, s.stopTimeout = t, "zookeeper", 10*time.Second
	s.dir = newProcDir(t, "zookeeper-*")
	s.ready = func(ctx context.Context) error { return zkServing(ctx, s.Addr()) }
	t.Cleanup(s.Stop)
	startWithRetry(t, &s.proc, func() {
		s.port = freePort(t)
		// A short tick lets ClickHouse use short sessions (2-20 ticks): a
		// killed replica's session, and so its "active" mark, expires in
		// seconds instead of half a minute. No admin web server (it would
		// take port 8080), four-letter words only for the readiness probe.
		cfg := fmt.Sprintf(`tickTime=250
dataDir=%s
clientPort=%d
clientPortAddress=127.0.0.1
admin.enableServer=false
maxClientCnxns=0
4lw.commands.whitelist=srvr
`, filepath.Join(s.dir, "data"), s.port)
		if err := os.WriteFile(filepath.Join(s.dir, "zoo.cfg"), []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		s.argv = []string{java, "-Xmx256m", "-XX:+UseSerialGC", "-Dzookeeper.jmx.log4j.disable=true",
			"-cp", strings.Join(zooKeeperJars, ":"),
			"org.apache.zookeeper.server.ZooKeeperServerMain", filepath.Join(s.dir, "zoo.cfg")}
	})
	return s
}

// Port is the client port on 127.0.0.1.
func (s *ZooKeeperServer) Port() int { return s.port }

// Addr is host:port.
func (s *ZooKeeperServer) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// zkServing asks ZooKeeper "srvr": it names its Mode once it serves
// requests. ("ruok" answers "imok" a moment earlier, while sessions are
// still refused, and ClickHouse 18.16 can crash on such a refusal.)
func zkServing(ctx context.Context, addr string) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("srvr")); err != nil {
		return err
	}
	b, err := io.ReadAll(conn)
	if err != nil {
		return err
	}
	if !strings.Contains(string(b), "Mode: standalone") {
		return fmt.Errorf("zookeeper answered %q", b)
	}
	return nil
}
