package app

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/testenv"
)

// freeAddr is a loopback address nothing listens on (as far as anyone can
// know without holding it).
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// A start that fails after the processor's gRPC and HTTP servers are up
// (here: the data plane's port is taken) stops them again: both ports can
// be bound once Run returns, and none of their goroutines is left.
func TestDevFailingAfterServersStartLeavesNothingRunning(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	grpcAddr, httpAddr := freeAddr(t), freeAddr(t)
	before := runtime.NumGoroutine()

	var stderr bytes.Buffer
	err = Run(context.Background(), []string{"dev",
		"--listen", taken.Addr().String(), "--grpc-listen", grpcAddr, "--http-listen", httpAddr,
		"--data-dir", t.TempDir(), "--shutdown-timeout", "10s"}, io.Discard, &stderr)
	if err == nil || !strings.Contains(err.Error(), "listen") {
		t.Fatalf("Run = %v, want the data plane's listen error; output:\n%s", err, &stderr)
	}
	if strings.Contains(stderr.String(), "tollgate ready") {
		t.Errorf("ready line printed for a start that failed:\n%s", &stderr)
	}

	for _, addr := range []string{grpcAddr, httpAddr} {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("%s is still taken after Run returned: %v", addr, err)
			continue
		}
		l.Close()
	}

	// Goroutines of closed connections may take a moment to unwind; the
	// servers' own ones are gone when Run returns.
	testenv.Eventually(t, 10*time.Second, func() error {
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<20)
			return fmt.Errorf("%d goroutines after Run returned, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
		}
		return nil
	})
}
