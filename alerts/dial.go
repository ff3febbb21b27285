package alerts

import (
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// refusedError is what the dialer returns for an address that webhooks
// may not reach. It names the kind of address, never the address.
type refusedError struct{ kind string }

func (e *refusedError) Error() string {
	return "the webhook's host resolves to " + e.kind + " address; alerts send webhooks only to public addresses " +
		"unless Options.AllowPrivateWebhooks is set"
}

// webhookClient is the default client: it does not follow redirects and,
// unless allowPrivate, refuses to connect to addresses that are not
// public (see refusedKind). The check runs in the dialer's Control
// function, on the address about to be connected after DNS resolution, so
// neither a DNS answer that changes between checks (rebinding) nor a
// second host name can get around it. Without allowPrivate it uses no
// proxy from the environment: the proxy's address would be checked instead
// of the webhook's.
func webhookClient(allowPrivate bool) *http.Client {
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	t := http.DefaultTransport.(*http.Transport).Clone()
	if !allowPrivate {
		d.Control = refusePrivate
		t.Proxy = nil
	}
	t.DialContext = d.DialContext
	return &http.Client{Transport: t, CheckRedirect: noRedirects}
}

// refusePrivate is a net.Dialer Control function: address is the IP and
// port about to be connected.
func refusePrivate(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return &refusedError{"an unparsable"}
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return &refusedError{"an unparsable"}
	}
	if kind := refusedKind(ip); kind != "" {
		return &refusedError{kind}
	}
	return nil
}

var (
	thisNetwork = netip.MustParsePrefix("0.0.0.0/8")
	sharedNAT   = netip.MustParsePrefix("100.64.0.0/10") // carrier-grade NAT; also cloud metadata services
	reserved4   = netip.MustParsePrefix("240.0.0.0/4")   // with 255.255.255.255, broadcast
	nat64       = netip.MustParsePrefix("64:ff9b::/96")  // an IPv4 address in its last 4 bytes
	sixToFour   = netip.MustParsePrefix("2002::/16")     // an IPv4 address in bytes 2–5
	v4compat    = netip.MustParsePrefix("::/96")         // deprecated IPv4-compatible
)

// refusedKind says which kind of non-public address ip is ("a loopback",
// "a private", …), "" for a public one. IPv4 addresses embedded in IPv6
// (mapped, NAT64, 6to4, compatible) are judged as IPv4.
func refusedKind(ip netip.Addr) string {
	ip = ip.Unmap()
	switch {
	case !ip.IsValid():
		return "an invalid"
	case ip.IsUnspecified() || thisNetwork.Contains(ip):
		return "an unspecified"
	case ip.IsLoopback():
		return "a loopback"
	case ip.IsPrivate() || sharedNAT.Contains(ip):
		return "a private"
	case ip.IsLinkLocalUnicast():
		return "a link-local"
	case ip.IsMulticast() || ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return "a multicast or broadcast"
	case reserved4.Contains(ip):
		return "a reserved"
	case ip.Is6():
		b := ip.As16()
		var v4 [4]byte
		switch {
		case nat64.Contains(ip), v4compat.Contains(ip):
			copy(v4[:], b[12:])
		case sixToFour.Contains(ip):
			copy(v4[:], b[2:6])
		default:
			return ""
		}
		return refusedKind(netip.AddrFrom4(v4))
	}
	return ""
}
