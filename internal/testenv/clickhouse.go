package testenv

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ClickHouseServer is a private clickhouse-server. Its data folder survives
// Stop, Kill and Start, like a real server's disk.
type ClickHouseServer struct {
	proc
	tcpPort, httpPort int
}

// StartClickHouse starts a private ClickHouse on free loopback ports and
// stops it when the test ends. Without a clickhouse-server binary the test
// is skipped, or fails under `make test`.
func StartClickHouse(t testing.TB) *ClickHouseServer {
	t.Helper()
	argv0, ok := findBinary(t, EnvClickHouseServer, "clickhouse-server")
	var argv []string
	if ok {
		argv = []string{argv0}
	} else if multi, found := findBinary(t, "", "clickhouse"); found {
		// Upstream packages: one multi-call binary.
		argv = []string{multi, "server"}
	} else {
		missing(t, "clickhouse-server not found")
		return nil
	}
	s := &ClickHouseServer{}
	s.t, s.name, s.stopTimeout = t, "clickhouse-server", clickHouseStopTimeout
	s.dir = newProcDir(t, "clickhouse-*")
	s.logs = []string{
		filepath.Join(s.dir, "log", "clickhouse-server.err.log"),
		filepath.Join(s.dir, "log", "clickhouse-server.log"),
	}
	s.ready = func(ctx context.Context) error { return pingClickHouse(ctx, s.HTTP()) }
	t.Cleanup(s.Stop)
	startWithRetry(t, &s.proc, func() {
		s.tcpPort, s.httpPort = freePort(t), freePort(t)
		for s.httpPort == s.tcpPort {
			s.httpPort = freePort(t)
		}
		// The configuration is that of the script's own ClickHouse.
		if _, err := runScript("clickhouse-config", s.dir, strconv.Itoa(s.tcpPort), strconv.Itoa(s.httpPort)); err != nil {
			t.Fatal(err)
		}
		s.argv = append(append([]string{}, argv...), "--config-file="+s.ConfigPath())
	})
	return s
}

// Addr is the native-protocol host:port, for clickhouse.Options.Addr.
func (s *ClickHouseServer) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.tcpPort))
}

// URL is clickhouse://host:port, the form of Tollgate's --clickhouse flag
// (append "/database").
func (s *ClickHouseServer) URL() string { return "clickhouse://" + s.Addr() }

// HTTP is http://host:port of the HTTP interface.
func (s *ClickHouseServer) HTTP() string {
	return "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(s.httpPort))
}

// ConfigPath is the server's config.xml.
func (s *ClickHouseServer) ConfigPath() string { return filepath.Join(s.dir, "config.xml") }

// DataDir is the server's <path>.
func (s *ClickHouseServer) DataDir() string { return filepath.Join(s.dir, "data") }

// pingClient does not keep connections alive: ClickHouse's graceful stop
// waits for idle HTTP keep-alive connections (up to keep_alive_timeout).
var pingClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

func pingClickHouse(ctx context.Context, base string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/ping", nil)
	if err != nil {
		return err
	}
	resp, err := pingClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(body.String(), "Ok.") {
		return errors.New("clickhouse /ping: " + resp.Status)
	}
	return nil
}
