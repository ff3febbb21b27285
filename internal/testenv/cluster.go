package testenv

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// StartRedisCluster starts three cluster-enabled redis-server processes on free
// loopback ports, joins them with redis-cli --cluster create, waits for
// cluster_state:ok and returns a redis+cluster:// URL. The processes are
// stopped (by PID) when the test ends.
func StartRedisCluster(t *testing.T) string {
	t.Helper()
	server, cli := redisBinaries(t)
	parent := os.Getenv(EnvTmpDir) // so scripts/sh's clean-up finds strays
	dir, err := os.MkdirTemp(parent, "cluster-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })

	var addrs []string
	for attempt := 0; ; attempt++ {
		addrs, err = startNodes(t, server, dir, 3)
		if err == nil {
			break
		}
		if attempt == 2 || !strings.Contains(err.Error(), "in use") {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, a := range addrs {
		c := redis.NewClient(&redis.Options{Addr: a, DialTimeout: time.Second, ReadTimeout: time.Second})
		WaitFor(t, 20*time.Second, "cluster_state:ok on "+a, func() bool {
			info, err := c.ClusterInfo(ctx).Result()
			return err == nil && strings.Contains(info, "cluster_state:ok") &&
				strings.Contains(info, "cluster_slots_ok:16384") && strings.Contains(info, "cluster_known_nodes:3")
		})
		_ = c.Close()
	}
	return "redis+cluster://" + strings.Join(addrs, ",")
}

// startNodes starts n nodes; a node's cluster bus is its port + 10000, so
// both must be free.
func startNodes(t *testing.T, server, dir string, n int) ([]string, error) {
	t.Helper()
	var addrs []string
	for i := range n {
		port := freeClusterPort(t, addrs)
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		nodeDir := filepath.Join(dir, fmt.Sprintf("node%d-%d", i, port))
		if err := os.MkdirAll(nodeDir, 0o755); err != nil {
			return nil, err
		}
		err := startServer(t, nodeDir, addr, server, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000",
			"--save", "", "--appendonly", "no", "--dir", nodeDir,
			"--logfile", filepath.Join(nodeDir, "redis.log"), "--daemonize", "no")
		if err != nil {
			return nil, err
		}
		addrs = append(addrs, addr)
	}
	return addrs, nil
}

// startServer runs a redis-server (or sentinel) in dir, stops it by PID
// when the test ends, and waits until addr answers PING.
func startServer(t *testing.T, dir, addr string, argv ...string) error {
	t.Helper()
	log, err := os.Create(filepath.Join(dir, "stdout.log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, log, log
	err = cmd.Start()
	_ = log.Close()
	if err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	pid := cmd.Process.Pid
	t.Cleanup(func() { stopPID(t, cmd.Process, pid, done) })

	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(15 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		select {
		case <-done:
			logs, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
			out, _ := os.ReadFile(filepath.Join(dir, "stdout.log"))
			return fmt.Errorf("%s on %s exited: %s%s", filepath.Base(argv[0]), addr, logs, out)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s on %s did not answer", filepath.Base(argv[0]), addr)
		}
	}
	return nil
}

// stopPID ends one node we started: SIGTERM, then SIGKILL after 5 s.
func stopPID(t *testing.T, p *os.Process, pid int, done <-chan struct{}) {
	_ = p.Signal(syscall.SIGTERM)
	select {
	case <-done:
		return
	case <-time.After(5 * time.Second):
	}
	t.Logf("redis cluster node pid %d ignored SIGTERM; killing it", pid)
	_ = p.Kill()
	<-done
}

// freeClusterPort picks a port whose bus port (+10000) is free too, both
// below the kernel's ephemeral range so outgoing connections cannot take
// them meanwhile.
func freeClusterPort(t testing.TB, taken []string) int {
	t.Helper()
	for range 500 {
		p := 12000 + rand.IntN(10000) // bus 22000–31999, under 32768
		if strings.Contains(strings.Join(taken, " "), ":"+strconv.Itoa(p)) || !portFree(p) || !portFree(p+10000) {
			continue
		}
		return p
	}
	t.Fatal("no free port pair for a cluster node")
	return 0
}

func portFree(p int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}

// redisBinaries finds redis-server (as scripts/sh exports it, else
// on PATH) and redis-cli beside it or on PATH.
func redisBinaries(t *testing.T) (server, cli string) {
	t.Helper()
	server = os.Getenv(EnvRedisServer)
	if server == "" {
		server, _ = exec.LookPath("redis-server")
	}
	if server != "" {
		if c := filepath.Join(filepath.Dir(server), "redis-cli"); fileExists(c) {
			cli = c
		}
	}
	if cli == "" {
		cli, _ = exec.LookPath("redis-cli")
	}
	if server == "" || cli == "" {
		if RequireServers() {
			t.Fatalf("redis-server / redis-cli not found although %s=1", EnvRequireServers)
		}
		t.Skip("redis-server / redis-cli not found: skipping the Cluster test; run `make test`")
	}
	return server, cli
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir()
}

// StartRedisSentinel starts a Sentinel watching master under the name
// "tg" and returns the Sentinel's address. It is stopped (by PID) when the
// test ends.
func StartRedisSentinel(t *testing.T, master *RedisServer) string {
	t.Helper()
	server, _ := redisBinaries(t)
	dir, err := os.MkdirTemp(os.Getenv(EnvTmpDir), "sentinel-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	host, port, _ := net.SplitHostPort(master.Addr())
	for attempt := 0; ; attempt++ {
		p := freeClusterPort(t, nil)
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
		conf := filepath.Join(dir, "sentinel.conf") // Sentinel rewrites it: must be writable
		text := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nlogfile %s\nsentinel monitor tg %s %s 1\n",
			p, dir, filepath.Join(dir, "redis.log"), host, port)
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if err = startServer(t, dir, addr, server, conf, "--sentinel"); err == nil {
			return addr
		}
		if attempt == 2 {
			t.Fatal(err)
		}
	}
}
