package app

import (
	"fmt"
	"net"
	"os"
	"strings"
)

// listen opens a TCP address or, for "unix:///path", a Unix socket
// (removing a stale socket file left by a crash).
func listen(addr string) (net.Listener, error) {
	if path, ok := strings.CutPrefix(addr, "unix://"); ok {
		if fi, err := os.Stat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
			_ = os.Remove(path)
		}
		return net.Listen("unix", path)
	}
	return net.Listen("tcp", addr)
}

// dialTarget turns the processor's listener into a gRPC target for the
// in-process data plane: a wildcard host becomes loopback.
func dialTarget(l net.Listener) string {
	if l.Addr().Network() == "unix" {
		return "unix://" + l.Addr().String()
	}
	_, port, err := net.SplitHostPort(l.Addr().String())
	if err != nil {
		return l.Addr().String()
	}
	return fmt.Sprintf("127.0.0.1:%s", port)
}

func addrString(l net.Listener) string {
	if l.Addr().Network() == "unix" {
		return "unix://" + l.Addr().String()
	}
	return l.Addr().String()
}
