package app

import (
	"fmt"
	"net"
	"os"
	"strings"
)

// socketMode is the mode of the processor's Unix socket: its owner and its
// group may connect (connecting needs write permission), nobody else. In a
// pod the injected Envoy shares the processor's group (inject/sidecars.go).
const socketMode os.FileMode = 0o660

// listen opens a TCP address or, for "unix:///path", a Unix socket
// (removing a stale socket file left by a crash, and setting socketMode
// whatever the umask).
func listen(addr string) (net.Listener, error) {
	path, ok := strings.CutPrefix(addr, "unix://")
	if !ok {
		return net.Listen("tcp", addr)
	}
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		_ = os.Remove(path)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	// A path starting with @ is Linux's abstract namespace: no file, no
	// mode, and reachable from the whole network namespace.
	if !strings.HasPrefix(path, "@") {
		if err := os.Chmod(path, socketMode); err != nil {
			l.Close()
			return nil, fmt.Errorf("setting the mode of %s: %w", path, err)
		}
	}
	return l, nil
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
