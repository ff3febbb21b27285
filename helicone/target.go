package helicone

import (
	"net/netip"
	"strings"
)

// WildcardRefusal says why "*" in a list of allowed Helicone-Target-URL
// origins does not cover origin (scheme://host[:port], lowercase), or ""
// when it does. "*" stands for "any public OpenAI-compatible provider": an
// https:// origin whose host is a DNS name or a public IP address. It never
// covers
//
//   - an http:// origin: plain HTTP reaches whatever listens inside the
//     network (Envoy's admin port, the processor's API, cloud metadata);
//   - an IP literal that is loopback, link-local (169.254.169.254, the cloud
//     metadata services; fe80::/10), unspecified, private (10/8, 172.16/12,
//     192.168/16, fc00::/7: the Kubernetes API server, in-cluster and VPC
//     services live there, never a public provider), shared (100.64/10),
//     multicast, reserved, or an IPv6 form that embeds an IPv4 address
//     (NAT64, 6to4, Teredo, IPv4-compatible, IPv4-mapped with such an
//     address); an IPv4 address in a non-dotted form (127.1, 0x7f000001),
//     which resolvers accept;
//   - a name that is internal by definition: localhost and *.localhost
//     (RFC 6761), *.local (mDNS, Kubernetes' cluster.local), *.internal
//     (reserved for private use; metadata.google.internal), *.svc and a
//     single-label name (Kubernetes resolves both through its search
//     domains).
//
// An origin listed exactly is the operator's choice and is not checked
// here. A public-looking name that resolves to an internal address is not
// caught either: the proxy resolves it, not Tollgate.
func WildcardRefusal(origin string) string {
	scheme, hostport, ok := strings.Cut(origin, "://")
	if !ok {
		return "it is not an origin"
	}
	if scheme != "https" {
		return `"*" matches https:// origins only; an ` + scheme + ":// origin must be listed exactly"
	}
	host := hostport
	if strings.HasPrefix(host, "[") {
		end := strings.IndexByte(host, ']')
		if end < 0 {
			return "its host is not a valid IPv6 literal"
		}
		host = host[1:end]
	} else if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	host = strings.TrimSuffix(host, ".")
	if addr, err := netip.ParseAddr(host); err == nil {
		if why := internalAddress(addr); why != "" {
			return `"*" never matches a ` + why + " address; list the origin exactly to allow it"
		}
		return ""
	}
	last := host[strings.LastIndexByte(host, '.')+1:]
	if numericLabel(last) {
		return `"*" never matches an IP address in a non-standard form; list the origin exactly to allow it`
	}
	switch {
	case host == "" || host == "localhost" || strings.HasSuffix(host, ".localhost"):
		return `"*" never matches localhost; list the origin exactly to allow it`
	case !strings.Contains(host, "."):
		return `"*" never matches a single-label (cluster-local) name; list the origin exactly to allow it`
	case last == "local" || last == "internal" || last == "svc":
		return `"*" never matches a name under .` + last + ` (internal by definition); list the origin exactly to allow it`
	}
	return ""
}

// numericLabel says whether a DNS label is a number (decimal, or hex with
// 0x): a host ending in one is an IPv4 address to a resolver, never a name.
func numericLabel(s string) bool {
	if h, ok := strings.CutPrefix(s, "0x"); ok {
		s = h
		if s == "" {
			return true
		}
		for i := 0; i < len(s); i++ {
			c := s[i]
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return false
			}
		}
		return true
	}
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

var (
	sharedV4     = netip.MustParsePrefix("100.64.0.0/10")
	thisNetV4    = netip.MustParsePrefix("0.0.0.0/8")
	ietfV4       = netip.MustParsePrefix("192.0.0.0/24")
	benchV4      = netip.MustParsePrefix("198.18.0.0/15")
	reservedV4   = netip.MustParsePrefix("240.0.0.0/4") // and 255.255.255.255
	embedsV4InV6 = []netip.Prefix{
		netip.MustParsePrefix("::/96"),          // IPv4-compatible
		netip.MustParsePrefix("64:ff9b::/96"),   // NAT64
		netip.MustParsePrefix("64:ff9b:1::/48"), // local NAT64
		netip.MustParsePrefix("2002::/16"),      // 6to4
		netip.MustParsePrefix("2001::/32"),      // Teredo
	}
)

// internalAddress names the kind of address a is when it is not a public
// unicast one, else "".
func internalAddress(a netip.Addr) string {
	a = a.Unmap()
	switch {
	case a.IsLoopback():
		return "loopback"
	case a.IsUnspecified() || a.Is4() && thisNetV4.Contains(a):
		return "unspecified"
	case a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast():
		return "link-local"
	case a.IsPrivate():
		return "private"
	case a.IsMulticast() || a.IsInterfaceLocalMulticast():
		return "multicast"
	case a.Is4() && sharedV4.Contains(a):
		return "shared (carrier-grade NAT)"
	case a.Is4() && (ietfV4.Contains(a) || benchV4.Contains(a) || reservedV4.Contains(a)):
		return "reserved"
	}
	if a.Is6() {
		for _, p := range embedsV4InV6 {
			if p.Contains(a) {
				return "IPv4-embedding IPv6"
			}
		}
	}
	if !a.IsGlobalUnicast() {
		return "non-unicast"
	}
	return ""
}
