package dataplane

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/testenv"
)

// rawRequest writes head (the request line and headers, without the blank
// line) to a new connection to the harness and returns the connection. A
// deadline bounds the test should the server never answer; it asserts
// nothing about speed.
func rawRequest(t *testing.T, h *harness, head string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", h.authority())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(conn, head+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	return conn
}

// readReply reads one response and then expects the connection to be
// closed by the server.
func readReply(t *testing.T, conn net.Conn) (int, string) {
	t.Helper()
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("connection still open after the %d (read: %v), want it closed", resp.StatusCode, err)
	}
	return resp.StatusCode, string(body)
}

// drip sends the body one byte at a time, every interval, until the server
// stops taking it or stop is closed.
func drip(conn net.Conn, interval time.Duration, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-time.After(interval):
		}
		if _, err := conn.Write([]byte("x")); err != nil {
			return
		}
	}
}

// A client sending its body a byte at a time gets Envoy's 408 "request
// timeout" once request_timeout has passed, though every byte comes well
// within the idle timeout, and its connection is closed; one that stops
// sending gets 408 "stream timeout" after the idle timeout. Both whether
// the processor buffers the body or it streams to the upstream, and no
// goroutine stays behind. The idle timeout of the stall cases also times
// the warm-up call (processor round trips, upstream): it leaves room for
// a loaded machine.
func TestSlowRequestBodyTimesOut(t *testing.T) {
	for _, tc := range []struct {
		name       string
		noProc     bool
		request    time.Duration
		idle       time.Duration
		drip       bool
		wantDetail string
	}{
		{"buffered drip", false, 300 * time.Millisecond, time.Minute, true, "request timeout"},
		{"streamed drip", true, 300 * time.Millisecond, time.Minute, true, "request timeout"},
		{"buffered stall", false, time.Minute, 2 * time.Second, false, "stream timeout"},
		{"streamed stall", true, time.Minute, 2 * time.Second, false, "stream timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{noProc: tc.noProc, script: continueAll, config: func(c *Config) {
				c.RequestTimeout, c.StreamIdleTimeout = tc.request, tc.idle
			}})
			// Warm up (the gRPC connection, the upstream pool) before
			// counting goroutines.
			if status, _, _ := h.do(t, "POST", "/v1/chat/completions", "{}", nil); status != http.StatusOK {
				t.Fatalf("warm-up: %d", status)
			}
			h.client.CloseIdleConnections()
			before := runtime.NumGoroutine()

			conn := rawRequest(t, h, "POST /v1/chat/completions HTTP/1.1\r\nHost: "+h.authority()+
				"\r\nContent-Type: application/json\r\nContent-Length: 100000")
			if _, err := io.WriteString(conn, "{"); err != nil {
				t.Fatal(err)
			}
			stop := make(chan struct{})
			done := make(chan struct{})
			go func() {
				defer close(done)
				if tc.drip {
					drip(conn, 20*time.Millisecond, stop)
				}
			}()
			status, body := readReply(t, conn)
			close(stop)
			<-done
			conn.Close()
			if status != http.StatusRequestTimeout || body != tc.wantDetail {
				t.Errorf("got %d %q, want 408 %q", status, body, tc.wantDetail)
			}

			h.proxy.cfg.Transport.(*http.Transport).CloseIdleConnections()
			testenv.Eventually(t, 10*time.Second, func() error {
				if n := runtime.NumGoroutine(); n > before {
					buf := make([]byte, 1<<20)
					return fmt.Errorf("%d goroutines, %d before the request:\n%s", n, before, buf[:runtime.Stack(buf, true)])
				}
				return nil
			})
		})
	}
}

// A body that arrives in time is not cut, and lifting the deadline at its
// end leaves the connection usable for the next request.
func TestRequestBodyInTimeKeepsTheConnection(t *testing.T) {
	h := newHarness(t, harnessOpts{script: continueAll, config: func(c *Config) {
		c.RequestTimeout, c.StreamIdleTimeout = time.Minute, time.Minute
	}})
	for i := range 3 {
		status, _, _ := h.do(t, "POST", "/v1/chat/completions", `{"model":"gpt-4o-mini"}`, nil)
		if status != http.StatusOK {
			t.Fatalf("request %d: %d", i, status)
		}
	}
}

// Headers over max_request_headers_kb (names and values, Host included) or
// over max_headers_count are Envoy's codec error: 431 with the status text,
// before the processor, and the connection closed. At the limit they pass.
func TestRequestHeaderLimits(t *testing.T) {
	h := newHarness(t, harnessOpts{script: continueAll, config: func(c *Config) {
		c.MaxRequestHeadersKB, c.MaxHeadersCount = 1, 10
	}})
	host := "Host: h"
	const hostBytes = len("host") + len("h")
	pad := func(n int) string { return "X-Pad: " + strings.Repeat("a", n-len("x-pad")) }
	fields := func(n int) string {
		var b strings.Builder
		b.WriteString(host)
		for i := 1; i < n; i++ {
			fmt.Fprintf(&b, "\r\nX-H%d: v", i)
		}
		return b.String()
	}
	for _, tc := range []struct {
		name, head string
		tooLarge   bool
	}{
		{"size at the limit", host + "\r\n" + pad(1024-hostBytes), false},
		{"size over the limit", host + "\r\n" + pad(1025-hostBytes), true},
		{"count at the limit", fields(10), false},
		{"count over the limit", fields(11), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			served := len(h.ext.started)
			conn := rawRequest(t, h, "GET /v1/models HTTP/1.1\r\n"+tc.head)
			if !tc.tooLarge {
				resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("got %d, want 200", resp.StatusCode)
				}
				return
			}
			status, body := readReply(t, conn)
			if status != http.StatusRequestHeaderFieldsTooLarge || body != "Request Header Fields Too Large" {
				t.Errorf("got %d %q, want 431 %q", status, body, "Request Header Fields Too Large")
			}
			if n := len(h.ext.started); n != served {
				t.Errorf("the processor saw a request refused by the codec")
			}
		})
	}
}
