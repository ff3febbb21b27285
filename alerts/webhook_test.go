package alerts

import (
	"crypto/x509"
	"errors"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRefusedKind(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1":          "a loopback",
		"127.9.9.9":          "a loopback",
		"::1":                "a loopback",
		"::ffff:127.0.0.1":   "a loopback",
		"10.1.2.3":           "a private",
		"172.16.0.1":         "a private",
		"192.168.1.1":        "a private",
		"100.100.100.200":    "a private",
		"fd00:ec2::254":      "a private",
		"169.254.169.254":    "a link-local",
		"fe80::1%eth0":       "a link-local",
		"0.0.0.0":            "an unspecified",
		"0.1.2.3":            "an unspecified",
		"::":                 "an unspecified",
		"224.0.0.1":          "a multicast or broadcast",
		"ff02::1":            "a multicast or broadcast",
		"255.255.255.255":    "a multicast or broadcast",
		"240.0.0.1":          "a reserved",
		"64:ff9b::10.0.0.1":  "a private",
		"64:ff9b::7f00:1":    "a loopback",
		"2002:a9fe:a9fe::1":  "a link-local",
		"::127.0.0.1":        "a loopback",
		"93.184.215.14":      "",
		"2606:4700::6810:1":  "",
		"64:ff9b::8.8.8.8":   "",
		"2002:808:808::1":    "",
		"::ffff:93.184.1.14": "",
	} {
		if got := refusedKind(netip.MustParseAddr(addr)); got != want {
			t.Errorf("refusedKind(%s) = %q, want %q", addr, got, want)
		}
	}
	if err := refusePrivate("tcp4", "127.0.0.1:80", nil); err == nil || strings.Contains(err.Error(), "127.0.0.1") ||
		!strings.Contains(err.Error(), "loopback") || !strings.Contains(err.Error(), "AllowPrivateWebhooks") {
		t.Errorf("refusePrivate: %v", err)
	}
	if err := refusePrivate("tcp6", "[2606:4700::6810:1]:443", nil); err != nil {
		t.Errorf("public address refused: %v", err)
	}
}

// TestDescribe: delivery errors name neither the URL, nor the host name,
// nor its addresses.
func TestDescribe(t *testing.T) {
	const target = "https://secret-host.example:8443/hooks/SECRET-PATH?token=SECRET-QUERY"
	n := &notifier{timeout: 5 * time.Second}
	wrap := func(err error) error { return &url.Error{Op: "Post", URL: target, Err: err} }
	addr := &net.TCPAddr{IP: net.ParseIP("203.0.113.7"), Port: 8443}
	for _, c := range []struct {
		err  error
		want string
	}{
		{wrap(&net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "secret-host.example",
			Server: "10.0.0.53:53", IsNotFound: true}}), "webhook unreachable: DNS lookup: no such host"},
		{wrap(&net.DNSError{Err: "server misbehaving", Name: "secret-host.example", Server: "10.0.0.53:53"}),
			"webhook unreachable: DNS lookup failed: server misbehaving"},
		{wrap(&net.OpError{Op: "dial", Net: "tcp", Addr: addr, Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}),
			"webhook unreachable: dial tcp: connect: connection refused"},
		{wrap(&net.OpError{Op: "read", Net: "tcp", Addr: addr, Source: addr, Err: errors.New("reset by 203.0.113.7:8443 at [2001:db8::1]:443")}),
			"webhook unreachable: read tcp: reset by [address] at [address]"},
		{wrap(&net.OpError{Op: "dial", Net: "tcp", Addr: addr, Err: &refusedError{"a private"}}),
			"webhook refused: the webhook's host resolves to a private address"},
		{wrap(x509.HostnameError{Host: "secret-host.example", Certificate: &x509.Certificate{}}),
			"webhook unreachable: the TLS certificate is not valid for the webhook's host"},
		{wrap(errors.New("malformed response from secret-host.example:8443/hooks/SECRET-PATH?token=SECRET-QUERY")),
			"webhook unreachable: malformed response from [hidden]"},
		{wrap(errors.New("bad answer from secret-host.example:8443/hooks/SECRET-PATH")),
			"webhook unreachable: bad answer from [hidden][hidden]"},
	} {
		got := n.describe(c.err, target).Error()
		if !strings.HasPrefix(got, c.want) {
			t.Errorf("describe(%v)\n got %q\nwant %q…", c.err, got, c.want)
		}
		for _, secret := range []string{"secret-host", "SECRET", "203.0.113.7", "10.0.0.53", "2001:db8", "8443"} {
			if strings.Contains(got, secret) {
				t.Errorf("describe: %q holds %q", got, secret)
			}
		}
	}
}
