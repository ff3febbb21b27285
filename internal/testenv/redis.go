package testenv

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// RedisServer is a private redis-server. It keeps no data on disk: a restart
// empties it, like a restart of a cache without persistence.
type RedisServer struct {
	proc
	port int
}

// StartRedis starts a private Redis on a free loopback port and stops it
// when the test ends. Without a redis-server binary the test is skipped,
// or fails under `make test`.
func StartRedis(t testing.TB) *RedisServer {
	t.Helper()
	bin, ok := findBinary(t, EnvRedisServer, "redis-server")
	if !ok {
		missing(t, "redis-server not found")
		return nil
	}
	s := &RedisServer{}
	s.t, s.name, s.stopTimeout = t, "redis-server", redisStopTimeout
	s.dir = newProcDir(t, "redis-*")
	s.logs = []string{filepath.Join(s.dir, "redis.log")}
	s.ready = func(ctx context.Context) error { return pingRedis(ctx, s.Addr()) }
	t.Cleanup(s.Stop)
	startWithRetry(t, &s.proc, func() {
		s.port = freePort(t)
		// The arguments are those of the script's own Redis.
		out, err := runScript("redis-args", strconv.Itoa(s.port), s.dir)
		if err != nil {
			t.Fatal(err)
		}
		args := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
		s.argv = append([]string{bin}, args...)
	})
	return s
}

// Addr is host:port.
func (s *RedisServer) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// URL is redis://host:port.
func (s *RedisServer) URL() string { return "redis://" + s.Addr() }

// pingRedis speaks just enough RESP to tell a ready server from one that is
// still loading, without depending on a client library here.
func pingRedis(ctx context.Context, addr string) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("redis answered %q", strings.TrimSpace(line))
	}
	return nil
}
